/**
 * Output records to store rows: the one place that knows which record field feeds which
 * column. The json column is the exact text a data stream delivers (toJson).
 */
import { type EmnifyEvent, type EmnifyUsageRecord, toJson } from '../core/output.js';
import type { EventRow, UsageRow } from './rows.js';

export function eventToRow(event: EmnifyEvent): EventRow {
  return {
    id: event.id,
    timestamp: event.timestamp,
    event_type: event.event_type.id,
    event_type_description: event.event_type.description,
    severity: event.event_severity.id,
    alert: event.alert,
    organisation_id: event.organisation.id,
    endpoint_id: event.endpoint?.id ?? null,
    sim_id: event.sim?.id ?? null,
    imsi: event.imsi?.imsi ?? null,
    source: event.event_source.id,
    json: toJson(event),
  };
}

function safeBytes(value: number, what: string, id: number): number {
  // Beyond 2^53 a number no longer holds the exact count; 9 PB in one record is a bug upstream.
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`usage record ${id}: ${what} ${value} is not a byte count below 2^53`);
  return value;
}

/** The exact byte volumes come from rating.rx_bytes / tx_bytes (usage-record schema version 2). */
export function usageToRow(record: EmnifyUsageRecord): UsageRow {
  const rx = safeBytes(record.rating.rx_bytes, 'rating.rx_bytes', record.id);
  const tx = safeBytes(record.rating.tx_bytes, 'rating.tx_bytes', record.id);
  return {
    id: record.id,
    endpoint_id: record.endpoint.id,
    organisation_id: record.organisation.id,
    traffic_type: record.traffic_type.id,
    start_timestamp: record.start_timestamp,
    end_timestamp: record.end_timestamp,
    volume_bytes_rx: rx,
    volume_bytes_tx: tx,
    volume_bytes_total: safeBytes(rx + tx, 'rx + tx', record.id),
    volume_rx: record.volume.rx,
    volume_tx: record.volume.tx,
    volume_total: record.volume.total,
    cost: record.cost,
    currency: record.currency.code,
    tariff_id: record.tariff.id,
    tariff_version: record.rating.tariff_version,
    ratezone_id: record.tariff.ratezone.id,
    ratezone_name: record.tariff.ratezone.name,
    operator_id: record.operator.id,
    operator_name: record.operator.name,
    country_mcc: record.operator.country.mcc,
    session_id: record.session_id,
    imsi: record.imsi,
    json: toJson(record),
  };
}
