/**
 * A small JSON document on disk shared with other processes (the CLI beside a running
 * server, the replicas of the distributed mode on one volume): read again whenever the
 * file is another one than the one read (inode, size, mtime), replaced atomically on
 * every change, readable by the owner only from the moment it is written. A change holds a
 * lock file while it reads, applies and writes, so two processes never lose each other's
 * changes; a lock left by a dead process is taken over after STALE_LOCK_MS.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../log/embedded/files.js';
import { DataStreamerError } from './errors.js';

const STALE_LOCK_MS = 10_000;
const LOCK_WAIT_MS = 15_000;

const identity = (s: { ino: number; size: number; mtimeMs: number }) => `${s.ino}:${s.size}:${s.mtimeMs}`;

export class SharedJsonFile<T> {
  private value: T;
  private loaded = '';
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly empty: () => T,
  ) {
    this.value = empty();
  }

  /** The document as it is on disk now (a stat per call, a read only when it changed). */
  current(): T {
    if (!existsSync(this.file)) {
      this.value = this.empty();
      this.loaded = '';
      return this.value;
    }
    const now = identity(statSync(this.file));
    if (now !== this.loaded) {
      this.value = JSON.parse(readFileSync(this.file, 'utf8')) as T;
      this.loaded = now;
    }
    return this.value;
  }

  /** Applies a change to the current document and writes it, under the lock. */
  change(apply: (value: T) => void): Promise<void> {
    const next = this.writing.then(async () => {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      const release = await this.lock();
      try {
        apply(this.current());
        await writeFileAtomic(this.file, `${JSON.stringify(this.value, null, 2)}\n`, 0o600);
        // Under the lock nobody else wrote since: this file is ours.
        this.loaded = identity(await stat(this.file));
      } finally {
        await release();
      }
    });
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async lock(): Promise<() => Promise<void>> {
    const lockFile = `${this.file}.lock`;
    const began = Date.now();
    for (;;) {
      try {
        const handle = await open(lockFile, 'wx', 0o600);
        await handle.close();
        return () => unlink(lockFile).catch(() => undefined);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const age = await stat(lockFile).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      // Left by a process that died while it held it.
      if (age > STALE_LOCK_MS) await unlink(lockFile).catch(() => undefined);
      else if (Date.now() - began > LOCK_WAIT_MS)
        throw new DataStreamerError(
          'FILE_LOCKED',
          `${lockFile} has been held for ${Math.round(age / 1000)} s by another process`,
        );
      else await sleep(10);
    }
  }
}
