/**
 * openStore: the embedded engine (chdb in this process, data in a directory) or a ClickHouse
 * server over HTTP, behind the same Store and the same SQL.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
  ClickHouseLogLevel,
  type ClickHouseSettings,
  createClient,
} from '@clickhouse/client';
import { loadChdb } from './chdb.js';
import { StorageError, toStorageError } from './errors.js';
import { ClickHouseStore, type Store } from './store.js';

export type StoreOptions =
  | {
      kind: 'embedded';
      /** Directory of the engine's data; created when missing. One per process at a time. */
      dataDir: string;
    }
  | {
      kind: 'server';
      /** HTTP(S) endpoint, e.g. http://localhost:8123. */
      url: string;
      username?: string;
      password?: string;
      /** Database of the tables (default "default"); migrate() creates it when missing. */
      database?: string;
      /** Per request, default 30 s; a timeout is a retriable STORAGE_UNAVAILABLE. */
      requestTimeoutMs?: number;
    };

/**
 * Settings sent with every call. chdb keeps a setting for the rest of its session, so the
 * insert token is reset on each call: no statement may inherit the previous insert's token.
 * JSON output quotes 64-bit integers and decimals (the server default for the former, not
 * chdb's), so sums reach JavaScript exactly on both engines.
 */
const EVERY_CALL: ClickHouseSettings = {
  insert_deduplication_token: '',
  output_format_json_quote_64bit_integers: 1,
  output_format_json_quote_decimals: 1,
};

const DATABASE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.kind === 'embedded' ? openEmbedded(options.dataDir) : openServer(options);
}

async function openEmbedded(dataDir: string): Promise<Store> {
  const path = resolve(dataDir);
  const engine = await loadChdb();
  let connection: ReturnType<typeof engine.createConnection>;
  try {
    mkdirSync(path, { recursive: true });
    connection = engine.createConnection({ path });
  } catch (error) {
    throw new StorageError(
      'STORAGE_CONFIG',
      `cannot open the embedded store at ${path}: ${error instanceof Error ? error.message : String(error)}. ` +
        'chdb binds one data directory per process, and a data directory to one process: ' +
        'close the store open on another directory first, or stop the other process using this one.',
      'permanent',
      { cause: error },
    );
  }
  const client = createClient({
    // chdb types its adapter against @clickhouse/client-common, the client bundles its own
    // copy of those types: same shapes, two declarations (SettingsMap is a class in both).
    connection: connection as unknown as NonNullable<ClickHouseClientConfigOptions['connection']>,
    clickhouse_settings: EVERY_CALL,
    log: { level: ClickHouseLogLevel.OFF },
  });
  return new ClickHouseStore({
    kind: 'embedded',
    client,
    serialize: true,
    release: engine.drainPending,
    rawInsert: (params) => connection.chdb.rawInsert(params),
  });
}

async function openServer(options: Extract<StoreOptions, { kind: 'server' }>): Promise<Store> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (error) {
    throw new StorageError('STORAGE_CONFIG', `"${options.url}" is not a URL`, 'permanent', { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new StorageError(
      'STORAGE_CONFIG',
      `${options.url}: a ClickHouse server is reached over http: or https:`,
    );
  const database = options.database ?? 'default';
  if (!DATABASE.test(database))
    throw new StorageError(
      'STORAGE_CONFIG',
      `"${database}" is not a plain database name ([A-Za-z_][A-Za-z0-9_]*)`,
    );
  const connect = (db: string): ClickHouseClient =>
    createClient({
      url,
      username: options.username ?? 'default',
      password: options.password ?? '',
      database: db,
      request_timeout: options.requestTimeoutMs ?? 30_000,
      clickhouse_settings: EVERY_CALL,
      log: { level: ClickHouseLogLevel.OFF },
    });
  // Requests name their database, and ClickHouse refuses a missing one: create it from a
  // client bound to "default" first.
  const prepare =
    database === 'default'
      ? undefined
      : async () => {
          const bootstrap = connect('default');
          try {
            await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
          } catch (error) {
            throw toStorageError(error, `create database ${database}`);
          } finally {
            await bootstrap.close();
          }
        };
  return new ClickHouseStore({ kind: 'server', client: connect(database), serialize: false, prepare });
}
