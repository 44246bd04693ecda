/**
 * Snapshots of a partition's state with the input offset they cover, written atomically
 * (temporary file, fsync, rename, fsync of the folder): a crash leaves the old snapshot or
 * the new one, never a mix. BigInts and Maps are written in a tagged JSON form.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeAt } from '../log/embedded/files.js';
import { DataStreamerError } from '../util/errors.js';

function replacer(_key: string, value: unknown): unknown {
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
 * The same text as serialise(value), in pieces: a Map is written entry by entry, so a
 * partition's state (100 MB of JSON for 135,000 devices and their repeat windows) never
 * exists as one string, nor as one buffer, in memory.
 */
export function* serialisePieces(value: unknown): Generator<string> {
  if (hasPieces(value)) yield* value.snapshotPieces();
  else if (value instanceof Map) {
    yield '{"$map":[';
    // A thousand entries at a time: one JSON.stringify call each, without its brackets.
    let batch: unknown[] = [];
    let first = true;
    for (const entry of value) {
      batch.push(entry);
      if (batch.length === 1000) {
        yield `${first ? '' : ','}${JSON.stringify(batch, replacer).slice(1, -1)}`;
        first = false;
        batch = [];
      }
    }
    if (batch.length > 0) yield `${first ? '' : ','}${JSON.stringify(batch, replacer).slice(1, -1)}`;
    yield ']}';
  } else if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Set) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  ) {
    yield '{';
    let first = true;
    for (const [key, item] of Object.entries(value)) {
      // Left out as JSON.stringify leaves them out.
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      yield `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      yield* serialisePieces(item);
    }
    yield '}';
  } else yield JSON.stringify(value, replacer) ?? 'null';
}

/** A value that writes its own JSON (as its toJSON gives it) in pieces: a table too large for one string. */
interface WritesPieces {
  snapshotPieces(): Iterable<string>;
}

function hasPieces(value: unknown): value is WritesPieces {
  return typeof (value as Partial<WritesPieces> | null)?.snapshotPieces === 'function';
}

const WRITE_BYTES = 1 << 20;

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
    for (const piece of serialisePieces(value)) {
      pending.push(piece);
      size += piece.length;
      if (size >= WRITE_BYTES) await flush();
    }
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
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return deserialise<T>(text);
  } catch (error) {
    throw new DataStreamerError(
      'SNAPSHOT_CORRUPT',
      `snapshot ${file} cannot be read: ${(error as Error).message}`,
    );
  }
}
