/**
 * Output records in the emnify Data Streamer JSON shape (reference §1 and §2): same field
 * names, nesting and types. Added fields are allowed by emnify's compatibility rule;
 * renamed or missing ones are not. Decimal values are kept as strings here and written
 * as JSON numbers with the same digits (see toJson).
 */

export interface IdDescription {
  id: number;
  description: string;
}

export interface EventEndpoint {
  id: number;
  name: string;
  ip_address: string | null;
  tags: string | null;
  imei: string | null;
}

export interface EventSim {
  id: number;
  iccid: string;
  msisdn: string | null;
  production_date: string;
}

export interface EventImsi {
  id: number;
  imsi: string;
  import_date: string;
}

export interface EmnifyEvent {
  id: number;
  timestamp: string;
  alert: boolean;
  description: string;
  event_type: IdDescription;
  event_source: IdDescription;
  event_severity: IdDescription;
  organisation: { id: number; name: string };
  user: { id: number; name: string; username: string } | null;
  endpoint: EventEndpoint | null;
  sim: EventSim | null;
  imsi: EventImsi | null;
  detail: Record<string, unknown> | null;
}

export interface EmnifyUsageRecord {
  id: number;
  traffic_type: IdDescription;
  start_timestamp: string;
  end_timestamp: string;
  organisation: { id: number; name: string };
  endpoint: EventEndpoint & { balance: null };
  sim: EventSim;
  imsi_id: number;
  imsi: string;
  operator: { id: number; name: string; mnc: string; country: { id: number; mcc: string; name: string } };
  tariff: { id: number; name: string; ratezone: { id: number; name: string } };
  /** Decimal strings: MB with 6 decimals for data, message counts for SMS. */
  volume: { total: string; rx: string; tx: string };
  /** Decimal string, at most 10 decimals. */
  cost: string;
  currency: { id: number; code: string; symbol: string };
  session_id: string | null;
  /** Added field: how the cost was computed. */
  rating: {
    tariff_version: number;
    rate: string;
    billable_bytes: number;
    inclusive: boolean;
    rx_bytes: number;
    tx_bytes: number;
  };
}

export const CURRENCIES = {
  EUR: { id: 1, code: 'EUR', symbol: '€' },
  USD: { id: 2, code: 'USD', symbol: '$' },
} as const;

/** Stand-ins that JSON.stringify writes as "\u0000V" and "\u0000C": no real value contains them. */
const VOLUME_MARK = '\u0000V';
const COST_MARK = '\u0000C';

/**
 * The JSON text a customer receives: volumes and cost as numbers with exactly the digits
 * of their decimal strings (JSON.stringify of a float could print 0.1 + 0.2 style noise).
 */
export function toJson(record: EmnifyEvent | EmnifyUsageRecord): string {
  if (!('traffic_type' in record)) return JSON.stringify(record);
  const { volume, cost } = record;
  return JSON.stringify({ ...record, volume: VOLUME_MARK, cost: COST_MARK })
    .replace('"volume":"\\u0000V"', `"volume":{"total":${volume.total},"rx":${volume.rx},"tx":${volume.tx}}`)
    .replace('"cost":"\\u0000C"', `"cost":${cost}`);
}

/** "9.766e-7" -> "0.0000009766": the digits of a double's shortest form, without an exponent. */
function plain(text: string): string {
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign, lead, rest = '', exp] = match;
  const digits = `${lead}${rest}`;
  const point = 1 + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Numbers of up to 15 significant digits survive a trip through a double exactly. */
function exact(value: unknown): string {
  const text = plain(String(value));
  if (text.replace(/^-?0*\.?0*|\.|e.*$/g, '').length > 15 || /e/i.test(text)) {
    throw new RangeError(`${text} has more digits than a double holds exactly`);
  }
  return text;
}

/**
 * Reads a usage record written by toJson back with its decimals as exact strings. Costs
 * (at most 10 decimals, far below 10^5 per record) and MB volumes (6 decimals) have at most
 * 15 significant digits, which a double holds exactly; a value that does not is refused.
 */
export function usageFromJson(text: string): EmnifyUsageRecord {
  const raw = JSON.parse(text) as EmnifyUsageRecord;
  const volume = raw.volume as unknown as Record<string, unknown>;
  raw.volume = { total: exact(volume.total), rx: exact(volume.rx), tx: exact(volume.tx) };
  raw.cost = exact(raw.cost);
  return raw;
}
