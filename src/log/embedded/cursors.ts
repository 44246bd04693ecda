import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { asLogError, LogError } from '../errors.js';
import type { CursorStore } from '../types.js';
import { errnoOf, mkdirDurable, TEMP_MARK, writeFileAtomic } from './files.js';
import { SerialQueue } from './serial.js';
import { checkInteger, checkTopicName } from './validate.js';

/** One group's cursors: what is on disk, and what commits asked for. */
interface Group {
  file: string;
  durable: Map<string, number>;
  desired: Map<string, number>;
  queue: SerialQueue;
  /** The queued write that has not started yet; later commits ride on it. */
  next: Promise<void> | undefined;
}

/** Content of `<dir>/__cursors/<group>.json`. */
interface CursorFile {
  version: 1;
  group: string;
  offsets: Record<string, Record<string, number>>;
}

const key = (topic: string, partition: number) => `${topic}/${partition}`;

/**
 * Cursors of each consumer group in one file per group, replaced atomically on every commit
 * (temp file, fsync, rename, fsync the directory): a reader, or a restart after a crash,
 * finds the old file or the new one, never a mix. Commits that arrive while a write is
 * under way are written together by the next one.
 */
export class FileCursorStore implements CursorStore {
  private readonly groups = new Map<string, Promise<Group>>();
  private closed = false;

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<FileCursorStore> {
    await mkdirDurable(dir);
    // A temp file is a commit that never got renamed, so it was never acknowledged.
    for (const name of await readdir(dir)) if (name.includes(TEMP_MARK)) await unlink(join(dir, name));
    return new FileCursorStore(dir);
  }

  async get(group: string, topic: string, partition: number): Promise<number | undefined> {
    try {
      this.check(group, topic, partition);
      return (await this.group(group)).durable.get(key(topic, partition));
    } catch (error) {
      throw asLogError(error, `cursor of group ${group} on ${topic}/${partition}`, { topic, partition });
    }
  }

  async commit(group: string, topic: string, partition: number, offset: number): Promise<void> {
    try {
      this.check(group, topic, partition);
      checkInteger('cursor offset', offset, 0);
      const g = await this.group(group);
      g.desired.set(key(topic, partition), offset);
      g.next ??= g.queue.run(async () => {
        g.next = undefined;
        const snapshot = new Map(g.desired);
        await writeFileAtomic(g.file, serialize(group, snapshot));
        g.durable = snapshot;
      });
      await g.next;
    } catch (error) {
      throw asLogError(error, `commit of group ${group} on ${topic}/${partition}`, {
        topic,
        partition,
        offset,
      });
    }
  }

  /** Waits for commits under way; later calls fail with LOG_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    for (const g of this.groups.values())
      await g.then(
        (group) => group.queue.idle(),
        () => undefined,
      );
  }

  private check(group: string, topic: string, partition: number): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `cursor store ${this.dir} is closed`);
    if (typeof group !== 'string' || group.length === 0 || encodeURIComponent(group).length > 200)
      throw new LogError('LOG_INVALID_ARGUMENT', `group name ${JSON.stringify(group)} is empty or too long`);
    checkTopicName(topic);
    checkInteger('partition', partition, 0);
  }

  private group(name: string): Promise<Group> {
    let g = this.groups.get(name);
    if (!g) {
      g = load(join(this.dir, `${encodeURIComponent(name)}.json`), name);
      this.groups.set(name, g);
      g.catch(() => this.groups.delete(name));
    }
    return g;
  }
}

function serialize(group: string, cursors: Map<string, number>): string {
  const content: CursorFile = { version: 1, group, offsets: {} };
  for (const [k, offset] of cursors) {
    const cut = k.lastIndexOf('/');
    const topic = k.slice(0, cut);
    content.offsets[topic] ??= {};
    (content.offsets[topic] as Record<string, number>)[k.slice(cut + 1)] = offset;
  }
  return `${JSON.stringify(content)}\n`;
}

async function load(file: string, group: string): Promise<Group> {
  const durable = new Map<string, number>();
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error;
  }
  if (text !== undefined) {
    const bad = (what: string) =>
      new LogError('LOG_CORRUPT', `cursor file ${file} of group ${group} is not valid: ${what}`, { file });
    let content: CursorFile;
    try {
      content = JSON.parse(text) as CursorFile;
    } catch (error) {
      throw bad(error instanceof Error ? error.message : String(error));
    }
    if (content?.version !== 1 || content.group !== group || typeof content.offsets !== 'object')
      throw bad('unexpected version, group or shape');
    for (const [topic, partitions] of Object.entries(content.offsets))
      for (const [partition, offset] of Object.entries(partitions)) {
        if (!Number.isSafeInteger(offset) || offset < 0) throw bad(`offset of ${topic}/${partition}`);
        durable.set(key(topic, Number(partition)), offset);
      }
  }
  return { file, durable, desired: new Map(durable), queue: new SerialQueue(), next: undefined };
}
