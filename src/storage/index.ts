/** The storage module's public surface: open a store, build rows, recognise its errors. */
export { eventToRow, usageToRow } from './convert.js';
export { MigrationError, StorageError, type StorageErrorCode } from './errors.js';
export { type MigrationReport, migrationsDir } from './migrations.js';
export { openStore, type StoreOptions } from './open.js';
export type { DeadLetterRow, EventRow, UsageRow } from './rows.js';
export type { Store, StoreKind } from './store.js';
