import { MessageChannel } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedTopic } from '../src/log/embedded/topic.js';
import { type EmbeddedLog, openEmbeddedLog } from '../src/log/index.js';
import { PortCursors, PortTopic, SegmentFiles } from '../src/streams/port-log.js';
import { logHandlers } from '../src/streams/worker-lanes.js';
import { PortRpc } from '../src/util/port-rpc.js';
import { HOUR, recs, rejection, removeTempDirs, segmentFiles, T0, tempDir } from './support/log-fixtures.js';

const opened: EmbeddedLog[] = [];
const ports: MessageChannel[] = [];
const files: SegmentFiles[] = [];
/** Read handles of the lanes' view, closed after each test like a worker closes them. */
function segmentHandles(): SegmentFiles {
  const handles = new SegmentFiles();
  files.push(handles);
  return handles;
}
afterEach(async () => {
  await Promise.all(files.splice(0).map((f) => f.close()));
  for (const channel of ports.splice(0)) {
    channel.port1.close();
    channel.port2.close();
  }
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
});
afterAll(removeTempDirs);

/** The engine's side of a message channel serves its log; the other side is what a lane worker sees. */
async function viewOf(log: EmbeddedLog, topic: EmbeddedTopic) {
  const channel = new MessageChannel();
  ports.push(channel);
  new PortRpc(channel.port1, logHandlers(new Map([[topic.name, topic]]), log.cursors));
  const rpc = new PortRpc(channel.port2, {}, {});
  return { view: new PortTopic(topic.name, topic.partitions, rpc, segmentHandles()), rpc };
}

/** 1 KiB segments and 300-byte index blocks: reads cross both. */
async function smallLog(dir: string): Promise<EmbeddedLog> {
  const log = await openEmbeddedLog({
    dir,
    segmentBytes: 1024,
    indexIntervalBytes: 300,
    fsync: 'never',
    now: () => T0,
  });
  opened.push(log);
  return log;
}

describe("the lanes' worker view of the embedded log", () => {
  it('reads what the log reads, from any offset, across segments and index blocks, within the same budgets', async () => {
    const dir = tempDir('port-read');
    const log = await smallLog(dir);
    const topic = await log.topic('events', 2);
    for (let i = 0; i < 12; i++) await topic.append(1, recs(i * 10, 10));
    expect(segmentFiles(dir, 'events', 1).length).toBeGreaterThan(5);
    const { view } = await viewOf(log, topic);

    const end = await topic.endOffset(1);
    expect(await view.endOffset(1)).toBe(end);
    expect(await view.startOffset(1)).toBe(0);
    for (let from = 0; from <= end; from++)
      for (const [max, bytes] of [
        [1, undefined],
        [7, undefined],
        [50, 500],
        [200, undefined],
      ] as const) {
        const direct = await topic.read(1, from, max, bytes);
        const seen = await view.read(1, from, max, bytes);
        expect(seen.map((r) => [r.offset, r.timestamp, r.key, r.value.toString()])).toEqual(
          direct.map((r) => [r.offset, r.timestamp, r.key, r.value.toString()]),
        );
      }
    expect(await view.read(0, 0, 10)).toEqual([]);
    expect(await view.offsetForTime(1, T0 + 55_000)).toBe(await topic.offsetForTime(1, T0 + 55_000));
  });

  it('follows the end of the log without asking where to read, from the tails each append tells of, across segment rolls', async () => {
    const dir = tempDir('port-follow');
    const log = await smallLog(dir);
    const topic = await log.topic('events', 1);
    const channel = new MessageChannel();
    ports.push(channel);
    const handlers = logHandlers(new Map([[topic.name, topic]]), log.cursors);
    let locates = 0;
    new PortRpc(channel.port1, {
      ...handlers,
      locate: (argument: never) => {
        locates++;
        return (handlers.locate as (a: never) => unknown)(argument);
      },
    });
    const view = new PortTopic(topic.name, 1, new PortRpc(channel.port2, {}), segmentHandles());

    let offset = 0;
    const seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      await topic.append(0, recs(i * 3, 3));
      view.wake(topic.tails());
      for (;;) {
        const records = await view.read(0, offset, 2, 4096);
        if (records.length === 0) break;
        for (const r of records) seen.push(r.offset);
        offset = (records.at(-1)?.offset ?? 0) + 1;
      }
    }
    expect(seen).toEqual(Array.from({ length: 120 }, (_, i) => i));
    // The first read, and one a segment roll: 120 records in 76-byte entries, about 13 a segment.
    expect(segmentFiles(dir, 'events', 0).length).toBeGreaterThan(8);
    expect(locates).toBeLessThanOrEqual(segmentFiles(dir, 'events', 0).length + 1);
    const direct = await topic.read(0, 0, 200);
    const values = await view.read(0, 0, 200);
    expect(values.map((r) => r.value.toString())).toEqual(direct.map((r) => r.value.toString()));
  });

  it('passes the log errors through by code, and cursors to the log', async () => {
    const dir = tempDir('port-errors');
    let now = T0;
    const log = await openEmbeddedLog({
      dir,
      segmentBytes: 1024,
      fsync: 'never',
      retentionMs: HOUR,
      now: () => now,
    });
    opened.push(log);
    const topic = await log.topic('usage', 1);
    for (let i = 0; i < 6; i++) await topic.append(0, recs(i * 10, 10));
    const { view, rpc } = await viewOf(log, topic);
    expect((await rejection(view.read(0, 1000, 1))).code).toBe('LOG_OFFSET_OUT_OF_RANGE');
    expect((await rejection(rpc.call('locate', { topic: 'other', partition: 0, from: 0 }))).code).toBe(
      'STREAM_UNKNOWN_TOPIC',
    );
    expect((await rejection(view.append())).code).toBe('LOG_INVALID_ARGUMENT');

    // Retention removes the oldest segments: reading below the new start is out of range.
    now = T0 + 2 * HOUR;
    expect(await topic.enforceRetention()).toBeGreaterThan(0);
    const start = await topic.startOffset(0);
    expect(await view.startOffset(0)).toBe(start);
    expect((await rejection(view.read(0, 0, 1))).code).toBe('LOG_OFFSET_OUT_OF_RANGE');
    expect((await view.read(0, start, 1))[0]?.offset).toBe(start);

    const cursors = new PortCursors(rpc);
    await cursors.commit('stream:x', 'usage', 0, 42);
    expect(await log.cursors.get('stream:x', 'usage', 0)).toBe(42);
    expect(await cursors.get('stream:x', 'usage', 0)).toBe(42);
  });

  it('wakes a waiting reader on the next append, and at once when an append was told of after its last read began', async () => {
    const dir = tempDir('port-appended');
    const log = await openEmbeddedLog({ dir, fsync: 'never', now: () => T0 });
    opened.push(log);
    const topic = await log.topic('events', 1);
    const { view } = await viewOf(log, topic);
    const signal = new AbortController().signal;

    expect(await view.read(0, 0, 10)).toEqual([]);
    let woken = false;
    const waiting = view.appended(signal).then(() => {
      woken = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(woken).toBe(false);
    view.wake();
    await waiting;

    // The notice came after the read began but before the wait: no waiting for the next one.
    await view.read(0, 0, 10);
    view.wake();
    await view.appended(signal);
  });
});
