/**
 * The Store: the only way the rest of Data Streamer touches ClickHouse. One implementation
 * over @clickhouse/client serves both the embedded engine (chdb) and a server.
 */
import { Readable } from 'node:stream';
import {
  type ClickHouseClient,
  type ClickHouseSettings,
  type DataFormat,
  drainStream,
} from '@clickhouse/client';
import { StorageError, toStorageError } from './errors.js';
import { jsonLines } from './json-lines.js';
import { applyMigrations, loadMigrations, type MigrationReport, type MigrationTarget } from './migrations.js';
import type { DeadLetterRow, EventRow, UsageRow } from './rows.js';
import { splitStatements } from './sql-split.js';
import { DEAD_LETTERS, EVENTS, INSERT_FORMAT, type TableWire, USAGE_RECORDS } from './wire.js';

export type StoreKind = 'embedded' | 'server';

export interface Store {
  readonly kind: StoreKind;
  /**
   * Applies the pending migrations in order; a no-op when the schema is current.
   * `dir` replaces the shipped migrations (tests and tools only).
   */
  migrate(options?: { dir?: string }): Promise<MigrationReport>;
  /**
   * Insert one batch. `token` names the batch deterministically (derive it from the input
   * range, e.g. "usage:p3:1000-1999"): the same batch inserted again with the same token is
   * dropped by ClickHouse, in the table and in the rollups fed by it. A token is 1 to 200 of
   * A-Z a-z 0-9 _ . : - + = / @ ,
   */
  insertEvents(rows: readonly EventRow[], token: string): Promise<void>;
  insertUsage(rows: readonly UsageRow[], token: string): Promise<void>;
  /** Output records as their exact JSON text; ClickHouse fills the typed columns (migration 005). */
  insertJson(
    table: 'events' | 'usage_records',
    records: readonly (Buffer | string)[],
    token: string,
  ): Promise<void>;
  insertDeadLetters(rows: readonly DeadLetterRow[], token: string): Promise<void>;
  /** One SQL statement; its rows as objects (64-bit integers and decimals as strings). */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** One SQL statement; its result as text in a ClickHouse output format (PrettyCompact, CSVWithNames...). */
  query(sql: string, format: string): Promise<string>;
  /** Waits for calls in flight, then releases the connection (and the embedded engine's data directory). */
  close(): Promise<void>;
}

/**
 * Settings of every insert, in the statement's SETTINGS clause. The token makes a repeated
 * batch a no-op in each MergeTree table with non_replicated_deduplication_window; the MV
 * setting carries that to the rollups. async_insert is off because async inserts
 * deduplicate differently (and some servers, ClickHouse Cloud among them, turn it on by
 * default). The token is checked against TOKEN, so it is safe inside the quotes.
 */
function insertSettings(token: string): Record<string, string | number> {
  return {
    insert_deduplication_token: token,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    async_insert: 0,
  };
}

function insertStatement(table: string, columns: readonly string[], token: string, format: string): string {
  const settings = Object.entries(insertSettings(token))
    .map(([name, value]) => `${name} = ${typeof value === 'string' ? `'${value}'` : value}`)
    .join(', ');
  return `INSERT INTO ${table} (${columns.join(', ')}) SETTINGS ${settings} FORMAT ${format}`;
}

/**
 * The per-call settings switched off for inserts: chdb's adapter turns each into a SET
 * statement before the INSERT, and each of those costs a pass over the batch's text
 * (~75 ms for 50,000 usage rows). The insert's own SETTINGS clause has what it needs.
 */
const NO_CALL_SETTINGS: ClickHouseSettings = {
  insert_deduplication_token: undefined,
  output_format_json_quote_64bit_integers: undefined,
  output_format_json_quote_decimals: undefined,
};

const TOKEN = /^[\w.:\-+=/@,]{1,200}$/;
const CHUNK_ROWS = 10_000;
const FORMAT_NAME = /^[A-Za-z][A-Za-z0-9]*$/;

export interface StoreParts {
  kind: StoreKind;
  client: ClickHouseClient;
  /** The embedded engine runs one statement at a time, with settings bound to its session. */
  serialize: boolean;
  /** Run before migrations (a server store creates its database). */
  prepare?: () => Promise<void>;
  /** Run after the client is closed (the embedded store lets go of its data directory). */
  release?: () => Promise<void>;
  /** The embedded store's insert of bytes straight into chDB (no copy into SQL text). */
  rawInsert?: (params: {
    table: string;
    columns: string[];
    format: 'TabSeparated';
    values: Buffer;
    settings: Record<string, string | number>;
  }) => Promise<unknown>;
}

export class ClickHouseStore implements Store {
  readonly kind: StoreKind;
  readonly #parts: StoreParts;
  readonly #pending = new Set<Promise<unknown>>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Off once the embedded engine said it has no jemalloc to purge (a build without it). */
  #purge = true;

  constructor(parts: StoreParts) {
    this.kind = parts.kind;
    this.#parts = parts;
  }

  async migrate(options: { dir?: string } = {}): Promise<MigrationReport> {
    this.#assertOpen();
    const migrations = loadMigrations(options.dir);
    await this.#call('prepare the database', async () => this.#parts.prepare?.());
    const target: MigrationTarget = {
      command: (sql, operation) =>
        this.#call(operation, async () => void (await this.#client.command({ query: sql }))),
      rows: <T>(sql: string, operation: string) =>
        this.#call(operation, async () =>
          (await this.#client.query({ query: sql, format: 'JSONEachRow' })).json<T>(),
        ),
    };
    return applyMigrations(target, migrations);
  }

  insertEvents(rows: readonly EventRow[], token: string): Promise<void> {
    return this.#insert(EVENTS, rows, token);
  }

  insertUsage(rows: readonly UsageRow[], token: string): Promise<void> {
    return this.#insert(USAGE_RECORDS, rows, token);
  }

  /**
   * Inserts output records as their JSON text, exactly as on the output log and as a
   * data stream delivers them; ClickHouse fills the typed columns from it (migration 005).
   * The fast path for the engine: nothing is parsed or re-encoded in Node.
   */
  async insertJson(
    table: 'events' | 'usage_records',
    records: readonly (Buffer | string)[],
    token: string,
  ): Promise<void> {
    this.#assertOpen();
    this.#checkToken(table, token);
    if (records.length === 0) return;
    const body = jsonLines(table, records);
    await this.#call(`insert into ${table}`, async () => {
      const raw = this.#parts.rawInsert;
      // Embedded: the bytes go to chDB as they are, parsed by its own threads; the client
      // adapter would copy them into the statement's text first.
      if (raw) {
        await raw({
          table,
          columns: ['json'],
          format: 'TabSeparated',
          values: body,
          settings: insertSettings(token),
        });
        await this.#releaseMemory();
      } else {
        const result = await this.#client.exec({
          query: insertStatement(table, ['json'], token, 'TabSeparated'),
          values: Readable.from([body]),
          clickhouse_settings: NO_CALL_SETTINGS,
        });
        await drainStream(result.stream);
      }
    });
  }

  insertDeadLetters(rows: readonly DeadLetterRow[], token: string): Promise<void> {
    return this.#insert(DEAD_LETTERS, rows, token);
  }

  /**
   * chDB's allocator (jemalloc) keeps the pages an insert freed: hundreds of MB after a few
   * large inserts, which ClickHouse no longer counts as used but the process still holds
   * (measured: 1,070 MB RSS after 400,000 usage rows, 725 MB with a purge after each
   * insert, ~25 ms each). A chDB built without jemalloc refuses; then this stops trying.
   */
  async #releaseMemory(): Promise<void> {
    if (!this.#purge) return;
    try {
      await this.#client.command({ query: 'SYSTEM JEMALLOC PURGE' });
    } catch {
      this.#purge = false;
    }
  }

  query(sql: string): Promise<Record<string, unknown>[]>;
  query(sql: string, format: string): Promise<string>;
  async query(sql: string, format?: string): Promise<Record<string, unknown>[] | string> {
    this.#assertOpen();
    const statements = splitStatements(sql);
    const statement = statements[0];
    if (!statement || statements.length > 1)
      throw new StorageError(
        'STORAGE_INVALID_INPUT',
        `query takes exactly one SQL statement, got ${statements.length}`,
      );
    if (format !== undefined && !FORMAT_NAME.test(format))
      throw new StorageError('STORAGE_INVALID_INPUT', `"${format}" is not a ClickHouse format name`);
    const text = await this.#call('query', async () => {
      const result = await this.#client.exec({
        query: statement.sql,
        clickhouse_settings: {
          // Any format name ClickHouse knows, not only the client's list of parseable ones.
          default_format: (format ?? 'JSONEachRow') as DataFormat,
          // A server buffers the result, so a failure mid-way is an error status, not a truncated body.
          wait_end_of_query: 1,
        },
      });
      const chunks: Buffer[] = [];
      for await (const chunk of result.stream) chunks.push(Buffer.from(chunk as Uint8Array));
      return Buffer.concat(chunks).toString('utf8');
    });
    if (format !== undefined) return text;
    try {
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    } catch {
      throw new StorageError(
        'STORAGE_INVALID_INPUT',
        'the result is not JSONEachRow: a statement with its own FORMAT clause needs the format argument',
      );
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
    try {
      await this.#client.close();
    } finally {
      await this.#parts.release?.();
    }
  }

  get #client(): ClickHouseClient {
    return this.#parts.client;
  }

  async #insert<Row>(wire: TableWire<Row>, rows: readonly Row[], token: string): Promise<void> {
    this.#assertOpen();
    this.#checkToken(wire.table, token);
    if (rows.length === 0) return;
    // Every row is checked and encoded before anything is sent: a bad batch fails whole.
    // Chunks keep each string small; a server receives them as they are.
    const chunks: string[] = [];
    for (let from = 0; from < rows.length; from += CHUNK_ROWS) {
      const part = rows
        .slice(from, from + CHUNK_ROWS)
        .map((row, k) => JSON.stringify(wire.encode(row, from + k)));
      chunks.push(`${part.join('\n')}\n`);
    }
    await this.#call(`insert into ${wire.table}`, async () => {
      // exec, not insert: the statement carries its SETTINGS clause (see insertStatement).
      const result = await this.#client.exec({
        query: insertStatement(wire.table, wire.columns, token, INSERT_FORMAT),
        values: Readable.from(chunks),
        clickhouse_settings: NO_CALL_SETTINGS,
      });
      await drainStream(result.stream);
    });
  }

  /** Runs one ClickHouse call: in order when serialized, tracked for close, errors classified. */
  #call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    const run = async () => {
      try {
        return await fn();
      } catch (error) {
        throw toStorageError(error, operation);
      }
    };
    // The queue never rejects (see below), so each call starts once the previous one settled.
    const promise = this.#parts.serialize ? this.#queue.then(run) : run();
    if (this.#parts.serialize) this.#queue = promise.catch(() => undefined);
    this.#pending.add(promise);
    const forget = () => this.#pending.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  #checkToken(table: string, token: string): void {
    if (!TOKEN.test(token))
      throw new StorageError(
        'STORAGE_INVALID_INPUT',
        `insert into ${table}: token ${JSON.stringify(token)} must be 1 to 200 of A-Z a-z 0-9 _ . : - + = / @ ,`,
      );
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('STORAGE_CLOSED', 'the store is closed');
  }
}
