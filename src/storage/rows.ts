/**
 * Rows the store accepts, one interface per table, with the value shapes of the Avro output
 * records (schemas/avro/event.avsc, usage-record.avsc, dead-letter.avsc): ids and other
 * longs as numbers below 2^53, decimals as decimal strings, times as the records carry them.
 * src/storage/convert.ts builds them from output records; src/storage/wire.ts checks and
 * encodes them for ClickHouse.
 */

/** One row of `events`. */
export interface EventRow {
  id: number;
  /** ISO-8601 UTC with milliseconds, e.g. 2021-10-27T08:38:02.000Z. */
  timestamp: string;
  event_type: number;
  event_type_description: string;
  /** event_severity.id: 0 Info, 1 Warn, 2 Critical. */
  severity: number;
  alert: boolean;
  organisation_id: number;
  endpoint_id: number | null;
  sim_id: number | null;
  /** IMSI digits (the event's imsi object flattened), or null. */
  imsi: string | null;
  /** event_source.id: 0 Network, 1 Policy Control, 2 API. */
  source: number;
  /** The full emnify JSON of the event, as a data stream delivers it. */
  json: string;
}

/** One row of `usage_records`. */
export interface UsageRow {
  id: number;
  endpoint_id: number;
  organisation_id: number;
  /** 5 Data, 6 SMS. */
  traffic_type: number;
  /** ISO-8601 UTC with milliseconds. */
  start_timestamp: string;
  end_timestamp: string;
  /** Exact bytes (0 for SMS): the MB columns are rounded to 6 decimals, these are not. */
  volume_bytes_rx: number;
  volume_bytes_tx: number;
  volume_bytes_total: number;
  /** Decimal strings, MB with at most 6 decimals (message counts for SMS). */
  volume_rx: string;
  volume_tx: string;
  volume_total: string;
  /** Decimal string with at most 10 decimals. */
  cost: string;
  /** ISO 4217 code. */
  currency: string;
  tariff_id: number;
  tariff_version: number;
  ratezone_id: number;
  ratezone_name: string;
  operator_id: number;
  operator_name: string;
  country_mcc: string;
  session_id: string | null;
  imsi: string;
  /** The full emnify JSON of the record. */
  json: string;
}

/** One row of `dead_letters`: the DeadLetter contract as it is. */
export interface DeadLetterRow {
  id: number;
  /** Milliseconds since the epoch, UTC (timestamp-millis in the contract). */
  timestamp: number;
  stage: string;
  reason_code: string;
  reason: string;
  source: string;
  partition: number;
  offset: number;
  record_kind: string | null;
  /** The input exactly as received; a string is stored as its UTF-8 bytes. */
  payload: Uint8Array | string;
}
