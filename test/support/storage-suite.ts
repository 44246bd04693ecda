/**
 * The store's behaviour, run against each engine: the embedded chdb store
 * (test/storage-embedded.test.ts) and a ClickHouse HTTP endpoint through
 * openStore({ kind: 'server' }) (test/storage-server.test.ts). Real engines only.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDecimal, parseDecimal } from '../../src/core/decimal.js';
import { toJson } from '../../src/core/output.js';
import { eventToRow, usageToRow } from '../../src/storage/convert.js';
import { MigrationError, StorageError } from '../../src/storage/errors.js';
import type { Store } from '../../src/storage/store.js';
import { deadLetter, emnifyEvent, eventRows, usageRecord, usageRows } from './storage-fixtures.js';

export interface StoreTarget {
  /** Opens a store on an isolated namespace; the same scope again sees the same data. */
  open(scope: string): Promise<Store>;
}

/** Opens a migrated store on `scope`, runs `body`, always closes. */
async function withStore<T>(
  target: StoreTarget,
  scope: string,
  body: (store: Store) => Promise<T>,
): Promise<T> {
  const store = await target.open(scope);
  try {
    await store.migrate();
    return await body(store);
  } finally {
    await store.close();
  }
}

async function one(store: Store, sql: string): Promise<Record<string, unknown>> {
  const rows = await store.query(sql);
  expect(rows).toHaveLength(1);
  return rows[0] as Record<string, unknown>;
}

/** Rejection of `promise` as a StorageError (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

/** Totals a test compares before and after a repeated insert. */
async function totals(store: Store): Promise<Record<string, unknown>> {
  return {
    ...(await one(
      store,
      `SELECT count() AS rows, toString(sum(cost)) AS cost, sum(volume_bytes_total) AS bytes,
              toString(sum(volume_total)) AS mb FROM usage_records`,
    )),
    ...(await one(
      store,
      `SELECT sum(records) AS rollup_rows, toString(sum(cost)) AS rollup_cost,
              sum(volume_bytes_total) AS rollup_bytes FROM usage_daily`,
    )),
    ...(await one(store, 'SELECT count() AS events FROM events')),
    ...(await one(store, 'SELECT count() AS dead_letters FROM dead_letters')),
  };
}

export function storeSuite(target: StoreTarget): void {
  describe('migrations', () => {
    it('creates the schema once, in order, and records every version', async () => {
      const store = await target.open('migrate');
      try {
        const first = await store.migrate();
        expect(first).toEqual({
          applied: [
            { version: 1, name: 'events' },
            { version: 2, name: 'usage_records' },
            { version: 3, name: 'usage_daily' },
            { version: 4, name: 'dead_letters' },
            { version: 5, name: 'columns_from_json' },
          ],
          version: 5,
        });
        expect(await store.migrate()).toEqual({ applied: [], version: 5 });
        expect(await store.query('SELECT version, name FROM schema_migrations ORDER BY version')).toEqual([
          { version: 1, name: 'events' },
          { version: 2, name: 'usage_records' },
          { version: 3, name: 'usage_daily' },
          { version: 4, name: 'dead_letters' },
          { version: 5, name: 'columns_from_json' },
        ]);
        const tables = await store.query(
          `SELECT name, engine, create_table_query LIKE '%non_replicated_deduplication_window = 10000%' AS dedup
           FROM system.tables WHERE database = currentDatabase() ORDER BY name`,
        );
        expect(tables).toEqual([
          { name: 'dead_letters', engine: 'ReplacingMergeTree', dedup: 1 },
          { name: 'events', engine: 'ReplacingMergeTree', dedup: 1 },
          { name: 'schema_migrations', engine: 'MergeTree', dedup: 0 },
          { name: 'usage_daily', engine: 'SummingMergeTree', dedup: 1 },
          { name: 'usage_daily_mv', engine: 'MaterializedView', dedup: 0 },
          { name: 'usage_records', engine: 'ReplacingMergeTree', dedup: 1 },
        ]);
      } finally {
        await store.close();
      }
    });

    it('stops at a failing migration with an error naming it, and resumes once it is fixed', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ds-migrations-'));
      writeFileSync(
        join(dir, '001_first.sql'),
        'CREATE TABLE IF NOT EXISTS first (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
      );
      const broken = [
        '-- two statements: the first works, the second names a type that does not exist',
        'CREATE TABLE IF NOT EXISTS second (x UInt8) ENGINE = MergeTree ORDER BY x;',
        '',
        'CREATE TABLE IF NOT EXISTS third (x NoSuchType) ENGINE = MergeTree ORDER BY x;',
      ].join('\n');
      writeFileSync(join(dir, '002_broken.sql'), broken);
      writeFileSync(
        join(dir, '003_after.sql'),
        'CREATE TABLE IF NOT EXISTS after (x UInt8) ENGINE = MergeTree ORDER BY x',
      );
      const store = await target.open('migrate-fail');
      try {
        const error = await failure(store.migrate({ dir }));
        expect(error).toBeInstanceOf(MigrationError);
        expect(error.code).toBe('MIGRATION_FAILED');
        expect(error.kind).toBe('permanent');
        expect(error).toMatchObject({ version: 2, migration: 'broken', clickhouseType: 'UNKNOWN_TYPE' });
        expect(error.message).toContain('migration 002_broken.sql failed at statement 2 of 2 (line 4)');
        expect(await store.query('SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
        expect(
          await store.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ('first', 'second', 'after') ORDER BY name",
          ),
        ).toEqual([{ name: 'first' }, { name: 'second' }]);

        writeFileSync(join(dir, '002_broken.sql'), broken.replace('NoSuchType', 'UInt8'));
        expect(await store.migrate({ dir })).toEqual({
          applied: [
            { version: 2, name: 'broken' },
            { version: 3, name: 'after' },
          ],
          version: 3,
        });

        const other = mkdtempSync(join(tmpdir(), 'ds-migrations-'));
        writeFileSync(join(other, '001_renamed.sql'), 'SELECT 1');
        const conflict = await failure(store.migrate({ dir: other }));
        expect(conflict.code).toBe('MIGRATION_CONFLICT');
        expect(conflict.message).toContain('the database records migration 1 "first"');
      } finally {
        await store.close();
      }
    });

    it('refuses malformed migration files before touching the database', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ds-migrations-'));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, '1-first.sql'), 'SELECT 1');
      const store = await target.open('migrate-invalid');
      try {
        const error = await failure(store.migrate({ dir }));
        expect(error.code).toBe('MIGRATION_INVALID');
        expect(error.message).toContain('1-first.sql');
      } finally {
        await store.close();
      }
    });
  });

  describe('inserts', () => {
    it('stores events with typed columns and the exact emnify JSON', async () => {
      await withStore(target, 'events', async (store) => {
        const organisationLevel = emnifyEvent(3, {
          alert: true,
          event_type: { id: 12, description: 'Organisation blocked' },
          event_severity: { id: 2, description: 'Critical' },
          event_source: { id: 1, description: 'Policy Control' },
          endpoint: null,
          sim: null,
          imsi: null,
          detail: null,
        });
        const events = [emnifyEvent(1), emnifyEvent(2), organisationLevel];
        await store.insertEvents(events.map(eventToRow), 'events:p0:1-3');
        expect(
          await store.query(
            `SELECT id, timestamp, toUnixTimestamp64Milli(timestamp) AS ms, event_type, event_type_description,
                    severity, alert, organisation_id, endpoint_id, sim_id, imsi, source
             FROM events ORDER BY id`,
          ),
        ).toEqual([
          {
            id: '1',
            timestamp: '2026-01-05 00:00:01.000',
            ms: String(Date.UTC(2026, 0, 5, 0, 0, 1)),
            event_type: 1,
            event_type_description: 'Update location',
            severity: 0,
            alert: false,
            organisation_id: '7',
            endpoint_id: '20000001',
            sim_id: '3001',
            imsi: '295050000000001',
            source: 0,
          },
          expect.objectContaining({ id: '2', timestamp: '2026-01-05 00:00:02.000' }),
          expect.objectContaining({
            id: '3',
            event_type: 12,
            severity: 2,
            alert: true,
            endpoint_id: null,
            sim_id: null,
            imsi: null,
            source: 1,
          }),
        ]);
        const stored = await store.query('SELECT json FROM events ORDER BY id');
        expect(stored.map((r) => r.json)).toEqual(events.map((e) => toJson(e)));
      });
    });

    it('stores usage records with exact bytes, MB and cost, and answers in any ClickHouse format', async () => {
      await withStore(target, 'usage', async (store) => {
        const rows = usageRows(1, 2);
        await store.insertUsage(rows, 'usage:p0:1-2');
        expect(
          await store.query(
            `SELECT id, endpoint_id, organisation_id, traffic_type, start_timestamp, end_timestamp,
                    volume_bytes_rx, volume_bytes_tx, volume_bytes_total, volume_rx, volume_tx, volume_total,
                    cost, currency, tariff_id, tariff_version, ratezone_id, ratezone_name, operator_id,
                    operator_name, country_mcc, session_id, imsi
             FROM usage_records ORDER BY id LIMIT 1`,
          ),
        ).toEqual([
          {
            id: '1',
            endpoint_id: '20000002',
            organisation_id: '7',
            traffic_type: 5,
            start_timestamp: '2026-01-05 00:00:01.000',
            end_timestamp: '2026-01-05 00:01:01.000',
            volume_bytes_rx: '12345',
            volume_bytes_tx: '2345',
            volume_bytes_total: '14690',
            volume_rx: '0.011773',
            volume_tx: '0.002236',
            volume_total: '0.014009',
            cost: '0.0219726563',
            currency: 'EUR',
            tariff_id: '1',
            tariff_version: 2,
            ratezone_id: '2',
            ratezone_name: 'Zone 2',
            operator_id: '5',
            operator_name: 'Telekom Deutschland',
            country_mcc: '262',
            session_id: 'b8a1c0de-0000-4000-8000-000000000001',
            imsi: '295050000000001',
          },
        ]);
        expect(
          JSON.parse((await one(store, 'SELECT json FROM usage_records WHERE id = 1')).json as string),
        ).toEqual(JSON.parse(toJson(usageRecord(1))));
        expect(await store.query('SELECT id, cost FROM usage_records ORDER BY id', 'CSVWithNames')).toBe(
          '"id","cost"\n1,0.0219726563\n2,0.0219726563\n',
        );
        expect(await store.query('SELECT count() AS n FROM usage_records;', 'TabSeparatedWithNames')).toBe(
          'n\n2\n',
        );
      });
    });

    it('fills the typed columns from the JSON text exactly as a row insert does (the engine path)', async () => {
      // Varied records: SMS with whole volumes, null session and endpoint, costs of 1 to 24 digits.
      const usage = [
        ...Array.from({ length: 40 }, (_, k) =>
          usageRecord(100 + k, {
            cost:
              k % 2
                ? `${k}.${'1234567891'.slice(0, k % 11)}`.replace(/\.$/, '')
                : `12345678901234.${String(k).padStart(10, '7')}`,
          }),
        ),
        usageRecord(200, {
          traffic_type: { id: 6, description: 'SMS' },
          volume: { total: '1', rx: '1', tx: '0' },
          cost: '0.09',
          session_id: null,
          rating: {
            tariff_version: 1,
            rate: '0.09',
            billable_bytes: 0,
            inclusive: false,
            rx_bytes: 0,
            tx_bytes: 0,
          },
        }),
      ];
      const events = [
        emnifyEvent(300),
        emnifyEvent(301, { endpoint: null, sim: null, imsi: null, alert: true }),
      ];
      const read = async (store: Store) => ({
        usage: await store.query('SELECT * EXCEPT json FROM usage_records ORDER BY id'),
        events: await store.query('SELECT * EXCEPT json FROM events ORDER BY id'),
        daily: await store.query(
          'SELECT day, endpoint_id, ratezone_id, traffic_type, sum(records) AS n, toString(sum(cost)) AS cost, toString(sum(volume_total)) AS mb FROM usage_daily GROUP BY ALL ORDER BY ALL',
        ),
      });
      const byRows = await withStore(target, 'json-a', async (store) => {
        await store.insertUsage(usage.map(usageToRow), 'usage:p0:0-41');
        await store.insertEvents(events.map(eventToRow), 'events:p0:0-2');
        return read(store);
      });
      const byJson = await withStore(target, 'json-b', async (store) => {
        await store.insertJson('usage_records', usage.map(toJson), 'usage:p0:0-41');
        await store.insertJson('events', events.map(toJson), 'events:p0:0-2');
        await store.insertJson('usage_records', usage.map(toJson), 'usage:p0:0-41');
        return read(store);
      });
      expect(byJson.usage).toHaveLength(usage.length);
      expect(byJson).toEqual(byRows);
      // ClickHouse prints decimals without trailing zeros.
      expect(byJson.usage.map((r) => r.cost)).toEqual(usage.map((u) => u.cost.replace(/\.?0+$/, '')));
    });

    it("keeps a record's JSON text byte for byte, escapes and all, whether given as text or bytes", async () => {
      await withStore(target, 'json-exact', async (store) => {
        const odd = emnifyEvent(400, {
          description: 'quote " backslash \\ tab \t Zürich €',
          detail: { path: 'C:\\dir\\file', control: '\u0001' },
        });
        const plain = emnifyEvent(401);
        const texts = [toJson(odd), toJson(plain)] as [string, string];
        expect(texts[0]).toContain('C:\\\\dir');
        await store.insertJson('events', [Buffer.from(texts[0]), texts[1]], 'events:p0:400-402');
        expect(
          await store.query(
            "SELECT json, JSONExtractString(json, 'description') AS description, JSONExtractString(json, 'detail', 'path') AS path FROM events ORDER BY id",
          ),
        ).toEqual([
          { json: texts[0], description: odd.description, path: 'C:\\dir\\file' },
          { json: texts[1], description: plain.description, path: '' },
        ]);
        const broken = await store
          .insertJson('events', ['{"id":1,\n"x":2}'], 'events:p0:9-10')
          .catch((e) => e);
        expect(broken).toMatchObject({ code: 'STORAGE_INVALID_INPUT' });
        expect(broken.message).toContain('record 0 is not one line of JSON');
      });
    });

    it('stores dead-letter payloads byte for byte', async () => {
      await withStore(target, 'dead-letters', async (store) => {
        const binary = Uint8Array.from([0, 255, 10, 34, 92, 39, 0xc3, 0x28, 13]);
        await store.insertDeadLetters(
          [deadLetter(1, binary), { ...deadLetter(2, '{"kind":"sms","x":"é€"}'), record_kind: 'sms' }],
          'dead:p3:1001-1002',
        );
        expect(
          await store.query(
            `SELECT id, timestamp, stage, reason_code, source, partition, offset, record_kind, hex(payload) AS hex
             FROM dead_letters ORDER BY id`,
          ),
        ).toEqual([
          {
            id: '1',
            timestamp: '2026-01-05 00:00:00.001',
            stage: 'decode',
            reason_code: 'MALFORMED_JSON',
            source: 'raw',
            partition: 3,
            offset: '1001',
            record_kind: null,
            hex: Buffer.from(binary).toString('hex').toUpperCase(),
          },
          expect.objectContaining({
            id: '2',
            record_kind: 'sms',
            hex: Buffer.from('{"kind":"sms","x":"é€"}', 'utf8').toString('hex').toUpperCase(),
          }),
        ]);
      });
    });
  });

  describe('deduplication', () => {
    it('stores a batch inserted twice with the same token once: counts, sums and rollups unchanged', async () => {
      await withStore(target, 'dedup', async (store) => {
        // More rows than the store sends in one chunk (10,000), to cover a batch in several.
        const usage = usageRows(1, 25_000, (id) => formatDecimal(BigInt(id) * 219_726_563n));
        const events = eventRows(1, 50);
        const letters = [deadLetter(1, 'x'), deadLetter(2, 'y')];
        const insertAll = async () => {
          await store.insertUsage(usage, 'p0:1-25000');
          await store.insertEvents(events, 'p0:1-25000');
          await store.insertDeadLetters(letters, 'p0:1-25000');
        };
        await insertAll();
        const once = await totals(store);
        expect(once).toMatchObject({
          rows: '25000',
          rollup_rows: '25000',
          events: '50',
          dead_letters: '2',
          cost: formatDecimal(219_726_563n * ((25_000n * 25_001n) / 2n)),
        });
        expect(once.rollup_cost).toBe(once.cost);
        expect(once.rollup_bytes).toBe(once.bytes);

        await insertAll();
        expect(await totals(store)).toEqual(once);
        // Merges neither resurrect nor lose anything.
        await store.query('OPTIMIZE TABLE usage_daily FINAL');
        await store.query('OPTIMIZE TABLE usage_records FINAL');
        expect(await totals(store)).toEqual(once);
      });
    });

    it('the token, not the bytes, names the batch: a retry encoded differently is still dropped', async () => {
      await withStore(target, 'dedup-token', async (store) => {
        const usage = usageRows(1, 300);
        await store.insertUsage(usage, 'p0:1-300');
        const once = await totals(store);
        // Same rows in another order: another block hash, so only the token can tell.
        await store.insertUsage([...usage].reverse(), 'p0:1-300');
        expect(await totals(store)).toEqual(once);
        // Reusing a token for other rows drops them too: tokens must name the input range.
        await store.insertUsage(usageRows(1000, 5), 'p0:1-300');
        expect(await totals(store)).toEqual(once);
      });
    });

    it('a repeat under another token is caught by ReplacingMergeTree (FINAL, merges), not by the rollup', async () => {
      await withStore(target, 'dedup-backstop', async (store) => {
        const usage = usageRows(1, 100);
        await store.insertUsage(usage, 'first-run');
        await store.insertUsage(usage, 'second-run');
        expect(await one(store, 'SELECT count() AS n FROM usage_records')).toEqual({ n: '200' });
        expect(await one(store, 'SELECT count() AS n FROM usage_records FINAL')).toEqual({ n: '100' });
        await store.query('OPTIMIZE TABLE usage_records FINAL');
        expect(await one(store, 'SELECT count() AS n FROM usage_records')).toEqual({ n: '100' });
        // The documented limit: the view saw both inserts (src/storage/README.md).
        expect(await one(store, 'SELECT sum(records) AS n FROM usage_daily')).toEqual({ n: '200' });
      });
    });

    it('sums 10,000 costs exactly, in usage_records and in the daily rollup', async () => {
      await withStore(target, 'exact', async (store) => {
        // Costs with all ten decimals in play, from 0.0000000001 to a few hundred.
        const cost = (id: number) =>
          formatDecimal(
            (BigInt(id) * 219_726_563n + BigInt(id % 7) * 123_456_789_012n) % 3_000_000_000_000n || 1n,
          );
        let expected = 0n;
        const byDay = new Map<string, bigint>();
        for (let from = 0; from < 10_000; from += 2_500) {
          const rows = usageRows(from * 10, 2_500, cost);
          for (const row of rows) {
            expected += parseDecimal(row.cost);
            const day = row.start_timestamp.slice(0, 10);
            byDay.set(day, (byDay.get(day) ?? 0n) + parseDecimal(row.cost));
          }
          await store.insertUsage(rows, `exact:${from}`);
        }
        const base = await one(store, 'SELECT count() AS n, toString(sum(cost)) AS total FROM usage_records');
        expect(base.n).toBe('10000');
        expect(parseDecimal(base.total as string)).toBe(expected);
        const rollup = await one(
          store,
          'SELECT sum(records) AS n, toString(sum(cost)) AS total, toTypeName(sum(cost)) AS type FROM usage_daily',
        );
        expect(rollup).toMatchObject({ n: '10000', type: 'Decimal(38, 10)' });
        expect(parseDecimal(rollup.total as string)).toBe(expected);
        const days = await store.query(
          'SELECT toString(day) AS day, toString(sum(cost)) AS total FROM usage_daily GROUP BY day ORDER BY day',
        );
        expect(new Map(days.map((d) => [d.day as string, parseDecimal(d.total as string)]))).toEqual(byDay);
      });
    });
  });

  describe('lifecycle and errors', () => {
    it('keeps data and deduplication state across close and reopen', async () => {
      const rows = usageRows(1, 20);
      await withStore(target, 'persist', async (store) => {
        await store.insertUsage(rows, 'persist:1-20');
      });
      await withStore(target, 'persist', async (store) => {
        expect(await store.migrate()).toEqual({ applied: [], version: 5 });
        await store.insertUsage(rows, 'persist:1-20');
        expect(await one(store, 'SELECT count() AS n FROM usage_records')).toEqual({ n: '20' });
        expect(await one(store, 'SELECT sum(records) AS n FROM usage_daily')).toEqual({ n: '20' });
      });
    });

    it('classifies what ClickHouse rejects as permanent, with its error name', async () => {
      const store = await target.open('errors');
      try {
        const missing = await failure(store.insertUsage(usageRows(1, 1), 'before-migrate'));
        expect(missing).toMatchObject({ code: 'STORAGE_REJECTED', kind: 'permanent' });
        // A server store's database is created by migrate() too.
        expect(missing.clickhouseType).toMatch(/^UNKNOWN_(TABLE|DATABASE)$/);
        expect(missing.message).toMatch(/^insert into usage_records: ClickHouse error \d+ UNKNOWN_/);
        await store.migrate();
        const syntax = await failure(store.query('SELEC 1'));
        expect(syntax).toMatchObject({ code: 'STORAGE_REJECTED', kind: 'permanent', clickhouseCode: 62 });
        expect(syntax.clickhouseType).toBe('SYNTAX_ERROR');
        const type = await failure(store.query("SELECT toUInt64('x') + 1"));
        expect(type).toMatchObject({
          code: 'STORAGE_REJECTED',
          kind: 'permanent',
          clickhouseType: 'CANNOT_PARSE_TEXT',
        });
        const mismatch = await failure(store.query("SELECT 1 + 'a'"));
        expect(mismatch).toMatchObject({ code: 'STORAGE_REJECTED', kind: 'permanent' });
      } finally {
        await store.close();
      }
    });

    it('refuses bad rows, tokens and statements before sending anything', async () => {
      await withStore(target, 'invalid', async (store) => {
        const good = usageRows(1, 3);
        const badCost = good.map((row, i) => (i === 2 ? { ...row, cost: '0.00000000001' } : row));
        const error = await failure(store.insertUsage(badCost, 'bad-cost'));
        expect(error.code).toBe('STORAGE_INVALID_INPUT');
        expect(error.message).toContain('usage_records row 2 (id 3): cost must be a decimal string');
        const badTime = [{ ...(good[0] as (typeof good)[0]), start_timestamp: '2026-01-05 00:00:00' }];
        expect((await failure(store.insertUsage(badTime, 'bad-time'))).message).toContain(
          'start_timestamp must be ISO-8601 UTC',
        );
        const negative = [{ ...eventToRow(emnifyEvent(1)), organisation_id: -1 }];
        expect((await failure(store.insertEvents(negative, 'negative'))).message).toContain(
          'organisation_id',
        );
        expect((await failure(store.insertUsage(good, "it's"))).code).toBe('STORAGE_INVALID_INPUT');
        expect((await failure(store.insertUsage(good, ''))).code).toBe('STORAGE_INVALID_INPUT');
        expect((await failure(store.query('SELECT 1; SELECT 2'))).code).toBe('STORAGE_INVALID_INPUT');
        expect(await one(store, 'SELECT count() AS n FROM usage_records')).toEqual({ n: '0' });
      });
    });

    it('refuses every call after close', async () => {
      const store = await target.open('closed');
      await store.close();
      await store.close();
      expect((await failure(store.query('SELECT 1'))).code).toBe('STORAGE_CLOSED');
      expect((await failure(store.insertUsage(usageRows(1, 1), 't'))).code).toBe('STORAGE_CLOSED');
    });
  });
}
