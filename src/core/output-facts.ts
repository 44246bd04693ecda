/**
 * The few facts later stages need of an output record, read from its JSON bytes instead of
 * parsing all of it (the organisation stage reads every usage record again, the replay
 * summary every event and usage record). The reader follows the layout output-json.ts
 * writes (and toJson always wrote): the leading fields in their order, and the cost found
 * from the end by its key, which appears once in a usage record and cannot appear inside
 * a string value, where every quote is escaped. A text laid out otherwise gives undefined,
 * for the caller to parse it in full instead.
 */

/** What the organisation stage and the summary need of a usage record. */
export interface UsageFacts {
  trafficTypeId: number;
  organisationId: number;
  endTimestamp: string;
  currency: string;
  /** The cost as written: a plain decimal of at most 15 significant digits and 10 decimals. */
  cost: string;
}

const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;

/** The reader's position in the text being read (one text at a time, synchronously). */
let pos = 0;

/** Whether `literal` is at pos; moves past it if so. */
function literal(text: Buffer, bytes: Uint8Array): boolean {
  if (pos + bytes.length > text.length) return false;
  for (let k = 0; k < bytes.length; k++) if (text[pos + k] !== bytes[k]) return false;
  pos += bytes.length;
  return true;
}

/** A JSON integer at pos without sign or leading zeros, up to 2^53 - 1 (exact as a number); -1 if none. */
function integer(text: Buffer): number {
  let value = 0;
  const from = pos;
  for (; pos < text.length; pos++) {
    const byte = text[pos] as number;
    if (byte < ZERO || byte > NINE) break;
    value = value * 10 + (byte - ZERO);
  }
  const digits = pos - from;
  if (digits === 0 || digits > 16 || value > Number.MAX_SAFE_INTEGER || (text[from] === ZERO && digits > 1))
    return -1;
  return value;
}

/**
 * Moves past the JSON string at pos: 1 when it has escapes, 0 when not, -1 when there is
 * none or it holds a raw control character (not JSON).
 */
function skipString(text: Buffer): -1 | 0 | 1 {
  if (text[pos] !== QUOTE) return -1;
  let escaped: 0 | 1 = 0;
  for (let i = pos + 1; i < text.length; i++) {
    const byte = text[i] as number;
    if (byte === QUOTE) {
      pos = i + 1;
      return escaped;
    }
    if (byte < 0x20) return -1;
    if (byte === BACKSLASH) {
      escaped = 1;
      i++;
    }
  }
  return -1;
}

/** The JSON string at pos when it is printable ASCII without escapes (as timestamps and codes are). */
function plainString(text: Buffer): string | undefined {
  if (text[pos] !== QUOTE) return undefined;
  const from = pos + 1;
  for (let i = from; i < text.length; i++) {
    const byte = text[i] as number;
    if (byte === QUOTE) {
      pos = i + 1;
      return text.toString('latin1', from, i);
    }
    if (byte === BACKSLASH || byte < 0x20 || byte > 0x7e) return undefined;
  }
  return undefined;
}

/** A JSON number at pos in plain decimal form ("12.5", "-0.0000001") of at most 15 significant digits and 10 decimals. */
function plainDecimal(text: Buffer): string | undefined {
  const from = pos;
  if (text[pos] === 0x2d) pos++; // '-'
  const wholeFrom = pos;
  if (integer(text) === -1) return undefined;
  let significant = text[wholeFrom] === ZERO ? 0 : pos - wholeFrom;
  if (text[pos] === 0x2e) {
    // '.' and 1 to 10 digits; the leading zeros of a value below 1 are not significant
    const fractionFrom = ++pos;
    while (pos < text.length && (text[pos] as number) >= ZERO && (text[pos] as number) <= NINE) pos++;
    if (pos === fractionFrom || pos - fractionFrom > 10) return undefined;
    let first = fractionFrom;
    if (significant === 0) while (first < pos && text[first] === ZERO) first++;
    significant += pos - first;
  }
  return significant > 15 ? undefined : text.toString('latin1', from, pos);
}

const USAGE_ID = bytesOf('{"id":');
const TRAFFIC_TYPE = bytesOf(',"traffic_type":{"id":');
const DESCRIPTION = bytesOf(',"description":');
const START_TIMESTAMP = bytesOf('},"start_timestamp":');
const END_TIMESTAMP = bytesOf(',"end_timestamp":');
const ORGANISATION = bytesOf(',"organisation":{"id":');
/** A Buffer: Buffer.lastIndexOf finds it fastest. */
const COST = Buffer.from(',"cost":', 'latin1');
const CURRENCY = bytesOf(',"currency":{"id":');
const CODE = bytesOf(',"code":');

/** The facts of a usage record, as JSON.parse would give them; undefined when the text is not as usageBytes writes it. */
export function readUsageFacts(text: Buffer): UsageFacts | undefined {
  pos = 0;
  if (!literal(text, USAGE_ID) || integer(text) === -1 || !literal(text, TRAFFIC_TYPE)) return undefined;
  const trafficTypeId = integer(text);
  if (trafficTypeId === -1 || !literal(text, DESCRIPTION) || skipString(text) === -1) return undefined;
  if (!literal(text, START_TIMESTAMP) || skipString(text) === -1 || !literal(text, END_TIMESTAMP))
    return undefined;
  const endTimestamp = plainString(text);
  if (endTimestamp === undefined || !literal(text, ORGANISATION)) return undefined;
  const organisationId = integer(text);
  if (organisationId === -1) return undefined;
  // Cost and currency are near the end: looked for from there.
  const costAt = text.lastIndexOf(COST);
  if (costAt < pos) return undefined;
  pos = costAt + COST.length;
  const cost = plainDecimal(text);
  if (cost === undefined || !literal(text, CURRENCY) || integer(text) === -1 || !literal(text, CODE))
    return undefined;
  const currency = plainString(text);
  if (currency === undefined) return undefined;
  return { trafficTypeId, organisationId, endTimestamp, currency, cost };
}

const EVENT_ID = bytesOf('{"id":');
const TIMESTAMP = bytesOf(',"timestamp":');
const ALERT = bytesOf(',"alert":');
const TRUE = bytesOf('true');
const FALSE = bytesOf('false');
const EVENT_TYPE = bytesOf(',"event_type":{"id":');

/** An event's type (id and description), as JSON.parse would give it; undefined when the text is not as eventBytes writes it. */
export function readEventType(text: Buffer): { id: number; description: string } | undefined {
  pos = 0;
  if (!literal(text, EVENT_ID) || integer(text) === -1 || !literal(text, TIMESTAMP)) return undefined;
  if (skipString(text) === -1 || !literal(text, ALERT) || !(literal(text, TRUE) || literal(text, FALSE)))
    return undefined;
  if (!literal(text, DESCRIPTION) || skipString(text) === -1 || !literal(text, EVENT_TYPE)) return undefined;
  const id = integer(text);
  if (id === -1 || !literal(text, DESCRIPTION)) return undefined;
  const from = pos;
  const escaped = skipString(text);
  if (escaped === -1) return undefined;
  const description =
    escaped === 1
      ? (JSON.parse(text.toString('utf8', from, pos)) as string)
      : text.toString('utf8', from + 1, pos - 1);
  return { id, description };
}
