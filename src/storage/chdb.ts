/**
 * Loads chdb, the in-process ClickHouse engine of the embedded store, on first use only: a
 * deployment on a ClickHouse server never loads its 500 MB native library. A machine where
 * it cannot load gets an error that says what to do.
 */
import { StorageError } from './errors.js';

type ConnectionModule = typeof import('chdb/connection');

export interface ChdbEngine {
  createConnection: ConnectionModule['createChdbConnection'];
  /** Resolves once the engine has really let go of a closed data directory. */
  drainPending(): Promise<void>;
}

let loading: Promise<ChdbEngine> | undefined;

export function loadChdb(): Promise<ChdbEngine> {
  loading ??= (async () => {
    try {
      // chDB's jemalloc reads this when the library loads. By default it keeps freed pages
      // for seconds; returning them at once cut the 1M-endpoint replay's peak RSS by ~130 MB
      // (src/storage/README.md). Set JE_MALLOC_CONF yourself to choose otherwise.
      process.env.JE_MALLOC_CONF ??= 'dirty_decay_ms:0,muzzy_decay_ms:0';
      const [connection, root] = await Promise.all([import('chdb/connection'), import('chdb')]);
      return { createConnection: connection.createChdbConnection, drainPending: root.drainPending };
    } catch (error) {
      loading = undefined;
      throw new StorageError(
        'STORAGE_ENGINE_MISSING',
        `the embedded store needs chdb (in-process ClickHouse), which could not be loaded: ${error instanceof Error ? error.message : String(error)}. ` +
          'Fix: run "npm install" (or "npm install chdb") on this machine so its native library for this platform is installed; ' +
          'chdb ships prebuilt for Linux x64/arm64 with glibc and macOS x64/arm64 (Windows: use WSL2). ' +
          "Or use a ClickHouse server: openStore({ kind: 'server', url }).",
        'permanent',
        { cause: error },
      );
    }
  })();
  return loading;
}
