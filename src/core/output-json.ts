/**
 * Hand-specialised writers of the two output shapes, for the hot path (one or more per raw
 * record): the exact bytes of Buffer.from(toJson(record)) (output.ts), written straight
 * into UTF-8; twice as fast for a usage record, a little faster for an event (most of its
 * time is JSON.stringify of its detail). A template string would not do: the text of a
 * usage record is built from a hundred pieces, and joining them costs as much as
 * JSON.stringify.
 *
 * The fields are written in the order the fold builds them (events.ts eventOf, fold.ts
 * usage, subject.ts), which is the order JSON.stringify follows; test/output-json.test.ts
 * checks the writers against toJson over the regression captures and odd values. Every
 * value is written as JSON.stringify would write it, whatever its type. The one thing a
 * writer cannot do is leave a key out (JSON.stringify drops undefined values): then, and
 * on any other surprise (a null where an object belongs), toJson writes the record.
 *
 * Parts that repeat from record to record (the organisation, endpoint and SIM of a device,
 * its operator and tariff, the type constants: the fold hands over the same objects) are
 * written once per object and copied after that, while every field of the object still
 * holds the value it was written from (compared with ===).
 */
import { type EmnifyEvent, type EmnifyUsageRecord, type IdDescription, toJson } from './output.js';

// ---- the bytes being written --------------------------------------------------------------

/**
 * Records are written one after the other into a chunk and handed out as views of it; a
 * full chunk is left to the views (never written again) and a new one started. The log
 * copies the values it is given, so a chunk lives about as long as one processing step.
 */
const CHUNK_BYTES = 256 * 1024;
let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
/** Where the record being written starts, and where the next byte goes. */
let start = 0;
let at = 0;

function ensure(bytes: number): void {
  if (at + bytes <= chunk.length) return;
  const next = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, (at - start + bytes) * 2));
  chunk.copy(next, 0, start, at);
  at -= start;
  start = 0;
  chunk = next;
}

function finish(): Buffer {
  const record = chunk.subarray(start, at);
  start = at;
  return record;
}

function put(bytes: Uint8Array): void {
  ensure(bytes.length);
  if (bytes.length > 24) {
    chunk.set(bytes, at);
    at += bytes.length;
    return;
  }
  // A loop beats the call for the short pieces most are.
  const to = chunk;
  let i = at;
  for (let k = 0; k < bytes.length; k++) to[i++] = bytes[k] as number;
  at = i;
}

/** Text as UTF-8, as Buffer.from(text) would encode it. */
function utf8(text: string): void {
  ensure(text.length * 3);
  at += chunk.write(text, at, 'utf8');
}

const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

// ---- values, as JSON.stringify writes them ------------------------------------------------

/** Thrown inside a writer to hand the record to toJson. */
const NOT_THE_SHAPE = new Error('not the shape the writer knows');

function json(value: unknown): void {
  const text = JSON.stringify(value) as string | undefined;
  if (text === undefined) throw NOT_THE_SHAPE;
  utf8(text);
}

function str(value: string): void {
  if (typeof value !== 'string') {
    json(value);
    return;
  }
  ensure(value.length + 2);
  const to = chunk;
  let i = at;
  to[i++] = QUOTE;
  for (let k = 0; k < value.length; k++) {
    const code = value.charCodeAt(k);
    // Printable ASCII needs no escape but for the quote and the backslash.
    if (code < 0x20 || code > 0x7e || code === QUOTE || code === BACKSLASH) {
      json(value);
      return;
    }
    to[i++] = code;
  }
  to[i++] = QUOTE;
  at = i;
}

const NULL = bytesOf('null');
const TRUE = bytesOf('true');
const FALSE = bytesOf('false');

function strOrNull(value: string | null): void {
  if (value === null) put(NULL);
  else str(value);
}

function num(value: number): void {
  if (!(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) {
    json(value);
    return;
  }
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  ensure(digits);
  const to = chunk;
  let i = at + digits;
  at = i;
  let rest = value;
  do {
    const next = Math.floor(rest / 10);
    to[--i] = 0x30 + (rest - next * 10); // the digit first: 0x30 + rest could round
    rest = next;
  } while (rest > 0);
}

function bool(value: boolean): void {
  if (value === true) put(TRUE);
  else if (value === false) put(FALSE);
  else json(value);
}

/**
 * A decimal string written as a JSON number, as toJson does. Only characters of numbers
 * are written here; anything else (a '$' means something to toJson's replace) goes to toJson.
 */
function decimal(value: string): void {
  if (typeof value !== 'string') throw NOT_THE_SHAPE;
  ensure(value.length);
  const to = chunk;
  let i = at;
  for (let k = 0; k < value.length; k++) {
    const code = value.charCodeAt(k);
    // 0-9 . - + e E
    if (
      !(
        (code >= 0x30 && code <= 0x39) ||
        code === 0x2e ||
        code === 0x2d ||
        code === 0x2b ||
        (code | 0x20) === 0x65
      )
    )
      throw NOT_THE_SHAPE;
    to[i++] = code;
  }
  at = i;
}

// ---- parts written once per object --------------------------------------------------------

/** The bytes of a part and the field values they were written from (and the bytes of a part inside it). */
interface Written {
  bytes: Uint8Array;
  inner: Uint8Array | undefined;
  a: unknown;
  b: unknown;
  c: unknown;
  d: unknown;
  e: unknown;
  f: unknown;
}

function primitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

/** Where the record being written is now: a position that stays right when the record moves to a new chunk. */
function mark(): number {
  return at - start;
}

/**
 * Copies the part written since `from` (a mark), remembered for `key` with its field
 * values a to f (not when one of them is an object, which could change unseen) and the
 * bytes of the part inside it, if any; returns the copy.
 */
function remember(
  cache: WeakMap<object, Written>,
  key: object,
  from: number,
  inner: Uint8Array | undefined,
  a: unknown,
  b: unknown,
  c: unknown = undefined,
  d: unknown = undefined,
  e: unknown = undefined,
  f: unknown = undefined,
): Uint8Array {
  const bytes = new Uint8Array(chunk.subarray(start + from, at));
  if (primitive(a) && primitive(b) && primitive(c) && primitive(d) && primitive(e) && primitive(f))
    cache.set(key, { bytes, inner, a, b, c, d, e, f });
  return bytes;
}

const ID = bytesOf('{"id":');
const DESCRIPTION = bytesOf(',"description":');
const NAME = bytesOf(',"name":');
const CLOSE = bytesOf('}');

const idDescriptions = new WeakMap<object, Written>();
function idDescription(value: IdDescription): void {
  const { id, description } = value;
  const w = idDescriptions.get(value);
  if (w !== undefined && w.a === id && w.b === description) {
    put(w.bytes);
    return;
  }
  const from = mark();
  put(ID);
  num(id);
  put(DESCRIPTION);
  str(description);
  put(CLOSE);
  remember(idDescriptions, value, from, undefined, id, description);
}

const organisations = new WeakMap<object, Written>();
function organisation(value: { id: number; name: string }): void {
  const { id, name } = value;
  const w = organisations.get(value);
  if (w !== undefined && w.a === id && w.b === name) {
    put(w.bytes);
    return;
  }
  const from = mark();
  put(ID);
  num(id);
  put(NAME);
  str(name);
  put(CLOSE);
  remember(organisations, value, from, undefined, id, name);
}

const ICCID = bytesOf(',"iccid":');
const MSISDN = bytesOf(',"msisdn":');
const PRODUCTION_DATE = bytesOf(',"production_date":');

const sims = new WeakMap<object, Written>();
function sim(value: NonNullable<EmnifyEvent['sim']>): void {
  const { id, iccid, msisdn, production_date } = value;
  const w = sims.get(value);
  if (w !== undefined && w.a === id && w.b === iccid && w.c === msisdn && w.d === production_date) {
    put(w.bytes);
    return;
  }
  const from = mark();
  put(ID);
  num(id);
  put(ICCID);
  str(iccid);
  put(MSISDN);
  strOrNull(msisdn);
  put(PRODUCTION_DATE);
  str(production_date);
  put(CLOSE);
  remember(sims, value, from, undefined, id, iccid, msisdn, production_date);
}

const IP_ADDRESS = bytesOf(',"ip_address":');
const TAGS = bytesOf(',"tags":');
const IMEI = bytesOf(',"imei":');
const BALANCE = bytesOf(',"balance":');

function endpointFields(value: NonNullable<EmnifyEvent['endpoint']>): void {
  put(ID);
  num(value.id);
  put(NAME);
  str(value.name);
  put(IP_ADDRESS);
  strOrNull(value.ip_address);
  put(TAGS);
  strOrNull(value.tags);
  put(IMEI);
  strOrNull(value.imei);
}

const eventEndpoints = new WeakMap<object, Written>();
function eventEndpoint(value: NonNullable<EmnifyEvent['endpoint']>): void {
  const { id, name, ip_address, tags, imei } = value;
  const w = eventEndpoints.get(value);
  if (w !== undefined && w.a === id && w.b === name && w.c === ip_address && w.d === tags && w.e === imei) {
    put(w.bytes);
    return;
  }
  const from = mark();
  endpointFields(value);
  put(CLOSE);
  remember(eventEndpoints, value, from, undefined, id, name, ip_address, tags, imei);
}

const usageEndpoints = new WeakMap<object, Written>();
function usageEndpoint(value: EmnifyUsageRecord['endpoint']): void {
  const { id, name, ip_address, tags, imei, balance } = value;
  const w = usageEndpoints.get(value);
  if (
    w !== undefined &&
    w.a === id &&
    w.b === name &&
    w.c === ip_address &&
    w.d === tags &&
    w.e === imei &&
    w.f === balance
  ) {
    put(w.bytes);
    return;
  }
  const from = mark();
  endpointFields(value);
  put(BALANCE);
  if (balance === null) put(NULL);
  else json(balance);
  put(CLOSE);
  remember(usageEndpoints, value, from, undefined, id, name, ip_address, tags, imei, balance);
}

const IMSI = bytesOf(',"imsi":');
const IMPORT_DATE = bytesOf(',"import_date":');

const eventImsis = new WeakMap<object, Written>();
function eventImsi(value: NonNullable<EmnifyEvent['imsi']>): void {
  const { id, imsi, import_date } = value;
  const w = eventImsis.get(value);
  if (w !== undefined && w.a === id && w.b === imsi && w.c === import_date) {
    put(w.bytes);
    return;
  }
  const from = mark();
  put(ID);
  num(id);
  put(IMSI);
  str(imsi);
  put(IMPORT_DATE);
  str(import_date);
  put(CLOSE);
  remember(eventImsis, value, from, undefined, id, imsi, import_date);
}

const MCC = bytesOf(',"mcc":');
const MNC = bytesOf(',"mnc":');
const COUNTRY = bytesOf(',"country":');

const countries = new WeakMap<object, Written>();
/** The country of an operator, written; returns its bytes (the operator compares them). */
function country(value: EmnifyUsageRecord['operator']['country']): Uint8Array {
  const { id, mcc, name } = value;
  const w = countries.get(value);
  if (w !== undefined && w.a === id && w.b === mcc && w.c === name) {
    put(w.bytes);
    return w.bytes;
  }
  const from = mark();
  put(ID);
  num(id);
  put(MCC);
  str(mcc);
  put(NAME);
  str(name);
  put(CLOSE);
  return remember(countries, value, from, undefined, id, mcc, name);
}

const operators = new WeakMap<object, Written>();
function operator(value: EmnifyUsageRecord['operator']): void {
  const { id, name, mnc } = value;
  const w = operators.get(value);
  // The country is compared by its bytes: the same array while the country is unchanged.
  if (w !== undefined && w.a === id && w.b === name && w.c === mnc) {
    const c = countries.get(value.country);
    const { id: countryId, mcc, name: countryName } = value.country;
    if (c !== undefined && c.bytes === w.inner && c.a === countryId && c.b === mcc && c.c === countryName) {
      put(w.bytes);
      return;
    }
  }
  const from = mark();
  put(ID);
  num(id);
  put(NAME);
  str(name);
  put(MNC);
  str(mnc);
  put(COUNTRY);
  const countryBytes = country(value.country);
  put(CLOSE);
  remember(operators, value, from, countryBytes, id, name, mnc);
}

const RATEZONE = bytesOf(',"ratezone":');

const ratezones = new WeakMap<object, Written>();
const tariffs = new WeakMap<object, Written>();
function tariff(value: EmnifyUsageRecord['tariff']): void {
  const { id, name } = value;
  const zone = value.ratezone;
  const w = tariffs.get(value);
  if (w !== undefined && w.a === id && w.b === name) {
    const z = ratezones.get(zone);
    if (z !== undefined && z.bytes === w.inner && z.a === zone.id && z.b === zone.name) {
      put(w.bytes);
      return;
    }
  }
  const from = mark();
  put(ID);
  num(id);
  put(NAME);
  str(name);
  put(RATEZONE);
  const zoneFrom = mark();
  put(ID);
  num(zone.id);
  put(NAME);
  str(zone.name);
  put(CLOSE);
  const zoneBytes = remember(ratezones, zone, zoneFrom, undefined, zone.id, zone.name);
  put(CLOSE);
  remember(tariffs, value, from, zoneBytes, id, name);
}

const CODE = bytesOf(',"code":');
const SYMBOL = bytesOf(',"symbol":');

const currencies = new WeakMap<object, Written>();
function currency(value: EmnifyUsageRecord['currency']): void {
  const { id, code, symbol } = value;
  const w = currencies.get(value);
  if (w !== undefined && w.a === id && w.b === code && w.c === symbol) {
    put(w.bytes);
    return;
  }
  const from = mark();
  put(ID);
  num(id);
  put(CODE);
  str(code);
  put(SYMBOL);
  str(symbol);
  put(CLOSE);
  remember(currencies, value, from, undefined, id, code, symbol);
}

// ---- the records --------------------------------------------------------------------------

/** Set while a record is written: a toJSON method of a detail writing a record meanwhile gets toJson. */
let writing = false;

/** Writes a record; on a surprise, drops what was written and gives toJson's bytes. */
function write<T extends EmnifyEvent | EmnifyUsageRecord>(record: T, writer: (record: T) => void): Buffer {
  if (writing) return Buffer.from(toJson(record));
  writing = true;
  try {
    writer(record);
    return finish();
  } catch (error) {
    at = start;
    if (error !== NOT_THE_SHAPE && !(error instanceof TypeError)) throw error;
    return Buffer.from(toJson(record));
  } finally {
    writing = false;
  }
}

const TIMESTAMP = bytesOf(',"timestamp":');
const ALERT = bytesOf(',"alert":');
const EVENT_TYPE = bytesOf(',"event_type":');
const EVENT_SOURCE = bytesOf(',"event_source":');
const EVENT_SEVERITY = bytesOf(',"event_severity":');
const ORGANISATION = bytesOf(',"organisation":');
const USER = bytesOf(',"user":');
const ENDPOINT = bytesOf(',"endpoint":');
const SIM = bytesOf(',"sim":');
const DETAIL = bytesOf(',"detail":');

function eventFields(event: EmnifyEvent): void {
  put(ID);
  num(event.id);
  put(TIMESTAMP);
  str(event.timestamp);
  put(ALERT);
  bool(event.alert);
  put(DESCRIPTION);
  str(event.description);
  put(EVENT_TYPE);
  idDescription(event.event_type);
  put(EVENT_SOURCE);
  idDescription(event.event_source);
  put(EVENT_SEVERITY);
  idDescription(event.event_severity);
  put(ORGANISATION);
  organisation(event.organisation);
  put(USER);
  if (event.user === null) put(NULL);
  else json(event.user);
  put(ENDPOINT);
  if (event.endpoint === null) put(NULL);
  else eventEndpoint(event.endpoint);
  put(SIM);
  if (event.sim === null) put(NULL);
  else sim(event.sim);
  put(IMSI);
  if (event.imsi === null) put(NULL);
  else eventImsi(event.imsi);
  put(DETAIL);
  if (event.detail === null) put(NULL);
  else json(event.detail);
  put(CLOSE);
}

/** Buffer.from(toJson(event)), faster. The buffer is a view of a larger one: keep it or copy it, never write to it. */
export function eventBytes(event: EmnifyEvent): Buffer {
  return write(event, eventFields);
}

const TRAFFIC_TYPE = bytesOf(',"traffic_type":');
const START_TIMESTAMP = bytesOf(',"start_timestamp":');
const END_TIMESTAMP = bytesOf(',"end_timestamp":');
const IMSI_ID = bytesOf(',"imsi_id":');
const OPERATOR = bytesOf(',"operator":');
const TARIFF = bytesOf(',"tariff":');
const VOLUME_TOTAL = bytesOf(',"volume":{"total":');
const RX = bytesOf(',"rx":');
const TX = bytesOf(',"tx":');
const COST = bytesOf('},"cost":');
const CURRENCY = bytesOf(',"currency":');
const SESSION_ID = bytesOf(',"session_id":');
const RATING_TARIFF_VERSION = bytesOf(',"rating":{"tariff_version":');
const RATE = bytesOf(',"rate":');
const BILLABLE_BYTES = bytesOf(',"billable_bytes":');
const INCLUSIVE = bytesOf(',"inclusive":');
const RX_BYTES = bytesOf(',"rx_bytes":');
const TX_BYTES = bytesOf(',"tx_bytes":');
const CLOSE_TWO = bytesOf('}}');

function usageFields(record: EmnifyUsageRecord): void {
  const { volume, rating } = record;
  put(ID);
  num(record.id);
  put(TRAFFIC_TYPE);
  idDescription(record.traffic_type);
  put(START_TIMESTAMP);
  str(record.start_timestamp);
  put(END_TIMESTAMP);
  str(record.end_timestamp);
  put(ORGANISATION);
  organisation(record.organisation);
  put(ENDPOINT);
  usageEndpoint(record.endpoint);
  put(SIM);
  sim(record.sim);
  put(IMSI_ID);
  num(record.imsi_id);
  put(IMSI);
  str(record.imsi);
  put(OPERATOR);
  operator(record.operator);
  put(TARIFF);
  tariff(record.tariff);
  put(VOLUME_TOTAL);
  decimal(volume.total);
  put(RX);
  decimal(volume.rx);
  put(TX);
  decimal(volume.tx);
  put(COST);
  decimal(record.cost);
  put(CURRENCY);
  currency(record.currency);
  put(SESSION_ID);
  strOrNull(record.session_id);
  put(RATING_TARIFF_VERSION);
  num(rating.tariff_version);
  put(RATE);
  str(rating.rate);
  put(BILLABLE_BYTES);
  num(rating.billable_bytes);
  put(INCLUSIVE);
  bool(rating.inclusive);
  put(RX_BYTES);
  num(rating.rx_bytes);
  put(TX_BYTES);
  num(rating.tx_bytes);
  put(CLOSE_TWO);
}

/** Buffer.from(toJson(record)) of a usage record, faster. The buffer is a view of a larger one: keep it or copy it, never write to it. */
export function usageBytes(record: EmnifyUsageRecord): Buffer {
  return write(record, usageFields);
}
