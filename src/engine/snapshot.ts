/**
 * Snapshots of a partition's state with the input offset they cover, written atomically
 * (temporary file, fsync, rename, fsync of the folder): a crash leaves the old snapshot or
 * the new one, never a mix. BigInts and Maps are written in a tagged JSON form.
 */

import type { ReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { writeAt } from '../log/embedded/files.js';
import { DataStreamerError } from '../util/errors.js';

function replacer(_key: string, value: unknown): unknown {
  if (isTable(value)) {
    const { head, rows } = value.snapshotTable();
    return { ...head, rows: [...rows] };
  }
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Map) return { $map: [...value.entries()] };
  if (value instanceof Set) return { $set: [...value.values()] };
  if (value === Number.POSITIVE_INFINITY) return { $inf: 1 };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const tagged = value as Record<string, unknown>;
    if ('$bigint' in tagged) return BigInt(tagged.$bigint as string);
    if ('$map' in tagged) return new Map(tagged.$map as [unknown, unknown][]);
    if ('$set' in tagged) return new Set(tagged.$set as unknown[]);
    if ('$inf' in tagged) return Number.POSITIVE_INFINITY;
  }
  return value;
}

export function serialise(value: unknown): string {
  return JSON.stringify(value, replacer);
}

export function deserialise<T>(text: string): T {
  return JSON.parse(text, reviver) as T;
}

/**
 * The snapshot file: a header line, then one line per step that rebuilds the value, then an
 * end line with the count of steps. A large Map or Set is written a thousand entries a line
 * and a table's rows (snapshotTable) a few pieces a line, so neither the writer nor the
 * reader ever holds the whole value as one string: a partition's state (100 MB of JSON for
 * 135,000 devices) could otherwise not pass V8's limit on a string's length (about 512 MB).
 * Each line is JSON with the tags of serialise:
 *   ["object", path]          a plain object at path
 *   ["set", path, value]      a value at path
 *   ["map", path, entries]    entries added to the Map at path (created by the first line)
 *   ["add", path, items]      items added to the Set at path
 *   ["push", path, items]     items appended to the array at path
 */
export const SNAPSHOT_HEADER = '["ds-snapshot-lines",1]';

const ENTRIES_PER_LINE = 1000;
const WRITE_BYTES = 1 << 20;
const PIECES_PER_LINE = 8;

/** A value whose snapshot form is `{...head, rows: [...rows]}`, a table too large for one string. */
export interface SnapshotTable {
  snapshotTable(): { head: object; rows: Iterable<string> };
}

function isTable(value: unknown): value is SnapshotTable {
  return typeof (value as Partial<SnapshotTable> | null)?.snapshotTable === 'function';
}

const step = (...parts: unknown[]) => JSON.stringify(parts, replacer);

function* inGroups<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let group: T[] = [];
  for (const item of items) {
    group.push(item);
    if (group.length === size) {
      yield group;
      group = [];
    }
  }
  if (group.length > 0) yield group;
}

/** The steps (lines, without their newline) that rebuild `value` at `path`. */
export function* snapshotSteps(value: unknown, path: string[] = []): Generator<string> {
  if (isTable(value)) {
    const { head, rows } = value.snapshotTable();
    yield* snapshotSteps(head, path);
    const at = [...path, 'rows'];
    yield step('set', at, []);
    for (const group of inGroups(rows, PIECES_PER_LINE)) yield step('push', at, group);
  } else if (value instanceof Map) {
    yield step('map', path, []);
    for (const group of inGroups(value, ENTRIES_PER_LINE)) yield step('map', path, group);
  } else if (value instanceof Set) {
    yield step('add', path, []);
    for (const group of inGroups(value, ENTRIES_PER_LINE)) yield step('add', path, group);
  } else if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  ) {
    yield step('object', path);
    for (const [key, item] of Object.entries(value)) {
      // Left out as JSON.stringify leaves them out.
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      yield* snapshotSteps(item, [...path, key]);
    }
  } else yield step('set', path, value);
}

/** Rebuilds a value from its steps. */
class Rebuild {
  private readonly root: Record<string, unknown> = {};

  get value(): unknown {
    return this.root.value;
  }

  apply(line: string): void {
    const [op, path, payload] = JSON.parse(line, reviver) as [string, string[], unknown[]];
    if (!Array.isArray(path)) throw new Error(`a step without a path: ${line.slice(0, 80)}`);
    let parent = this.root;
    let key = 'value';
    for (const next of path) {
      parent = parent[key] as Record<string, unknown>;
      if (parent === null || typeof parent !== 'object')
        throw new Error(`a step under a missing object: ${path.join('.')}`);
      key = next;
    }
    const at = () => parent[key];
    if (op === 'object') parent[key] = {};
    else if (op === 'set') parent[key] = payload;
    else if (op === 'map') {
      if (!(at() instanceof Map)) parent[key] = new Map();
      for (const [k, v] of payload as [unknown, unknown][]) (at() as Map<unknown, unknown>).set(k, v);
    } else if (op === 'add') {
      if (!(at() instanceof Set)) parent[key] = new Set();
      for (const item of payload) (at() as Set<unknown>).add(item);
    } else if (op === 'push') (at() as unknown[]).push(...payload);
    else throw new Error(`unknown step ${String(op)}`);
  }
}

export async function writeSnapshot(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.tmp`;
  const handle = await open(temp, 'w');
  try {
    let pending: string[] = [];
    let size = 0;
    let position = 0;
    const flush = async () => {
      const bytes = Buffer.from(pending.join(''), 'utf8');
      await writeAt(handle, bytes, position);
      position += bytes.length;
      pending = [];
      size = 0;
    };
    let steps = 0;
    const add = async (line: string) => {
      pending.push(line, '\n');
      size += line.length + 1;
      if (size >= WRITE_BYTES) await flush();
    };
    await add(SNAPSHOT_HEADER);
    for (const line of snapshotSteps(value)) {
      await add(line);
      steps++;
    }
    await add(step('end', steps));
    await flush();
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  const folder = await open(dirname(file), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

export async function readSnapshot<T>(file: string): Promise<T | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // The handle is closed here, after the stream (stopped early on a bad step) is destroyed.
  let input: ReadStream | undefined;
  const corrupt = (why: string) =>
    new DataStreamerError('SNAPSHOT_CORRUPT', `snapshot ${file} cannot be read: ${why}`);
  try {
    const head = Buffer.alloc(SNAPSHOT_HEADER.length);
    await handle.read(head, 0, head.length, 0);
    if (head.toString('utf8') !== SNAPSHOT_HEADER) {
      // Written before the steps format (one JSON text): read whole, as then.
      try {
        return deserialise<T>(await handle.readFile('utf8'));
      } catch (error) {
        throw corrupt((error as Error).message);
      }
    }
    const rebuild = new Rebuild();
    let steps = 0;
    let ended = false;
    input = handle.createReadStream({ start: 0, autoClose: false });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let first = true;
    for await (const line of lines) {
      if (first || line === '') {
        first = false;
        continue;
      }
      if (ended) throw corrupt('lines after its end');
      try {
        if (line.startsWith('["end",')) {
          const [, count] = JSON.parse(line) as [string, number];
          if (count !== steps) throw new Error(`it ends after ${count} steps but holds ${steps}`);
          ended = true;
        } else {
          rebuild.apply(line);
          steps++;
        }
      } catch (error) {
        throw corrupt(`step ${steps + 1}: ${(error as Error).message}`);
      }
    }
    if (!ended) throw corrupt('it ends early (no end line)');
    return rebuild.value as T;
  } finally {
    input?.destroy();
    await handle.close();
  }
}
