import { describe, expect, it } from 'vitest';
import { toJson } from '../src/core/output.js';
import { eventToRow, usageToRow } from '../src/storage/convert.js';
import { StorageError, toStorageError } from '../src/storage/errors.js';
import { splitStatements } from '../src/storage/sql-split.js';
import { DEAD_LETTERS, EVENTS, USAGE_RECORDS } from '../src/storage/wire.js';
import { deadLetter, emnifyEvent, usageRecord } from './support/storage-fixtures.js';

describe('splitStatements', () => {
  it('splits at top-level semicolons only, with the line of each statement', () => {
    const text = [
      '-- a comment; not a statement',
      "CREATE TABLE a (s String DEFAULT 'x;y', `odd;name` UInt8) ENGINE = Memory;",
      '/* block; comment */',
      "SELECT \"quoted;identifier\", 'it''s; fine', 'back\\'slash;' -- trailing; comment",
      ';',
      '  ;  -- only a comment',
    ].join('\n');
    expect(splitStatements(text)).toEqual([
      { sql: "CREATE TABLE a (s String DEFAULT 'x;y', `odd;name` UInt8) ENGINE = Memory", line: 2 },
      {
        sql: "SELECT \"quoted;identifier\", 'it''s; fine', 'back\\'slash;' -- trailing; comment",
        line: 4,
      },
    ]);
    expect(splitStatements('SELECT 1')).toEqual([{ sql: 'SELECT 1', line: 1 }]);
    expect(splitStatements(' \n-- nothing\n')).toEqual([]);
  });
});

describe('output records to rows', () => {
  it('flattens an event into its columns and keeps the emnify JSON', () => {
    const event = emnifyEvent(42);
    expect(eventToRow(event)).toEqual({
      id: 42,
      timestamp: '2026-01-05T00:00:42.000Z',
      event_type: 1,
      event_type_description: 'Update location',
      severity: 0,
      alert: false,
      organisation_id: 7,
      endpoint_id: 20000001,
      sim_id: 3001,
      imsi: '295050000000001',
      source: 0,
      json: toJson(event),
    });
    expect(eventToRow(emnifyEvent(1, { endpoint: null, sim: null, imsi: null }))).toMatchObject({
      endpoint_id: null,
      sim_id: null,
      imsi: null,
    });
  });

  it('flattens a usage record with its exact byte volumes', () => {
    const record = usageRecord(9);
    const row = usageToRow(record);
    expect(row).toMatchObject({
      id: 9,
      endpoint_id: 20000005,
      organisation_id: 7,
      traffic_type: 5,
      volume_bytes_rx: 12345,
      volume_bytes_tx: 2345,
      volume_bytes_total: 14690,
      volume_rx: '0.011773',
      volume_total: '0.014009',
      cost: '0.0219726563',
      currency: 'EUR',
      tariff_id: 1,
      tariff_version: 2,
      ratezone_id: 1,
      ratezone_name: 'Zone 1',
      operator_id: 5,
      operator_name: 'Telekom Deutschland',
      country_mcc: '262',
      session_id: 'b8a1c0de-0000-4000-8000-000000000001',
      imsi: '295050000000001',
    });
    // toJson writes decimals as JSON numbers with their exact digits.
    expect(row.json).toContain('"cost":0.0219726563');
    const huge = usageRecord(9, { rating: { ...record.rating, rx_bytes: 2 ** 53 } });
    expect(() => usageToRow(huge)).toThrow(
      /rating.rx_bytes 9007199254740992 is not a byte count below 2\^53/,
    );
  });
});

describe('wire encoding', () => {
  it('writes tuples in column order with times ClickHouse reads as they are', () => {
    const usage = USAGE_RECORDS.encode(usageToRow(usageRecord(1)), 0);
    expect(usage).toHaveLength(USAGE_RECORDS.columns.length);
    expect(usage.slice(0, 6)).toEqual([
      1,
      20000002,
      7,
      5,
      '2026-01-05 00:00:01.000',
      '2026-01-05 00:01:01.000',
    ]);
    expect(EVENTS.encode(eventToRow(emnifyEvent(1)), 0)).toHaveLength(EVENTS.columns.length);
    const letter = DEAD_LETTERS.encode(deadLetter(1, Uint8Array.from([0, 255])), 0);
    expect(letter[1]).toBe('2026-01-05 00:00:00.001');
    expect(letter.at(-1)).toBe('AP8=');
  });

  it('names the row and the field of a bad value', () => {
    const row = usageToRow(usageRecord(5));
    const cases: [Partial<typeof row>, RegExp][] = [
      [{ cost: '1e-3' }, /row 3 \(id 5\): cost must be a decimal string/],
      [{ volume_rx: '-1' }, /volume_rx must be a non-negative decimal/],
      [{ volume_total: '1234567890123.5' }, /at most 12 integer digits/],
      [{ id: 2 ** 53 }, /id must be an integer/],
      [{ traffic_type: 256 }, /traffic_type must be an integer in 0\.\.255/],
      [{ volume_bytes_total: 1 }, /volume_bytes_total must be volume_bytes_rx \+ volume_bytes_tx/],
      [{ session_id: 7 as unknown as string }, /session_id must be a string/],
    ];
    for (const [change, message] of cases) {
      expect(() => USAGE_RECORDS.encode({ ...row, ...change }, 3), JSON.stringify(change)).toThrow(message);
    }
    expect(() => USAGE_RECORDS.encode({ ...row, cost: '-0.5' }, 0)).not.toThrow();
  });
});

describe('error classification', () => {
  it('keeps StorageErrors and calls programming errors permanent', () => {
    const original = new StorageError('STORAGE_CLOSED', 'closed');
    expect(toStorageError(original, 'x')).toBe(original);
    expect(toStorageError(new TypeError('x is not a function'), 'op')).toMatchObject({
      code: 'STORAGE_REJECTED',
      kind: 'permanent',
    });
  });
});
