import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmbeddedLog,
  type EmbeddedLogOptions,
  openEmbeddedLog,
  type Recovery,
} from '../src/log/index.js';
import type { AppendRecord } from '../src/log/types.js';
import { packageRoot } from '../src/util/paths.js';
import {
  ENTRY_BYTES,
  expectRecords,
  readAll,
  recs,
  rejection,
  removeTempDirs,
  segmentFiles,
  T0,
  tempDir,
} from './support/log-fixtures.js';

const opened: EmbeddedLog[] = [];
async function openLog(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
  const log = await openEmbeddedLog({ now: () => T0, ...options });
  opened.push(log);
  return log;
}
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
});
afterAll(removeTempDirs);

const SEGMENT = '00000000000000000000.log';

/** A closed log of `batches` batches of `size` records in one segment. */
async function written(name: string, batches: number, size: number): Promise<{ dir: string; file: string }> {
  const dir = tempDir(name);
  const log = await openLog({ dir, fsync: 'always' });
  const topic = await log.topic('raw', 1);
  for (let b = 0; b < batches; b++) await topic.append(0, recs(b * size, size));
  await log.close();
  return { dir, file: join(dir, 'raw', '0', SEGMENT) };
}

describe('embedded log: torn tail', () => {
  it('cuts a segment truncated mid-entry back to the last whole batch, reports it, and appends on', async () => {
    const { dir, file } = await written('torn-entry', 5, 4); // 20 entries, batches of 4
    truncateSync(file, 19 * ENTRY_BYTES + 30); // inside entry 19, in the batch of 16..19
    const reports: Recovery[] = [];
    const log = await openLog({ dir, onRecovery: (r) => reports.push(r) });
    const topic = await log.topic('raw', 1);
    const expected: Recovery = {
      topic: 'raw',
      partition: 0,
      file,
      position: 16 * ENTRY_BYTES,
      bytesDropped: 3 * ENTRY_BYTES + 30,
      // Entries 16..18 are whole, but their batch was never acknowledged: all or nothing.
      recordsDropped: 3,
      reason: `incomplete entry at byte ${19 * ENTRY_BYTES}`,
    };
    expect(reports).toEqual([expected]);
    expect(log.recoveries).toEqual([expected]);
    expect(statSync(file).size).toBe(16 * ENTRY_BYTES);
    expect(await topic.endOffset(0)).toBe(16);
    expectRecords(await readAll(topic, 0), 0, 16);
    expect(await topic.append(0, recs(16, 4))).toEqual({ baseOffset: 16, nextOffset: 20 });
    await log.close();

    const again = await openLog({ dir });
    expectRecords(await readAll(await again.topic('raw', 1), 0), 0, 20);
    expect(again.recoveries).toEqual([]);
  });

  it('keeps every complete record when each was its own batch', async () => {
    const { dir, file } = await written('torn-single', 10, 1);
    truncateSync(file, 9 * ENTRY_BYTES + 3); // not even a whole length field of entry 9
    const log = await openLog({ dir });
    const topic = await log.topic('raw', 1);
    expect(log.recoveries).toMatchObject([{ position: 9 * ENTRY_BYTES, bytesDropped: 3, recordsDropped: 0 }]);
    expectRecords(await readAll(topic, 0), 0, 9);
    expect((await topic.append(0, recs(9, 1))).baseOffset).toBe(9);
  });

  it('drops garbage after the last entry (text or zeros), reporting where and how much', async () => {
    for (const garbage of [Buffer.from('garbage!'.repeat(25)), Buffer.alloc(4096)]) {
      const { dir, file } = await written('torn-garbage', 3, 5);
      appendFileSync(file, garbage);
      const log = await openLog({ dir });
      const topic = await log.topic('raw', 1);
      expect(log.recoveries).toHaveLength(1);
      const [r] = log.recoveries;
      expect(r).toMatchObject({
        file,
        position: 15 * ENTRY_BYTES,
        bytesDropped: garbage.length,
        recordsDropped: 0,
      });
      expect(r?.reason).toMatch(new RegExp(`^bad (length|checksum) at byte ${15 * ENTRY_BYTES}$`));
      expectRecords(await readAll(topic, 0), 0, 15);
      expect(await topic.append(0, recs(15, 2))).toEqual({ baseOffset: 15, nextOffset: 17 });
      expectRecords(await readAll(topic, 0), 0, 17);
    }
  });
});

describe('embedded log: corruption', () => {
  it('refuses a bad checksum followed by valid entries with LOG_CORRUPT naming the file and byte', async () => {
    const { dir, file } = await written('corrupt-crc', 4, 5);
    const bytes = readFileSync(file);
    const at = 2 * ENTRY_BYTES + 50; // in the value of entry 2
    bytes[at] = (bytes[at] as number) ^ 0x20;
    writeFileSync(file, bytes);
    const log = await openLog({ dir });
    const e = await rejection(log.topic('raw', 1));
    expect(e.code).toBe('LOG_CORRUPT');
    expect(e.message).toBe(
      `raw/0: segment ${file} is corrupt at byte ${2 * ENTRY_BYTES}: bad checksum, followed by a valid entry at byte ${3 * ENTRY_BYTES} (offset 3), so not a torn tail`,
    );
    expect(e.details).toEqual({ topic: 'raw', partition: 0, file, position: 2 * ENTRY_BYTES });
    expect(statSync(file).size).toBe(20 * ENTRY_BYTES); // nothing cut
  });

  it('refuses a damaged length field followed by valid entries', async () => {
    const { dir, file } = await written('corrupt-length', 4, 5);
    const bytes = readFileSync(file);
    bytes.writeUInt32LE(5000, ENTRY_BYTES); // entry 1 claims to run far past entry 2
    writeFileSync(file, bytes);
    const log = await openLog({ dir });
    const e = await rejection(log.topic('raw', 1));
    expect(e.code).toBe('LOG_CORRUPT');
    expect(e.message).toContain(
      `${file} is corrupt at byte ${ENTRY_BYTES}: incomplete entry, followed by a valid entry at byte ${2 * ENTRY_BYTES}`,
    );
  });

  it('finds corruption in a closed segment when it is first read', async () => {
    const dir = tempDir('corrupt-closed');
    const log = await openLog({ dir, segmentBytes: 1024 });
    const topic = await log.topic('raw', 1);
    for (let b = 0; b < 5; b++) await topic.append(0, recs(b * 10, 10));
    await log.close();
    const first = join(dir, 'raw', '0', segmentFiles(dir, 'raw')[0] as string);
    const bytes = readFileSync(first);
    bytes[ENTRY_BYTES * 4 + 40] = 0;
    writeFileSync(first, bytes);

    const again = await openLog({ dir, segmentBytes: 1024 });
    const reopened = await again.topic('raw', 1);
    expectRecords(await reopened.read(0, 30, 5), 30, 5); // other segments still read
    const e = await rejection(reopened.read(0, 0, 5));
    expect(e.code).toBe('LOG_CORRUPT');
    expect(e.message).toBe(`raw/0: segment ${first} is corrupt at byte ${4 * ENTRY_BYTES}: bad checksum`);
  });
});

describe('embedded log: every damage of a small segment', () => {
  // 3 batches of 3 entries: 684 bytes, the last batch from byte 456.
  const LAST_BATCH = 6 * ENTRY_BYTES;
  const SIZE = 9 * ENTRY_BYTES;

  /** Opens a copy of the segment with `bytes` as its content: records kept, or the error. */
  async function reopen(bytes: Buffer): Promise<{ kept?: number; recovery?: Recovery; code?: string }> {
    const dir = tempDir('damage');
    mkdirSync(join(dir, 'raw', '0'), { recursive: true });
    writeFileSync(join(dir, 'raw', 'topic.json'), '{"version":1,"name":"raw","partitions":1}');
    writeFileSync(join(dir, 'raw', '0', SEGMENT), bytes);
    const log = await openLog({ dir });
    try {
      const topic = await log.topic('raw', 1);
      const kept = await topic.endOffset(0);
      expectRecords(await readAll(topic, 0), 0, kept);
      return { kept, ...(log.recoveries[0] ? { recovery: log.recoveries[0] } : {}) };
    } catch (error) {
      return { code: (error as { code?: string }).code ?? String(error) };
    } finally {
      await log.close();
      rmSync(dir, { recursive: true });
    }
  }

  it('recovers a cut at any byte to the whole batches before it', async () => {
    const { file } = await written('cut-source', 3, 3);
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(SIZE);
    for (let cut = 0; cut < SIZE; cut++) {
      const whole = Math.floor(cut / (3 * ENTRY_BYTES)) * 3;
      const result = await reopen(bytes.subarray(0, cut));
      expect(result.kept, `cut at ${cut}`).toBe(whole);
      if (cut === whole * ENTRY_BYTES) expect(result.recovery).toBeUndefined();
      else
        expect(result.recovery).toMatchObject({
          position: whole * ENTRY_BYTES,
          bytesDropped: cut - whole * ENTRY_BYTES,
        });
    }
  });

  it('refuses a flipped bit anywhere but in the last entry, and cuts off the last batch if it is there', async () => {
    const { file } = await written('flip-source', 3, 3);
    const bytes = readFileSync(file);
    for (let at = 0; at < SIZE; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = (damaged[at] as number) ^ 0x04;
      const result = await reopen(damaged);
      // Valid entries after the damage: corruption. Nothing valid after it: a torn tail.
      if (at < SIZE - ENTRY_BYTES) expect(result, `bit flipped at ${at}`).toEqual({ code: 'LOG_CORRUPT' });
      else
        expect(result, `bit flipped at ${at}`).toMatchObject({
          kept: 6,
          recovery: { position: LAST_BATCH, bytesDropped: 3 * ENTRY_BYTES, recordsDropped: 2 },
        });
    }
  });
});

describe('embedded log: missing files', () => {
  it('refuses a topic whose partition has lost its segments instead of starting it empty', async () => {
    const { dir, file } = await written('missing', 1, 3);
    rmSync(file);
    const log = await openLog({ dir });
    const e = await rejection(log.topic('raw', 1));
    expect(e.code).toBe('LOG_CORRUPT');
    expect(e.message).toBe(`raw/0: ${join(dir, 'raw', '0')} holds no segment`);
  });
});

// ---- SIGKILL -----------------------------------------------------------------------------

const ROOT = packageRoot();
const DIST = join(ROOT, 'dist', 'src', 'log', 'index.js');
const WRITER = join(ROOT, 'test', 'support', 'log-writer.mjs');

/** The record log-writer.mjs writes at an offset (the same function). */
const crashRecord = (partition: number, offset: number): AppendRecord => ({
  key: `k${offset % 13}`,
  value: Buffer.from(`p${partition} o${offset} ${'x'.repeat((offset % 97) * 10)}`),
  timestamp: 1_767_225_600_000 + offset,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the writer until it has acknowledged something, then SIGKILLs it after a random delay. */
async function runAndKill(dir: string, acked: number[]): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let acks = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    const lines = out.split('\n');
    out = lines.pop() ?? ''; // a line cut by the kill is not an acknowledgement we saw
    for (const line of lines) {
      const [, p, next] = line.split(' ');
      acked[Number(p)] = Math.max(acked[Number(p)] ?? 0, Number(next));
      acks++;
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const closed = once(child, 'close');
  for (let waited = 0; acks === 0; waited += 5) {
    if (child.exitCode !== null) throw new Error(`writer exited with ${child.exitCode}: ${err}`);
    if (waited > 20_000) throw new Error(`writer acknowledged nothing in 20 s: ${err}`);
    await sleep(5);
  }
  await sleep(Math.random() * 200);
  child.kill('SIGKILL');
  const [code, signal] = await closed;
  expect({ code, signal, err }).toEqual({ code: null, signal: 'SIGKILL', err: '' });
}

describe('embedded log: SIGKILL', () => {
  beforeAll(() => {
    if (!existsSync(DIST))
      throw new Error(`${DIST} is missing: run "npm run build" first (npm test does it)`);
  });

  it('keeps every acknowledged record, intact and in order, across repeated kills', async () => {
    const dir = tempDir('sigkill');
    const acked = [0, 0];
    const recoveries: Recovery[] = [];
    for (let round = 0; round < 6; round++) {
      await runAndKill(dir, acked);
      const log = await openLog({ dir, retentionMs: Number.POSITIVE_INFINITY });
      const topic = await log.topic('crash', 2);
      recoveries.push(...log.recoveries);
      for (const p of [0, 1]) {
        const end = await topic.endOffset(p);
        expect(end, `partition ${p} lost acknowledged records in round ${round}`).toBeGreaterThanOrEqual(
          acked[p] as number,
        );
        const records = await readAll(topic, p, 500);
        expect(records.length).toBe(end);
        records.forEach((r, offset) => {
          const want = crashRecord(p, offset);
          expect({ offset: r.offset, key: r.key, value: r.value.toString(), timestamp: r.timestamp }).toEqual(
            {
              offset,
              key: want.key,
              value: want.value.toString(),
              timestamp: want.timestamp,
            },
          );
        });
        const cursor = await log.cursors.get('writer', 'crash', p);
        expect(cursor ?? 0).toBeLessThanOrEqual(end);
      }
      await log.close();
    }
    expect(acked[0]).toBeGreaterThan(0);
    expect(acked[1]).toBeGreaterThan(0);
    expect(segmentFiles(dir, 'crash').length).toBeGreaterThan(1);
    for (const r of recoveries) expect(r.recordsDropped * 34).toBeLessThanOrEqual(r.bytesDropped);
  });
});
