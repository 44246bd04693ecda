import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LogError } from '../errors.js';
import { errnoOf } from './files.js';

/** Directories locked by this process: a second Log on one directory would interleave writes. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) === 'EPERM';
  }
}

/**
 * Takes `<dir>/LOCK` holding this process's pid. A lock left by a dead process (SIGKILL,
 * power loss) is taken over. Best effort: it guards against a second engine started on the
 * same directory, not against two racing to take over a stale lock at the same instant.
 */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const file = join(resolve(dir), 'LOCK');
  if (held.has(file)) throw new LogError('LOG_LOCKED', `${dir} is already open in this process`);
  try {
    await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') throw error;
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    // Our own pid in a lock we do not hold: left by an earlier process that had it (containers).
    if (pid > 0 && pid !== process.pid && alive(pid))
      throw new LogError('LOG_LOCKED', `${dir} is open in process ${pid} (${file})`, {}, 'retriable');
    await writeFile(file, `${process.pid}\n`);
  }
  held.add(file);
  return async () => {
    held.delete(file);
    await unlink(file).catch(() => undefined);
  };
}
