/**
 * A small JSON document on disk shared with other processes (the CLI beside a running
 * server): read again when its mtime changed, replaced atomically on every change,
 * readable by the owner only. Changes of this process are applied one after the other.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../log/embedded/files.js';

export class SharedJsonFile<T> {
  private value: T;
  private loadedMtime = -1;
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
      this.loadedMtime = -1;
      return this.value;
    }
    const mtime = statSync(this.file).mtimeMs;
    if (mtime !== this.loadedMtime) {
      this.value = JSON.parse(readFileSync(this.file, 'utf8')) as T;
      this.loadedMtime = mtime;
    }
    return this.value;
  }

  /** Applies a change to the current document and writes it. (Two processes writing at the very same moment can lose one change.) */
  change(apply: (value: T) => void): Promise<void> {
    const next = this.writing.then(async () => {
      apply(this.current());
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, `${JSON.stringify(this.value, null, 2)}\n`);
      // Only hashes are inside, but nobody else has a reason to read them.
      chmodSync(this.file, 0o600);
      this.loadedMtime = statSync(this.file).mtimeMs;
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}
