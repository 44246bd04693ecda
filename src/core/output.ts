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

/** Paths of decimal-string fields that are emitted as JSON numbers. */
const NUMBER_FIELDS = /"(cost|total|rx|tx)":"(-?\d+(?:\.\d+)?)"/g;

/**
 * The JSON text a customer receives: volumes and cost as numbers with exactly the digits
 * of their decimal strings (JSON.stringify of a float could print 0.1 + 0.2 style noise).
 */
export function toJson(record: EmnifyEvent | EmnifyUsageRecord): string {
  const text = JSON.stringify(record);
  return 'traffic_type' in record ? text.replace(NUMBER_FIELDS, '"$1":$2') : text;
}

const NUMBER_VALUES = /"(cost|total|rx|tx)":(-?\d+(?:\.\d+)?)/g;

/** Reads a usage record written by toJson back with its decimals as exact strings. */
export function usageFromJson(text: string): EmnifyUsageRecord {
  return JSON.parse(text.replace(NUMBER_VALUES, '"$1":"$2"')) as EmnifyUsageRecord;
}
