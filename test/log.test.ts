import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SparseIndex } from '../src/log/embedded/sparse-index.js';
import { type EmbeddedLog, type EmbeddedLogOptions, openEmbeddedLog } from '../src/log/index.js';
import {
  ENTRY_BYTES,
  expectRecords,
  HOUR,
  readAll,
  rec,
  recs,
  rejection,
  removeTempDirs,
  segmentFiles,
  T0,
  tempDir,
} from './support/log-fixtures.js';

const opened: EmbeddedLog[] = [];
async function openLog(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
  const log = await openEmbeddedLog(options);
  opened.push(log);
  return log;
}
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
});
afterAll(removeTempDirs);

// 10 records of 76 bytes per batch, 1 KiB segments: a new segment every batch or so.
const SMALL = { segmentBytes: 1024, fsync: 'never', now: () => T0 } as const;

describe('embedded log: append and read', () => {
  it('round-trips records across segments with contiguous offsets, and keeps them across reopen', async () => {
    const dir = tempDir('roundtrip');
    const log = await openLog({ dir, ...SMALL });
    const topic = await log.topic('raw', 2);
    for (let b = 0; b < 12; b++) {
      const result = await topic.append(0, recs(b * 10, 10));
      expect(result).toEqual({ baseOffset: b * 10, nextOffset: b * 10 + 10 });
    }
    await topic.append(1, recs(0, 3));
    expect(await topic.startOffset(0)).toBe(0);
    expect(await topic.endOffset(0)).toBe(120);
    expect(await topic.endOffset(1)).toBe(3);
    expectRecords(await readAll(topic, 0), 0, 120);
    expectRecords(await readAll(topic, 1), 0, 3, 1);

    const files = segmentFiles(dir, 'raw');
    expect(files.length).toBeGreaterThanOrEqual(10);
    expect(files[0]).toBe('00000000000000000000.log');
    expect(files[1]).toMatch(/^0{18}\d\d\.log$/);
    // No segment past its limit: a batch goes whole into a new segment instead.
    for (const f of files) expect(readFileSync(join(dir, 'raw', '0', f)).length).toBeLessThanOrEqual(1024);

    await log.close();
    const again = await openLog({ dir, ...SMALL });
    const reopened = await again.topic('raw', 2);
    expect(await reopened.endOffset(0)).toBe(120);
    expectRecords(await readAll(reopened, 0, 50), 0, 120);
    expect(await reopened.append(0, recs(120, 5))).toEqual({ baseOffset: 120, nextOffset: 125 });
    expectRecords(await reopened.read(0, 118, 100), 118, 7);
    expect(again.recoveries).toEqual([]);
  });

  it('reads from any offset, within maxRecords and the byte budget, and nothing at the end', async () => {
    const log = await openLog({ dir: tempDir('read'), ...SMALL, indexIntervalBytes: 200 });
    const topic = await log.topic('raw', 1);
    await topic.append(0, recs(0, 100));
    for (const from of [0, 1, 13, 57, 97]) expectRecords(await topic.read(0, from, 3), from, 3);
    expectRecords(await topic.read(0, 95, 1000), 95, 5);
    expectRecords(await topic.read(0, 10, 1000, 3 * ENTRY_BYTES), 10, 3);
    // At least one record, even over the budget.
    expectRecords(await topic.read(0, 10, 1000, 1), 10, 1);
    expect(await topic.read(0, 100, 10)).toEqual([]);
    const big = { key: null, value: Buffer.alloc(100_000, 7), timestamp: T0 };
    await topic.append(0, [big]);
    const [got] = await topic.read(0, 100, 10, 1000);
    expect(got?.key).toBeNull();
    expect(got?.value.equals(big.value)).toBe(true);
  });

  it('rejects offsets out of range with LOG_OFFSET_OUT_OF_RANGE naming topic, partition and offset', async () => {
    const log = await openLog({ dir: tempDir('range'), ...SMALL });
    const topic = await log.topic('events', 1);
    await topic.append(0, recs(0, 5));
    const e = await rejection(topic.read(0, 6, 10));
    expect(e.code).toBe('LOG_OFFSET_OUT_OF_RANGE');
    expect(e.message).toBe('events/0: offset 6 is out of range; the partition holds 0 to 5');
    expect((await rejection(topic.read(0, -1, 10))).code).toBe('LOG_INVALID_ARGUMENT');
    expect((await rejection(topic.read(1, 0, 10))).code).toBe('LOG_INVALID_ARGUMENT');
    expect((await rejection(topic.read(0, 0, 0))).code).toBe('LOG_INVALID_ARGUMENT');
  });

  it('finds the first offset at or after a timestamp, even with timestamps out of order', async () => {
    const log = await openLog({ dir: tempDir('time'), ...SMALL, indexIntervalBytes: 300 });
    const topic = await log.topic('raw', 1);
    for (let b = 0; b < 10; b++) await topic.append(0, recs(b * 10, 10)); // T0 + offset seconds
    expect(await topic.offsetForTime(0, 0)).toBe(0);
    expect(await topic.offsetForTime(0, T0)).toBe(0);
    expect(await topic.offsetForTime(0, T0 + 1)).toBe(1);
    expect(await topic.offsetForTime(0, T0 + 42_000)).toBe(42);
    expect(await topic.offsetForTime(0, T0 + 41_500)).toBe(42);
    expect(await topic.offsetForTime(0, T0 + 99_000)).toBe(99);
    expect(await topic.offsetForTime(0, T0 + 99_001)).toBe(100);
    // A late record far ahead, then older ones: the first in log order with ts >= t wins.
    await topic.append(0, [rec(100, T0 + HOUR), rec(101, T0 + 5000), rec(102, T0 + 2 * HOUR)]);
    expect(await topic.offsetForTime(0, T0 + 200_000)).toBe(100);
    expect(await topic.offsetForTime(0, T0 + HOUR + 1)).toBe(102);
    expect(await topic.offsetForTime(0, T0 + 3 * HOUR)).toBe(103);
  });

  it('keeps a sparse index: a block per interval, found by binary search', () => {
    const index = new SparseIndex(1000);
    for (let i = 0; i < 100; i++) index.add(i, i * 100, T0 - i);
    expect(index.blocks).toBe(10);
    expect(index.floor(0)).toBe(0);
    expect(index.floor(9)).toBe(0);
    expect(index.floor(10)).toBe(1000);
    expect(index.floor(57)).toBe(5000);
    expect(index.floor(1e9)).toBe(9000);
    expect(index.blockMaxTimestamp(3)).toBe(T0 - 30);
    expect(index.maxTimestamp).toBe(T0);
  });

  it('validates records, names and partition counts, and refuses a second open of a directory', async () => {
    const dir = tempDir('invalid');
    const log = await openLog({ dir, ...SMALL });
    const topic = await log.topic('raw', 2);
    const badTime = await rejection(topic.append(0, [{ key: null, value: Buffer.alloc(1), timestamp: 1.5 }]));
    expect(badTime.code).toBe('LOG_INVALID_ARGUMENT');
    expect(badTime.message).toContain('raw/0: record 0 of the batch');
    const huge = { key: null, value: Buffer.alloc(17 * 2 ** 20), timestamp: T0 };
    expect((await rejection(topic.append(0, [huge]))).code).toBe('LOG_RECORD_TOO_LARGE');
    expect(await topic.append(0, [])).toEqual({ baseOffset: 0, nextOffset: 0 });
    expect((await rejection(topic.append(2, recs(0, 1)))).code).toBe('LOG_INVALID_ARGUMENT');
    expect((await rejection(log.topic('raw', 3))).code).toBe('LOG_TOPIC_MISMATCH');
    for (const name of ['', '..', 'a/b', '__cursors', 'x'.repeat(201)])
      expect((await rejection(log.topic(name, 1))).code).toBe('LOG_INVALID_ARGUMENT');
    expect(await log.topic('raw', 2)).toBe(topic);
    expect((await rejection(openEmbeddedLog({ dir }))).code).toBe('LOG_LOCKED');
    await log.close();
    const again = await openLog({ dir });
    expect((await rejection(again.topic('raw', 1))).code).toBe('LOG_TOPIC_MISMATCH');
  });

  it('refuses every call after close with LOG_CLOSED, after finishing the appends under way', async () => {
    const log = await openLog({ dir: tempDir('closed'), ...SMALL });
    const topic = await log.topic('raw', 1);
    const pending = topic.append(0, recs(0, 10));
    const closing = log.close();
    expect((await pending).nextOffset).toBe(10);
    await closing;
    expect((await rejection(topic.append(0, recs(10, 1)))).code).toBe('LOG_CLOSED');
    expect((await rejection(topic.read(0, 0, 1))).code).toBe('LOG_CLOSED');
    expect((await rejection(log.topic('raw', 1))).code).toBe('LOG_CLOSED');
    expect((await rejection(log.cursors.get('g', 'raw', 0))).code).toBe('LOG_CLOSED');
  });

  it('round-trips under every fsync policy', async () => {
    for (const fsync of ['always', 'interval', 'never'] as const) {
      const dir = tempDir(`policy-${fsync}`);
      const log = await openLog({ dir, fsync, fsyncIntervalMs: 5, segmentBytes: 2048, now: () => T0 });
      const topic = await log.topic('raw', 1);
      for (let b = 0; b < 10; b++) await topic.append(0, recs(b * 10, 10));
      await new Promise((r) => setTimeout(r, 30)); // a few timed fsyncs under 'interval'
      await topic.append(0, recs(100, 10));
      await log.close();
      const again = await openLog({ dir, fsync, now: () => T0 });
      expectRecords(await readAll(await again.topic('raw', 1), 0), 0, 110);
    }
  });

  it('reopens a closed topic only once its appends under way are done', async () => {
    const log = await openLog({ dir: tempDir('reopen-topic'), ...SMALL });
    const topic = await log.topic('raw', 1);
    const pending = Array.from({ length: 10 }, (_, b) => topic.append(0, recs(b * 10, 10)));
    void topic.close();
    const again = await log.topic('raw', 1);
    expect(again).not.toBe(topic);
    await Promise.all(pending);
    expect(await again.endOffset(0)).toBe(100);
    expectRecords(await readAll(again, 0), 0, 100);
    expect(log.recoveries).toEqual([]);
  });

  it('serialises concurrent appends to a partition in call order', async () => {
    const log = await openLog({
      dir: tempDir('concurrent'),
      segmentBytes: 2048,
      fsync: 'always',
      now: () => T0,
    });
    const topic = await log.topic('raw', 1);
    const results = await Promise.all(Array.from({ length: 20 }, (_, b) => topic.append(0, recs(b * 5, 5))));
    results.forEach((r, b) => {
      expect(r).toEqual({ baseOffset: b * 5, nextOffset: b * 5 + 5 });
    });
    expectRecords(await readAll(topic, 0), 0, 100);
  });
});

describe('embedded log: retention', () => {
  it('by time: removes closed segments whose newest record is older than retentionMs, never the active one', async () => {
    let now = T0;
    const dir = tempDir('retention-time');
    const log = await openLog({ dir, ...SMALL, retentionMs: HOUR, now: () => now });
    const topic = await log.topic('raw', 1);
    for (let b = 0; b < 10; b++) await topic.append(0, recs(b * 10, 10)); // T0 .. T0 + 99 s
    const before = segmentFiles(dir, 'raw');
    expect(await log.enforceRetention()).toBe(0);

    now = T0 + HOUR + 45_000; // records up to T0 + 45 s are past retention
    expect(await topic.enforceRetention()).toBeGreaterThan(0);
    const start = await topic.startOffset(0);
    const after = segmentFiles(dir, 'raw');
    expect(after).toEqual(before.slice(before.length - after.length));
    expect(after[0]).toBe(`${String(start).padStart(20, '0')}.log`);
    // Whole segments only: the first kept one holds a record newer than the cutoff.
    expect(start).toBeGreaterThan(30);
    expect(start).toBeLessThanOrEqual(46);
    expectRecords(await readAll(topic, 0), start, 100 - start);
    expect((await rejection(topic.read(0, start - 1, 10))).code).toBe('LOG_OFFSET_OUT_OF_RANGE');
    expect(await topic.offsetForTime(0, 0)).toBe(start);

    now = T0 + 10 * HOUR;
    await topic.enforceRetention();
    expect(segmentFiles(dir, 'raw')).toHaveLength(1);
    expect(await topic.endOffset(0)).toBe(100);
    expect(await topic.startOffset(0)).toBeLessThan(100);
  });

  it('by time: runs on segment roll, and reopening keeps startOffset', async () => {
    let now = T0;
    const dir = tempDir('retention-roll');
    const log = await openLog({ dir, ...SMALL, retentionMs: HOUR, now: () => now });
    const topic = await log.topic('raw', 1);
    for (let b = 0; b < 5; b++) await topic.append(0, recs(b * 10, 10));
    now = T0 + 2 * HOUR;
    expect(await topic.startOffset(0)).toBe(0);
    await topic.append(0, recs(50, 10)); // rolls
    const start = await topic.startOffset(0);
    expect(start).toBeGreaterThan(0);
    await log.close();
    const again = await openLog({ dir, ...SMALL });
    const reopened = await again.topic('raw', 1);
    expect(await reopened.startOffset(0)).toBe(start);
    expectRecords(await readAll(reopened, 0), start, 60 - start);
  });

  it('by size: keeps at least retentionBytes, per topic, deleting the oldest closed segments', async () => {
    const dir = tempDir('retention-size');
    const log = await openLog({ dir, ...SMALL });
    const topic = await log.topic('usage', 1, { retentionBytes: 3000 });
    const other = await log.topic('events', 1);
    for (let b = 0; b < 30; b++) {
      await topic.append(0, recs(b * 10, 10));
      await other.append(0, recs(b * 10, 10));
    }
    // It ran on each roll, before the batch that went into the new segment; run it once more.
    await log.enforceRetention();
    const sizes = segmentFiles(dir, 'usage').map((f) => readFileSync(join(dir, 'usage', '0', f)).length);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(3000);
    expect(total - (sizes[0] as number)).toBeLessThan(3000);
    const start = await topic.startOffset(0);
    expect(start).toBeGreaterThan(0);
    expect(total).toBe((300 - start) * ENTRY_BYTES);
    expectRecords(await readAll(topic, 0), start, 300 - start);
    expect(await other.startOffset(0)).toBe(0);
  });
});

describe('embedded log: cursors', () => {
  it('commits and gets per group, topic and partition, and keeps them across reopen', async () => {
    const dir = tempDir('cursors');
    const log = await openLog({ dir });
    expect(await log.cursors.get('engine', 'raw', 0)).toBeUndefined();
    await log.cursors.commit('engine', 'raw', 0, 10);
    await log.cursors.commit('engine', 'raw', 1, 20);
    await log.cursors.commit('engine', 'commands', 0, 3);
    await log.cursors.commit('sink/s3 ü', 'raw', 0, 5);
    await log.cursors.commit('engine', 'raw', 0, 11);
    expect(await log.cursors.get('engine', 'raw', 0)).toBe(11);
    expect(await log.cursors.get('engine', 'raw', 1)).toBe(20);
    expect(await log.cursors.get('engine', 'commands', 0)).toBe(3);
    expect(await log.cursors.get('sink/s3 ü', 'raw', 0)).toBe(5);
    expect((await rejection(log.cursors.commit('engine', 'raw', 0, -1))).code).toBe('LOG_INVALID_ARGUMENT');
    expect((await rejection(log.cursors.commit('', 'raw', 0, 1))).code).toBe('LOG_INVALID_ARGUMENT');
    await log.close();

    expect(readdirSync(join(dir, '__cursors')).sort()).toEqual(['engine.json', 'sink%2Fs3%20%C3%BC.json']);
    const again = await openLog({ dir });
    expect(await again.cursors.get('engine', 'raw', 0)).toBe(11);
    expect(await again.cursors.get('engine', 'commands', 0)).toBe(3);
    expect(await again.cursors.get('sink/s3 ü', 'raw', 0)).toBe(5);
  });

  it('replaces the cursor file atomically: a reader only ever finds whole files', async () => {
    const dir = tempDir('cursor-atomic');
    const log = await openLog({ dir });
    const cursorDir = join(dir, '__cursors');
    let stop = false;
    let observed = 0;
    const seen = new Set<number>();
    // Polls the directory as a reader would, as fast as it can, while commits run.
    const reader = (async () => {
      while (!stop) {
        for (const name of readdirSync(cursorDir).filter((n) => n.endsWith('.json'))) {
          let text: string;
          try {
            text = readFileSync(join(cursorDir, name), 'utf8');
          } catch {
            continue;
          }
          const content = JSON.parse(text) as { offsets: { raw: Record<string, number> } };
          seen.add(content.offsets.raw['0'] as number);
          observed++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 1; i <= 200; i++) {
      // Several partitions committed at once share one write.
      await Promise.all([0, 1, 2].map((p) => log.cursors.commit('engine', 'raw', p, i * 10 + p)));
    }
    stop = true;
    await reader;
    expect(observed).toBeGreaterThan(10);
    expect(seen.size).toBeGreaterThan(1);
    expect(await log.cursors.get('engine', 'raw', 2)).toBe(2002);

    // A crash between writing the temp file and renaming it: the temp file is ignored and removed.
    await log.close();
    writeFileSync(join(cursorDir, 'engine.json.tmp-999-1'), '{"version":1,"group":"engine","off');
    const again = await openLog({ dir });
    expect(await again.cursors.get('engine', 'raw', 0)).toBe(2000);
    expect(readdirSync(cursorDir)).toEqual(['engine.json']);
    expect(existsSync(join(dir, 'LOCK'))).toBe(true);
  });

  it('reports a damaged cursor file as LOG_CORRUPT naming it', async () => {
    const dir = tempDir('cursor-corrupt');
    const log = await openLog({ dir });
    await log.cursors.commit('engine', 'raw', 0, 1);
    await log.close();
    writeFileSync(join(dir, '__cursors', 'engine.json'), '{"version":1,');
    const again = await openLog({ dir });
    const e = await rejection(again.cursors.get('engine', 'raw', 0));
    expect(e.code).toBe('LOG_CORRUPT');
    expect(e.message).toContain(join(dir, '__cursors', 'engine.json'));
  });
});

describe('embedded log: options', () => {
  it('rejects bad options with LOG_INVALID_ARGUMENT naming them', async () => {
    const dir = tempDir('options');
    for (const [options, name] of [
      [{ dir: '' }, 'dir'],
      [{ dir, fsync: 'sometimes' as 'always' }, 'fsync'],
      [{ dir, fsyncIntervalMs: Number.POSITIVE_INFINITY }, 'fsyncIntervalMs'],
      [{ dir, segmentBytes: 10 }, 'segmentBytes'],
      [{ dir, retentionMs: -1 }, 'retentionMs'],
      [{ dir, retentionBytes: 1.5 }, 'retentionBytes'],
    ] as const) {
      const e = await rejection(openEmbeddedLog(options));
      expect(e.code).toBe('LOG_INVALID_ARGUMENT');
      expect(e.message).toContain(name);
    }
  });
});
