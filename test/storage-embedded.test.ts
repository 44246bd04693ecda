import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../src/storage/errors.js';
import { loadMigrations, migrationsDir } from '../src/storage/migrations.js';
import { openStore } from '../src/storage/open.js';
import { packageRoot } from '../src/util/paths.js';
import { storeSuite } from './support/storage-suite.js';

const root = mkdtempSync(join(tmpdir(), 'ds-store-'));

describe('embedded store (chdb in process)', () => {
  storeSuite({ open: (scope) => openStore({ kind: 'embedded', dataDir: join(root, scope) }) });

  it('binds one data directory at a time: another one opens once the first is closed', async () => {
    const first = await openStore({ kind: 'embedded', dataDir: join(root, 'first') });
    const error = await openStore({ kind: 'embedded', dataDir: join(root, 'second') }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'STORAGE_CONFIG', kind: 'permanent' });
    expect((error as StorageError).message).toContain('close the store open on another directory first');
    // A second store on the same directory shares the engine.
    const same = await openStore({ kind: 'embedded', dataDir: join(root, 'first') });
    expect(await same.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await same.close();
    await first.close();
    const second = await openStore({ kind: 'embedded', dataDir: join(root, 'second') });
    expect(await second.query('SELECT 2 AS two')).toEqual([{ two: 2 }]);
    await second.close();
  });

  it('refuses a data directory another process is using, and opens it once that process is gone', async () => {
    const dataDir = join(root, 'shared');
    // Another process holding the directory through chdb directly, as a second Data Streamer would.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const { Session } = require('chdb'); new Session(${JSON.stringify(dataDir)}); console.log('ready'); setInterval(() => {}, 1000);`,
      ],
      { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
        holder.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
      });
      const error = await openStore({ kind: 'embedded', dataDir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'STORAGE_CONFIG', kind: 'permanent' });
      expect((error as StorageError).message).toContain('stop the other process using this one');
    } finally {
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await exited;
    }
    // A killed holder leaves no lock behind (the engine's lock is a file lock, released with the process).
    const store = await openStore({ kind: 'embedded', dataDir });
    expect(await store.migrate()).toMatchObject({ version: 5 });
    await store.close();
  });

  it('reads the migrations from the package at run time', () => {
    expect(migrationsDir()).toBe(join(packageRoot(), 'src', 'storage', 'migrations'));
    expect(loadMigrations().map((m) => `${m.version}:${m.name}:${m.statements.length}`)).toEqual([
      '1:events:1',
      '2:usage_records:1',
      '3:usage_daily:2',
      '4:dead_letters:1',
      '5:columns_from_json:2',
    ]);
  });
});
