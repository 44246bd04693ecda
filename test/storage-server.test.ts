import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../src/storage/errors.js';
import { openStore } from '../src/storage/open.js';
import type { Store } from '../src/storage/store.js';
import { type ClickHouseHttp, startClickHouseHttp } from './support/clickhouse-http.js';
import { freePort } from './support/ports.js';
import { usageRows } from './support/storage-fixtures.js';
import { storeSuite } from './support/storage-suite.js';

let starting: Promise<ClickHouseHttp> | undefined;

/**
 * The one HTTP server of this file, started by the first test that needs it. Each test
 * awaits it, so without chdb every test fails with the server's message (a failing
 * beforeAll would only mark them skipped).
 */
function server(): Promise<ClickHouseHttp> {
  starting ??= startClickHouseHttp({
    dataDir: mkdtempSync(join(tmpdir(), 'ds-clickhouse-http-')),
    users: { default: '', writer: 'secret' },
  });
  return starting;
}

afterAll(async () => {
  await (await starting?.catch(() => undefined))?.close();
});

/** Each scope is its own database on the one server, which migrate() creates. */
const open = async (scope: string, extra: { requestTimeoutMs?: number } = {}) =>
  openStore({
    kind: 'server',
    url: (await server()).url,
    database: `ds_${scope.replace(/-/g, '_')}`,
    ...extra,
  });

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe('server store (@clickhouse/client over HTTP)', () => {
  storeSuite({ open: (scope) => open(scope) });

  describe('the HTTP conversation', () => {
    it('sends each insert as one statement with its token and deduplication settings, data in the body', async () => {
      const store = await open('protocol');
      try {
        await store.migrate();
        const before = (await server()).requests.length;
        await store.insertUsage(usageRows(1, 2), 'p1:1-2');
        const inserts = (await server()).requests.slice(before);
        expect(inserts).toHaveLength(1);
        const [insert] = inserts;
        expect(insert?.method).toBe('POST');
        expect(insert?.params).toMatchObject({ database: 'ds_protocol' });
        expect(insert?.params).not.toHaveProperty('insert_deduplication_token');
        expect(insert?.params.query).toMatch(
          /^INSERT INTO usage_records \(id, endpoint_id, .*, json\) SETTINGS insert_deduplication_token = 'p1:1-2', deduplicate_blocks_in_dependent_materialized_views = 1, async_insert = 0 FORMAT JSONCompactEachRow$/,
        );
        expect(insert?.sql.split('\n').slice(1, 3)).toEqual([
          expect.stringMatching(/^\[1,20000002,7,5,"2026-01-05 00:00:01.000",/),
          expect.stringMatching(/^\[2,/),
        ]);
      } finally {
        await store.close();
      }
    });

    it('answers like ClickHouse: ping, summary headers, error codes and statuses', async () => {
      expect(await (await fetch(`${(await server()).url}/ping`)).text()).toBe('Ok.\n');
      const ok = await fetch(
        `${(await server()).url}/?query=${encodeURIComponent('SELECT 1 AS x')}&default_format=JSONEachRow`,
      );
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('{"x":1}\n');
      expect(ok.headers.get('x-clickhouse-format')).toBe('JSONEachRow');
      expect(JSON.parse(ok.headers.get('x-clickhouse-summary') ?? '{}')).toHaveProperty('read_rows');
      const bad = await fetch((await server()).url, { method: 'POST', body: 'SELEC 1' });
      expect(bad.status).toBe(400);
      expect(bad.headers.get('x-clickhouse-exception-code')).toBe('62');
      expect(await bad.text()).toMatch(
        /^Code: 62\. DB::Exception: .*\(SYNTAX_ERROR\) \(version [\d.]+\)\n$/s,
      );
      const readonly = await fetch(
        `${(await server()).url}/?query=${encodeURIComponent('CREATE TABLE t (x UInt8) ENGINE = Memory')}`,
      );
      expect(readonly.status).toBe(403);
    });
    it('speaks the rest of what @clickhouse/client may send: gzip both ways, bound parameters, sessions', async () => {
      const client = createClient({
        url: (await server()).url,
        compression: { request: true, response: true },
        log: { level: ClickHouseLogLevel.OFF },
      });
      try {
        const bound = await client.query({
          query: 'SELECT {n:UInt32} + 1 AS n, {s:String} AS s',
          query_params: { n: 41, s: "it's" },
          format: 'JSONEachRow',
        });
        expect(await bound.json()).toEqual([{ n: '42', s: "it's" }]);
        // A gzip request body (insert) and gzip answers.
        await client.command({ query: 'CREATE TABLE gz (x UInt8) ENGINE = MergeTree ORDER BY x' });
        await client.insert({ table: 'gz', values: [{ x: 1 }, { x: 2 }], format: 'JSONEachRow' });
        const summed = await client.query({ query: 'SELECT sum(x) AS s FROM gz', format: 'JSONEachRow' });
        expect(await summed.json()).toEqual([{ s: '3' }]);
        await client.command({ query: 'SET max_block_size = 1234', session_id: 'one' });
        const kept = await client.query({
          query: "SELECT toString(getSetting('max_block_size')) AS t",
          format: 'JSONEachRow',
          session_id: 'one',
        });
        expect(await kept.json()).toEqual([{ t: '1234' }]);
        const fresh = await client.query({
          query: "SELECT toString(getSetting('max_block_size')) AS t",
          format: 'JSONEachRow',
        });
        expect(await fresh.json()).not.toEqual([{ t: '1234' }]);
      } finally {
        await client.close();
      }
    });
  });

  describe('failures a server has and an embedded engine does not', () => {
    // A short timeout, so a slow answer is a timeout. Opened lazily, like the server.
    let opening: Promise<Store> | undefined;
    const faulty = () =>
      (opening ??= open('faults', { requestTimeoutMs: 500 }).then(async (store) => {
        await store.migrate();
        return store;
      }));
    afterAll(async () => {
      await (await opening?.catch(() => undefined))?.close();
    });

    it('a refused connection is retriable', async () => {
      // A free port below the ephemeral range: nothing listens there, and no client takes it.
      const port = await freePort();
      const nowhere = await openStore({ kind: 'server', url: `http://127.0.0.1:${port}` });
      const error = await failure(nowhere.query('SELECT 1'));
      expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', kind: 'retriable' });
      expect(error.message).toContain('ECONNREFUSED');
      await nowhere.close();
    });

    it("a proxy's 503 page, an overloaded server and a reset connection are retriable", async () => {
      const [store, http] = await Promise.all([faulty(), server()]);
      http.failNext({ status: 503, body: '<html><body>503 Service Unavailable</body></html>' });
      expect(await failure(store.query('SELECT 1'))).toMatchObject({
        code: 'STORAGE_UNAVAILABLE',
        kind: 'retriable',
      });

      http.failNext({
        status: 500,
        headers: { 'X-ClickHouse-Exception-Code': '241', 'Content-Type': 'text/plain' },
        body: 'Code: 241. DB::Exception: Memory limit (total) exceeded: would use 9.31 GiB. (MEMORY_LIMIT_EXCEEDED) (version 24.3.1.1)\n',
      });
      expect(await failure(store.query('SELECT 1'))).toMatchObject({
        code: 'STORAGE_UNAVAILABLE',
        kind: 'retriable',
        clickhouseCode: 241,
        clickhouseType: 'MEMORY_LIMIT_EXCEEDED',
      });

      http.failNext({ reset: true });
      expect(await failure(store.query('SELECT 1'))).toMatchObject({
        code: 'STORAGE_UNAVAILABLE',
        kind: 'retriable',
      });
      expect(await store.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    });

    it('a timed-out insert is retriable, and retrying it with the same token stores it once', async () => {
      const [store, http] = await Promise.all([faulty(), server()]);
      const rows = usageRows(1, 50);
      // The server applies the insert after the client gave up: the outcome is unknown to the writer.
      http.failNext({ delayMs: 1_000 });
      const error = await failure(store.insertUsage(rows, 'p2:1-50'));
      expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', kind: 'retriable' });
      const attempts = () =>
        http.requests.filter((r) => r.params.query?.includes("insert_deduplication_token = 'p2:1-50'"));
      // Wait until the abandoned attempt has reached the engine (which runs requests in
      // arrival order), then retry.
      for (let waited = 0; attempts().length === 0 && waited < 10_000; waited += 50)
        await new Promise((r) => setTimeout(r, 50));
      await store.insertUsage(rows, 'p2:1-50');
      // Both attempts reached the engine; the second was dropped by its token.
      expect(attempts()).toHaveLength(2);
      expect(await store.query('SELECT count() AS n FROM usage_records')).toEqual([{ n: '50' }]);
      expect(await store.query('SELECT sum(records) AS n FROM usage_daily')).toEqual([{ n: '50' }]);
    });

    it('wrong credentials are permanent', async () => {
      const intruder = await openStore({
        kind: 'server',
        url: (await server()).url,
        username: 'writer',
        password: 'guess',
      });
      const error = await failure(intruder.query('SELECT 1'));
      expect(error).toMatchObject({
        code: 'STORAGE_REJECTED',
        kind: 'permanent',
        clickhouseType: 'AUTHENTICATION_FAILED',
      });
      await intruder.close();
      const writer = await openStore({
        kind: 'server',
        url: (await server()).url,
        username: 'writer',
        password: 'secret',
      });
      expect(await writer.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await writer.close();
    });

    it('refuses options that cannot work', async () => {
      expect((await failure(openStore({ kind: 'server', url: 'not a url' }))).code).toBe('STORAGE_CONFIG');
      expect((await failure(openStore({ kind: 'server', url: 'ftp://x' }))).code).toBe('STORAGE_CONFIG');
      expect(
        (await failure(openStore({ kind: 'server', url: (await server()).url, database: 'a;b' }))).code,
      ).toBe('STORAGE_CONFIG');
    });
  });
});
