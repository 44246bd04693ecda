/** Output records and rows for the storage tests, in the exact shapes the engine emits. */
import { CURRENCIES, type EmnifyEvent, type EmnifyUsageRecord } from '../../src/core/output.js';
import { eventToRow, usageToRow } from '../../src/storage/convert.js';
import type { DeadLetterRow, EventRow, UsageRow } from '../../src/storage/rows.js';

/** 2026-01-05T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 5);

export function emnifyEvent(id: number, overrides: Partial<EmnifyEvent> = {}): EmnifyEvent {
  return {
    id,
    timestamp: new Date(T0 + id * 1000).toISOString(),
    alert: false,
    description:
      'New location received from VLR for IMSI="295050000000001", now attached to VLR="491720000000".',
    event_type: { id: 1, description: 'Update location' },
    event_source: { id: 0, description: 'Network' },
    event_severity: { id: 0, description: 'Info' },
    organisation: { id: 7, name: 'Acme IoT' },
    user: null,
    endpoint: {
      id: 20000001,
      name: 'tracker-1',
      ip_address: '10.0.0.1',
      tags: 'fleet,eu',
      imei: '356938035643809',
    },
    sim: {
      id: 3001,
      iccid: '89883030000000000010',
      msisdn: '423663920000001',
      production_date: '2025-01-01T00:00:00.000Z',
    },
    imsi: { id: 30010, imsi: '295050000000001', import_date: '2025-01-01T00:00:00.000Z' },
    detail: { id: 5, name: 'Telekom Deutschland', country: { id: 74, name: 'Germany', mcc: '262' } },
    ...overrides,
  };
}

export function usageRecord(id: number, overrides: Partial<EmnifyUsageRecord> = {}): EmnifyUsageRecord {
  return {
    id,
    traffic_type: { id: 5, description: 'Data' },
    start_timestamp: new Date(T0 + id * 1000).toISOString(),
    end_timestamp: new Date(T0 + id * 1000 + 60_000).toISOString(),
    organisation: { id: 7, name: 'Acme IoT' },
    endpoint: {
      id: 20000001 + (id % 5),
      name: 'tracker-1',
      ip_address: '10.0.0.1',
      tags: null,
      imei: '356938035643809',
      balance: null,
    },
    sim: {
      id: 3001,
      iccid: '89883030000000000010',
      msisdn: null,
      production_date: '2025-01-01T00:00:00.000Z',
    },
    imsi_id: 30010,
    imsi: '295050000000001',
    operator: {
      id: 5,
      name: 'Telekom Deutschland',
      mnc: '01',
      country: { id: 74, mcc: '262', name: 'Germany' },
    },
    tariff: { id: 1, name: 'EU Standard', ratezone: { id: 1 + (id % 3), name: `Zone ${1 + (id % 3)}` } },
    volume: { total: '0.014009', rx: '0.011773', tx: '0.002236' },
    cost: '0.0219726563',
    currency: CURRENCIES.EUR,
    session_id: 'b8a1c0de-0000-4000-8000-000000000001',
    // 12345 bytes down, 2345 up: the MB volumes above, rounded to 6 decimals.
    rating: {
      tariff_version: 2,
      rate: '1.5',
      billable_bytes: 15360,
      inclusive: false,
      rx_bytes: 12_345,
      tx_bytes: 2_345,
    },
    ...overrides,
  };
}

export function eventRows(from: number, count: number): EventRow[] {
  return Array.from({ length: count }, (_, k) => eventToRow(emnifyEvent(from + k)));
}

export function usageRows(from: number, count: number, cost = (_id: number) => '0.0219726563'): UsageRow[] {
  return Array.from({ length: count }, (_, k) => usageToRow(usageRecord(from + k, { cost: cost(from + k) })));
}

export function deadLetter(id: number, payload: Uint8Array | string): DeadLetterRow {
  return {
    id,
    timestamp: T0 + id,
    stage: 'decode',
    reason_code: 'MALFORMED_JSON',
    reason: 'Unexpected end of JSON input at byte 17',
    source: 'raw',
    partition: 3,
    offset: 1000 + id,
    record_kind: null,
    payload,
  };
}
