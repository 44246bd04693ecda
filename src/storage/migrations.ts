/**
 * Versioned schema migrations: src/storage/migrations/NNN_name.sql, applied in version
 * order, each recorded in schema_migrations once all its statements ran. ClickHouse DDL is
 * not transactional, so every statement is written to be re-runnable (IF NOT EXISTS): a
 * migration interrupted halfway is simply run again from its first statement.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';
import { MigrationError, StorageError, toStorageError } from './errors.js';
import { type SqlStatement, splitStatements } from './sql-split.js';

export interface Migration {
  version: number;
  name: string;
  /** File name, e.g. 003_usage_daily.sql: how errors name the migration. */
  file: string;
  statements: SqlStatement[];
}

export interface MigrationReport {
  /** Migrations applied by this call, in order (empty when the schema was up to date). */
  applied: { version: number; name: string }[];
  /** Highest version now recorded. */
  version: number;
}

/** What migrations need from a store: run a statement, read rows. Errors arrive as StorageError. */
export interface MigrationTarget {
  command(sql: string, operation: string): Promise<void>;
  rows<T>(sql: string, operation: string): Promise<T[]>;
}

/** The migrations that ship with the package: read from the source folder at run time. */
export function migrationsDir(): string {
  return join(packageRoot(), 'src', 'storage', 'migrations');
}

const FILE = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

export function loadMigrations(dir: string = migrationsDir()): Migration[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.sql'));
  } catch (error) {
    throw new StorageError(
      'MIGRATION_INVALID',
      `cannot read migrations from ${dir}: ${String(error)}`,
      'permanent',
      {
        cause: error,
      },
    );
  }
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE.exec(file);
    if (!match)
      throw new StorageError(
        'MIGRATION_INVALID',
        `${join(dir, file)}: a migration file is named NNN_name.sql (digits, underscore, lowercase name)`,
      );
    const statements = splitStatements(readFileSync(join(dir, file), 'utf8'));
    if (statements.length === 0)
      throw new StorageError('MIGRATION_INVALID', `${join(dir, file)}: no SQL statement in the file`);
    migrations.push({ version: Number(match[1]), name: match[2] as string, file, statements });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    const [before, here] = [migrations[i - 1] as Migration, migrations[i] as Migration];
    if (before.version === here.version)
      throw new StorageError(
        'MIGRATION_INVALID',
        `${dir}: ${before.file} and ${here.file} have the same version ${here.version}`,
      );
  }
  return migrations;
}

const BOOKKEEPING = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime64(3)
)
ENGINE = MergeTree
ORDER BY version`;

/**
 * Applies the pending migrations in order. Stops at the first failing statement with a
 * MigrationError naming the file (retriable when ClickHouse was only unavailable). Refuses
 * to run when the database records a version this build lacks or under another name: it
 * was migrated by different code, and guessing would be worse than stopping.
 */
export async function applyMigrations(
  db: MigrationTarget,
  migrations: Migration[],
): Promise<MigrationReport> {
  await db.command(BOOKKEEPING, 'create schema_migrations');
  const recorded = await db.rows<{ version: number | string; name: string }>(
    'SELECT version, any(name) AS name FROM schema_migrations GROUP BY version ORDER BY version',
    'read schema_migrations',
  );
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  const done = new Set<number>();
  for (const row of recorded) {
    const version = Number(row.version);
    const known = byVersion.get(version);
    if (!known || known.name !== row.name)
      throw new StorageError(
        'MIGRATION_CONFLICT',
        `the database records migration ${version} "${row.name}", but this build ${known ? `names version ${version} "${known.name}"` : `has no migration ${version}`}: it was migrated by another version of Data Streamer`,
      );
    done.add(version);
  }

  const applied: MigrationReport['applied'] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    for (const [index, statement] of migration.statements.entries()) {
      try {
        await db.command(statement.sql, `migration ${migration.file}`);
      } catch (error) {
        const cause = toStorageError(error, `migration ${migration.file}`);
        throw new MigrationError(
          migration.version,
          migration.name,
          `migration ${migration.file} failed at statement ${index + 1} of ${migration.statements.length} (line ${statement.line}): ${cause.message}. Migrations before it are applied; none after it ran.`,
          cause.kind,
          { cause, clickhouseCode: cause.clickhouseCode, clickhouseType: cause.clickhouseType },
        );
      }
    }
    // Version and name are from a validated file name (digits, [a-z0-9_]): safe to inline.
    await db.command(
      `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${migration.version}, '${migration.name}', now64(3))`,
      `record migration ${migration.file}`,
    );
    applied.push({ version: migration.version, name: migration.name });
  }
  // Every recorded version is one of these migrations, so the last file is the version now.
  return { applied, version: migrations.at(-1)?.version ?? 0 };
}
