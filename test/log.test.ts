import { existsSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SparseIndex } from '../src/log/embedded/sparse-index.js';
import { type EmbeddedLog, type EmbeddedLogOptions, openEmbeddedLog } from '../src/log/index.js';
import { describeLogContract } from './support/log-contract.js';
import {
  ENTRY_BYTES,
  expectRecords,
  HOUR,
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

// The contract every log honours (test/support/log-contract.ts, run on Kafka in
// log-kafka.test.ts), here with small segments and index blocks, so reads cross both.
let names = 0;
const contractDir = tempDir('contract');
describeLogContract({
  name: 'embedded',
  open: () =>
    openEmbeddedLog({
      dir: contractDir,
      segmentBytes: 4096,
      indexIntervalBytes: 300,
      fsync: 'never',
      now: () => T0,
    }),
  topicName: (base) => `${base}-${++names}`,
});

describe('embedded log: append and read', () => {
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

  it('keeps a bounded number of segment files open for reading, however many segments it reads', async () => {
    const dir = tempDir('many-segments');
    const log = await openLog({ dir, ...SMALL });
    const topic = await log.topic('raw', 1);
    for (let i = 0; i < 150; i++) await topic.append(0, recs(i * 10, 10));
    expect(segmentFiles(dir, 'raw', 0).length).toBeGreaterThan(100);
    expectRecords(await readAll(topic, 0), 0, 1500);
    const open = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(join('/proc/self/fd', fd)).startsWith(dir);
      } catch {
        return false;
      }
    });
    // The read handles kept (at most 64) and the active segment's writer.
    expect(open.length).toBeLessThanOrEqual(65);
    expect(open.length).toBeGreaterThan(1);
  });

  it('wakes a reader at the next acknowledged append, or when its signal aborts', async () => {
    const log = await openLog({ dir: tempDir('appended'), ...SMALL });
    const topic = await log.topic('events', 2);
    const waiting = new AbortController();
    let woken = false;
    const wake = topic.appended(waiting.signal).then(() => {
      woken = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(woken).toBe(false);
    await topic.append(1, recs(0, 1));
    await wake;
    expect(woken).toBe(true);
    // Nothing appended: only the abort ends the wait.
    const aborted = new AbortController();
    const pending = topic.appended(aborted.signal);
    aborted.abort();
    await pending;
    waiting.abort();
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

  it("by append time: a segment goes once it was last written more than retentionMs ago, whatever its records' timestamps", async () => {
    let now = Date.now();
    const dir = tempDir('retention-append');
    const log = await openLog({ dir, ...SMALL, retentionMs: HOUR, retentionClock: 'append', now: () => now });
    const topic = await log.topic('raw', 1);
    // Records from January (a replay of an old capture): by their own time, long past retention.
    for (let b = 0; b < 10; b++) await topic.append(0, recs(b * 10, 10));
    expect(await topic.enforceRetention()).toBe(0);
    // Age the first three segments' files, as if written two hours ago.
    const files = segmentFiles(dir, 'raw');
    const old = new Date(now - 2 * HOUR);
    for (const f of files.slice(0, 3)) utimesSync(join(dir, 'raw', '0', f), old, old);
    expect(await topic.enforceRetention()).toBe(3);
    expect(segmentFiles(dir, 'raw')).toEqual(files.slice(3));
    now += 10 * HOUR;
    await topic.enforceRetention();
    expect(segmentFiles(dir, 'raw')).toHaveLength(1);
  });

  it('never removes records at or above the retention floor a reader still needs', async () => {
    let now = T0;
    let floor = 25;
    const dir = tempDir('retention-floor');
    const log = await openLog({ dir, ...SMALL, retentionMs: HOUR, now: () => now });
    const topic = await log.topic('usage', 1, { retentionFloor: async () => floor });
    for (let b = 0; b < 10; b++) await topic.append(0, recs(b * 10, 10));
    now = T0 + 10 * HOUR; // every record is past retention
    await topic.enforceRetention();
    const start = await topic.startOffset(0);
    expect(start).toBeLessThanOrEqual(25);
    expect(start).toBeGreaterThan(0);
    expectRecords(await readAll(topic, 0), start, 100 - start);
    floor = 100;
    await topic.enforceRetention();
    expect(segmentFiles(dir, 'usage')).toHaveLength(1);
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
