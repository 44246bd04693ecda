import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { AppendRecord, LogRecord, Topic } from '../../src/log/types.js';

/** 2026-01-05T00:00:00Z */
export const T0 = Date.UTC(2026, 0, 5);
export const HOUR = 3_600_000;

const temps: string[] = [];
export function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ds-log-${name}-`));
  temps.push(dir);
  return dir;
}
/** For afterAll: removes every directory tempDir made. */
export function removeTempDirs(): void {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Record i: key k<i % 7>, 40-byte value naming i, timestamp T0 + i s. 34 + 2 + 40 = 76 bytes on disk. */
export function rec(i: number, timestamp = T0 + i * 1000): AppendRecord {
  return {
    key: `k${i % 7}`,
    value: Buffer.from(`value ${String(i).padStart(8, '0')} `.padEnd(40, '.')),
    timestamp,
  };
}
export const ENTRY_BYTES = 76;

export const recs = (from: number, count: number) => Array.from({ length: count }, (_, k) => rec(from + k));

/** Every record of a partition, read in small pieces to cross segment boundaries mid-read. */
export async function readAll(topic: Topic, partition: number, chunk = 7): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const end = await topic.endOffset(partition);
  let next = await topic.startOffset(partition);
  while (next < end) {
    const got = await topic.read(partition, next, chunk);
    expect(got.length).toBeGreaterThan(0);
    out.push(...got);
    next = (got.at(-1) as LogRecord).offset + 1;
  }
  return out;
}

/** Checks that records are rec(first..), offsets contiguous from `first`. */
export function expectRecords(records: LogRecord[], first: number, count: number, partition = 0): void {
  expect(records.length).toBe(count);
  records.forEach((r, k) => {
    const want = rec(first + k);
    expect(r.offset).toBe(first + k);
    expect(r.partition).toBe(partition);
    expect(r.key).toBe(want.key);
    expect(r.timestamp).toBe(want.timestamp);
    expect(r.value.toString()).toBe(want.value.toString());
  });
}

export const segmentFiles = (dir: string, topic: string, partition = 0) =>
  readdirSync(join(dir, topic, String(partition)))
    .filter((n) => n.endsWith('.log'))
    .sort();

/** The rejection of a promise, to inspect its code and message. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<Error & { code?: string; details?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
