/**
 * Rows as ClickHouse receives them: JSONCompactEachRow tuples in a fixed column order.
 * Compact tuples measured 10-40% faster than JSONEachRow objects (no key per value), and
 * @clickhouse/client has no binary insert format. Every value is checked here, before
 * anything is sent: ClickHouse would wrap a negative UInt64 or round an extra decimal
 * without a word, and a bad batch must fail whole, naming the row and the field.
 */
import { StorageError } from './errors.js';
import type { DeadLetterRow, EventRow, UsageRow } from './rows.js';

export const INSERT_FORMAT = 'JSONCompactEachRow';

export interface TableWire<Row> {
  table: string;
  /** Column list of the INSERT, in tuple order (quoted where the name is a keyword). */
  columns: readonly [string, ...string[]];
  encode(row: Row, index: number): unknown[];
}

class Check {
  constructor(
    private readonly table: string,
    private readonly index: number,
    private readonly id: unknown,
  ) {}

  fail(field: string, problem: string): never {
    throw new StorageError(
      'STORAGE_INVALID_INPUT',
      `${this.table} row ${this.index} (id ${String(this.id)}): ${field} ${problem}; nothing of the batch was inserted`,
    );
  }

  uint(value: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max)
      this.fail(field, `must be an integer in 0..${max}, got ${JSON.stringify(value)}`);
    return value;
  }

  nullableUint(value: unknown, field: string): number | null {
    return value === null ? null : this.uint(value, field);
  }

  string(value: unknown, field: string): string {
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(value)}`);
    return value;
  }

  nullableString(value: unknown, field: string): string | null {
    return value === null ? null : this.string(value, field);
  }

  bool(value: unknown, field: string): boolean {
    if (typeof value !== 'boolean') this.fail(field, `must be a boolean, got ${JSON.stringify(value)}`);
    return value;
  }

  /** A decimal string fitting Decimal(precision, scale) exactly. */
  decimal(value: unknown, field: string, precision: number, scale: number, signed: boolean): string {
    const text = typeof value === 'string' ? value : '';
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (
      !match ||
      (match[1] && !signed) ||
      (match[3]?.length ?? 0) > scale ||
      (match[2] as string).replace(/^0+(?=\d)/, '').length > precision - scale
    )
      this.fail(
        field,
        `must be a ${signed ? '' : 'non-negative '}decimal string with at most ${precision - scale} integer digits and ${scale} decimals, got ${JSON.stringify(value)}`,
      );
    return text;
  }

  /** "2021-10-27T08:38:02.000Z" -> "2021-10-27 08:38:02.000", which DateTime64(3, 'UTC') reads as is. */
  isoTime(value: unknown, field: string): string {
    if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(value))
      this.fail(
        field,
        `must be ISO-8601 UTC with milliseconds (2021-10-27T08:38:02.000Z), got ${JSON.stringify(value)}`,
      );
    return `${value.slice(0, 10)} ${value.slice(11, 23)}`;
  }

  epochMs(value: unknown, field: string): string {
    const ms = this.uint(value, field);
    return this.isoTime(new Date(ms).toISOString(), field);
  }
}

const UINT8 = 255;
const UINT16 = 65_535;
const UINT32 = 4_294_967_295;

export const EVENTS: TableWire<EventRow> = {
  table: 'events',
  columns: [
    'id',
    'timestamp',
    'event_type',
    'event_type_description',
    'severity',
    'alert',
    'organisation_id',
    'endpoint_id',
    'sim_id',
    'imsi',
    'source',
    'json',
  ],
  encode(row, index) {
    const c = new Check('events', index, row.id);
    return [
      c.uint(row.id, 'id'),
      c.isoTime(row.timestamp, 'timestamp'),
      c.uint(row.event_type, 'event_type', UINT16),
      c.string(row.event_type_description, 'event_type_description'),
      c.uint(row.severity, 'severity', UINT8),
      c.bool(row.alert, 'alert'),
      c.uint(row.organisation_id, 'organisation_id'),
      c.nullableUint(row.endpoint_id, 'endpoint_id'),
      c.nullableUint(row.sim_id, 'sim_id'),
      c.nullableString(row.imsi, 'imsi'),
      c.uint(row.source, 'source', UINT8),
      c.string(row.json, 'json'),
    ];
  },
};

export const USAGE_RECORDS: TableWire<UsageRow> = {
  table: 'usage_records',
  columns: [
    'id',
    'endpoint_id',
    'organisation_id',
    'traffic_type',
    'start_timestamp',
    'end_timestamp',
    'volume_bytes_rx',
    'volume_bytes_tx',
    'volume_bytes_total',
    'volume_rx',
    'volume_tx',
    'volume_total',
    'cost',
    'currency',
    'tariff_id',
    'tariff_version',
    'ratezone_id',
    'ratezone_name',
    'operator_id',
    'operator_name',
    'country_mcc',
    'session_id',
    'imsi',
    'json',
  ],
  encode(row, index) {
    const c = new Check('usage_records', index, row.id);
    const rx = c.uint(row.volume_bytes_rx, 'volume_bytes_rx');
    const tx = c.uint(row.volume_bytes_tx, 'volume_bytes_tx');
    const total = c.uint(row.volume_bytes_total, 'volume_bytes_total');
    if (total !== rx + tx)
      c.fail('volume_bytes_total', `must be volume_bytes_rx + volume_bytes_tx (${rx + tx})`);
    return [
      c.uint(row.id, 'id'),
      c.uint(row.endpoint_id, 'endpoint_id'),
      c.uint(row.organisation_id, 'organisation_id'),
      c.uint(row.traffic_type, 'traffic_type', UINT8),
      c.isoTime(row.start_timestamp, 'start_timestamp'),
      c.isoTime(row.end_timestamp, 'end_timestamp'),
      rx,
      tx,
      total,
      c.decimal(row.volume_rx, 'volume_rx', 18, 6, false),
      c.decimal(row.volume_tx, 'volume_tx', 18, 6, false),
      c.decimal(row.volume_total, 'volume_total', 18, 6, false),
      // Signed: a re-rating adjustment may credit.
      c.decimal(row.cost, 'cost', 38, 10, true),
      c.string(row.currency, 'currency'),
      c.uint(row.tariff_id, 'tariff_id'),
      c.uint(row.tariff_version, 'tariff_version', UINT32),
      c.uint(row.ratezone_id, 'ratezone_id'),
      c.string(row.ratezone_name, 'ratezone_name'),
      c.uint(row.operator_id, 'operator_id'),
      c.string(row.operator_name, 'operator_name'),
      c.string(row.country_mcc, 'country_mcc'),
      c.nullableString(row.session_id, 'session_id'),
      c.string(row.imsi, 'imsi'),
      c.string(row.json, 'json'),
    ];
  },
};

function base64(payload: Uint8Array | string): string {
  return typeof payload === 'string'
    ? Buffer.from(payload, 'utf8').toString('base64')
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
}

export const DEAD_LETTERS: TableWire<DeadLetterRow> = {
  table: 'dead_letters',
  // payload_base64 is an EPHEMERAL column: the server decodes it into payload.
  columns: [
    'id',
    'timestamp',
    'stage',
    'reason_code',
    'reason',
    'source',
    '`partition`',
    '`offset`',
    'record_kind',
    'payload_base64',
  ],
  encode(row, index) {
    const c = new Check('dead_letters', index, row.id);
    if (typeof row.payload !== 'string' && !(row.payload instanceof Uint8Array))
      c.fail('payload', 'must be bytes (Uint8Array) or a string');
    return [
      c.uint(row.id, 'id'),
      c.epochMs(row.timestamp, 'timestamp'),
      c.string(row.stage, 'stage'),
      c.string(row.reason_code, 'reason_code'),
      c.string(row.reason, 'reason'),
      c.string(row.source, 'source'),
      c.uint(row.partition, 'partition', UINT32),
      c.uint(row.offset, 'offset'),
      c.nullableString(row.record_kind, 'record_kind'),
      base64(row.payload),
    ];
  },
};
