/**
 * When a lane sends and when it commits: the linger time counted from the previous batch,
 * cursor commits spaced while the lane is busy, waits on a log that cannot tell of appends
 * (Kafka) that pause instead of reading on at once; and what a running lane does when
 * retention passes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SinkFactory } from '../connectors/sinks/types.js';
import { webhookSink } from '../connectors/sinks/webhook/index.js';
import { type EmbeddedLog, type EmbeddedLogOptions, openEmbeddedLog } from '../src/log/index.js';
import type { CursorStore, Topic } from '../src/log/types.js';
import { StreamManager, type StreamManagerOptions } from '../src/streams/manager.js';
import { Receiver } from './fixtures.js';

const ORGANISATION = 1001;
const sinks = new Map([[webhookSink.connectionType, webhookSink as unknown as SinkFactory]]);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let nextId = 1;
const event = () => ({
  key: '7',
  timestamp: 1_767_225_600_000,
  value: Buffer.from(
    `{"id":${64 * nextId++},"alert":false,"event_type":{"id":1},"organisation":{"id":${ORGANISATION},"name":"o"}}`,
  ),
});

/** An events stream (from the end of a fresh one-partition log, unless told) to a local receiver. */
async function setUp(
  options: Partial<StreamManagerOptions> & {
    wrap?: (topic: Topic) => Topic;
    wrapCursors?: (cursors: CursorStore) => CursorStore;
    logOptions?: Partial<EmbeddedLogOptions>;
    start?: string;
    size?: number;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'ds-lane-'));
  const receiver = new Receiver();
  await receiver.start();
  const {
    wrap = (t: Topic) => t,
    wrapCursors = (c: CursorStore) => c,
    logOptions,
    start = 'now',
    size,
    ...managerOptions
  } = options;
  const log: EmbeddedLog = await openEmbeddedLog({ dir: join(dir, 'log'), fsync: 'never', ...logOptions });
  const events = await log.topic('events', 1);
  const usage = await log.topic('usage', 1);
  const manager = new StreamManager({
    dir: join(dir, 'streams'),
    sources: { events: [wrap(events)], usage: [usage] },
    cursors: wrapCursors(log.cursors),
    sinks,
    lanesIn: 'process',
    ...managerOptions,
  });
  cleanups.push(async () => {
    await manager.close();
    await log.close();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const stream = await manager.create(ORGANISATION, {
    name: 'pacing',
    data_stream_type: { id: 2 },
    destination: {
      connection_type: 'RestAPI',
      credentials: { url: receiver.url, ...(size ? { size } : {}) },
    },
    start,
  });
  return { receiver, log, events, manager, stream };
}

async function until(what: () => boolean, withinMs = 10_000): Promise<void> {
  const began = Date.now();
  while (!what()) {
    if (Date.now() - began > withinMs) throw new Error(`not within ${withinMs} ms`);
    await sleep(5);
  }
}

describe('a lane’s linger time', () => {
  it('counts from its previous batch: a record after a quiet spell goes at once, and partial batches come at most once per linger time', async () => {
    const { receiver, events } = await setUp({ lingerMs: 1500, pollMs: 60_000 });
    await sleep(100);
    const first = Date.now();
    await events.append(0, [event()]);
    await until(() => receiver.requests.length === 1);
    const firstArrived = Date.now();
    // Counted from the lane's read, it would have waited the whole linger time.
    expect(firstArrived - first).toBeLessThan(1000);

    await events.append(0, [event()]);
    await sleep(50);
    await events.append(0, [event()]);
    await until(() => receiver.requests.length === 2);
    // Both records in one batch, sent no sooner than the linger time after the first batch.
    expect(Date.now() - firstArrived).toBeGreaterThanOrEqual(1400);
    expect(receiver.requests.map((r) => (r.body as unknown[]).length)).toEqual([1, 2]);
  });
});

describe('a lane’s cursor commits', () => {
  it('are spaced while the lane is busy, and what was delivered is committed when it stops', async () => {
    const commits: number[] = [];
    const { receiver, events, manager, stream, log } = await setUp({
      lingerMs: 10,
      pollMs: 10,
      wrapCursors: (cursors) => ({
        get: (...args) => cursors.get(...args),
        commit: (...args) => {
          commits.push(Date.now());
          return cursors.commit(...args);
        },
      }),
    });
    const before = commits.length;
    // 2.5 s of records, a batch every 20 ms or so: over a hundred batches.
    const began = Date.now();
    let appended = 0;
    while (Date.now() - began < 2500) {
      await events.append(0, [event()]);
      appended++;
      await sleep(20);
    }
    await until(() => receiver.records().length === appended);
    expect(receiver.requests.length).toBeGreaterThan(50);
    // At least a second apart: about one per second, not one per batch.
    const lane = commits.slice(before);
    expect(lane.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < lane.length; i++)
      expect((lane[i] as number) - (lane[i - 1] as number)).toBeGreaterThanOrEqual(990);

    await manager.update(ORGANISATION, stream.id, { status: { id: 2 } });
    expect(await log.cursors.get(`stream:${stream.id}`, 'events', 0)).toBe(await events.endOffset(0));
  });
});

describe('a lane at the end of a log that cannot tell of appends (as on Kafka)', () => {
  it('reads again every poll interval, not without pause', async () => {
    let reads = 0;
    const { receiver, events } = await setUp({
      lingerMs: 10,
      pollMs: 200,
      // The embedded topic without its append notices.
      wrap: (topic) => ({
        name: topic.name,
        partitions: topic.partitions,
        append: (...args) => topic.append(...args),
        read: (...args) => {
          reads++;
          return topic.read(...args);
        },
        startOffset: (p) => topic.startOffset(p),
        endOffset: (p) => topic.endOffset(p),
        offsetForTime: (p, t) => topic.offsetForTime(p, t),
        close: () => topic.close(),
      }),
    });
    await sleep(300);
    reads = 0;
    await sleep(1000);
    // One read per 200 ms poll; reading without pause would be thousands.
    expect(reads).toBeLessThanOrEqual(8);
    await events.append(0, [event()]);
    await until(() => receiver.records().length === 1);
  });
});

describe('a running lane that retention passes', () => {
  it('goes to Error with LOG_OFFSET_OUT_OF_RANGE, and restart goes on from the oldest record left', async () => {
    const { receiver, events, manager, stream } = await setUp({
      // Every closed segment goes at the next roll; a segment holds about 60 records.
      logOptions: { retentionMs: 0, retentionClock: 'append', segmentBytes: 8 * 1024 },
      start: 'earliest',
      size: 10,
      lingerMs: 10,
      pollMs: 10,
      maxInFlight: 1,
      // Retried for longer than the test takes: the batch is not dead-lettered.
      retry: { minDelayMs: 10, maxDelayMs: 20, maxElapsedMs: 60_000 },
    });
    // The receiver refuses until told otherwise: the lane stays on its first batch.
    receiver.failNext = Number.MAX_SAFE_INTEGER;
    const first = nextId;
    await events.append(0, Array.from({ length: 30 }, event));
    await until(() => receiver.failNext < Number.MAX_SAFE_INTEGER - 2);
    // Meanwhile the log moves on, and retention removes what the lane has not read.
    for (let i = 0; i < 20; i++) await events.append(0, Array.from({ length: 5 }, event));
    const oldest = await events.startOffset(0);
    expect(oldest).toBeGreaterThan(30);

    receiver.failNext = 0;
    await until(() => manager.get(ORGANISATION, stream.id).status.description === 'Error');
    const failed = manager.get(ORGANISATION, stream.id);
    expect(failed.error?.code).toBe('LOG_OFFSET_OUT_OF_RANGE');
    // What the lane had read before retention (its first read, in the shared cache) was
    // delivered; the removed records after it cannot be.
    expect(receiver.records().map((r) => r.id)).toEqual(
      Array.from({ length: 30 }, (_, i) => 64 * (first + i)),
    );

    await manager.restart(ORGANISATION, stream.id);
    const end = await events.endOffset(0);
    await until(() => receiver.records().length === 30 + (end - oldest));
    expect(manager.get(ORGANISATION, stream.id).status.description).toBe('Running');
  });
});
