import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkFactory } from '../connectors/sinks/types.js';
import { webhookSink } from '../connectors/sinks/webhook/index.js';
import type { EmbeddedEngine } from '../src/engine/engine.js';
import { topicValues } from '../src/engine/topic-values.js';
import { generateReferenceData } from '../src/reference/generator.js';
import type { StreamConfigError } from '../src/streams/config.js';
import { StreamManager, StreamNotFound } from '../src/streams/manager.js';
import { Receiver, replayedEngine } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-streams-'));
const reference = generateReferenceData({ devices: 200, seed: 5 });
const [orgA, orgB] = reference.organisations.map((o) => o.id) as [number, number];
const sinks = new Map<string, SinkFactory>([
  [webhookSink.connectionType, webhookSink as unknown as SinkFactory],
]);
let engine: EmbeddedEngine;
let usage: { id: number; organisation: { id: number }; end_timestamp: string }[];
let events: { id: number; organisation: { id: number }; event_type: { id: number }; timestamp: string }[];

const open = (name: string, maxElapsedMs = 1500, lanesIn: 'process' | 'worker' = 'process') =>
  new StreamManager({
    lanesIn,
    dir: join(dir, `${lanesIn}-${name}`),
    sources: engine.streamSources(),
    cursors: engine.log.cursors,
    sinks,
    retry: { minDelayMs: 10, maxDelayMs: 50, maxElapsedMs },
    lingerMs: 30,
    pollMs: 10,
    timeoutMs: 2000,
  });

const webhook = (url: string, extra: Record<string, unknown> = {}) => ({
  connection_type: 'RestAPI',
  credentials: { url, headers: ['Authorization:Bearer s3cret-token'], ...extra },
});

beforeAll(async () => {
  engine = await replayedEngine(dir, reference, { seed: 5, hours: 4 });
  usage = [];
  for await (const v of topicValues(engine.streamSources().usage[0] as never)) usage.push(JSON.parse(v));
  events = [];
  for (const topic of engine.streamSources().events)
    for await (const v of topicValues(topic)) events.push(JSON.parse(v));
}, 120_000);

afterAll(async () => {
  await engine?.close();
});

// The lanes run in the manager's thread, or in a worker thread reading the log's files itself.
describe.each(['process', 'worker'] as const)('data streams, lanes in the %s', (lanesIn) => {
  const openLanes = (name: string, maxElapsedMs?: number) => open(name, maxElapsedMs, lanesIn);

  it('refuses invalid streams with every problem named by its field', async () => {
    const manager = openLanes('invalid');
    const attempt = (body: unknown) =>
      manager.create(orgA, body).then(
        () => [],
        (e: StreamConfigError) => e.problems,
      );
    expect(await attempt({ data_stream_type: { id: 3 }, destination: webhook('ftp://x') })).toEqual(
      expect.arrayContaining(['name: is required', 'data_stream_type.id: must be one of 1, 2, got 3']),
    );
    expect(
      await attempt({ name: 'x', data_stream_type: { id: 2 }, destination: webhook('ftp://x', { size: 0 }) }),
    ).toEqual(
      expect.arrayContaining([expect.stringMatching(/^destination\.credentials\.size: must be >= 1/)]),
    );
    const problems = await attempt({
      name: 'x',
      data_stream_type: { id: 1 },
      destination: { connection_type: 'RestAPI', credentials: { headers: ['no colon'] } },
      filters: [{ field: 'alert', value: true }],
      start: 'yesterday',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'destination.credentials.url: is required',
        expect.stringMatching(/^destination\.credentials\.headers\[0\]: must match pattern/),
        'filters: only event streams (data_stream_type 2) can be filtered',
      ]),
    );
    expect(
      await attempt({
        name: 'x',
        data_stream_type: { id: 1 },
        destination: { connection_type: 'Carrier pigeon', credentials: {} },
      }),
    ).toEqual([expect.stringMatching(/^destination\.connection_type: must be one of/)]);
    expect(manager.list(orgA)).toEqual([]);
    await manager.close();
  });

  it('delivers an organisation’s usage records from the earliest, in batches of its size, once each, with its headers; credentials are masked on read', async () => {
    const receiver = new Receiver();
    await receiver.start();
    const manager = openLanes('usage');
    const created = await manager.create(orgA, {
      name: 'usage to webhook',
      data_stream_type: { id: 1 },
      destination: webhook(receiver.url, { size: 250 }),
      start: 'earliest',
    });
    expect(created.destination.credentials).toEqual({
      url: receiver.url,
      headers: ['Authorization:*****'],
      size: 250,
    });
    await manager.caughtUp();
    const expected = usage.filter((u) => u.organisation.id === orgA).map((u) => u.id);
    expect(expected.length).toBeGreaterThan(250);
    expect(
      receiver
        .records()
        .map((r) => r.id)
        .sort((a, b) => a - b),
    ).toEqual(expected.sort((a, b) => a - b));
    expect(receiver.requests.every((r) => Array.isArray(r.body) && r.body.length <= 250)).toBe(true);
    expect(receiver.requests[0]?.headers.authorization).toBe('Bearer s3cret-token');
    const status = await manager.status(orgA, created.id);
    expect(status.lag.records).toBe(0);
    expect(status.metrics.delivered_records).toBe(expected.length);
    expect(JSON.stringify(status)).not.toContain('s3cret');

    // Tenants: another organisation neither sees nor touches the stream.
    expect(manager.list(orgB)).toEqual([]);
    expect(() => manager.get(orgB, created.id)).toThrow(StreamNotFound);
    await expect(manager.delete(orgB, created.id)).rejects.toThrow(StreamNotFound);

    // Reopened: the stream and its position survive; nothing is sent twice.
    await manager.close();
    const again = openLanes('usage');
    await again.start();
    await again.caughtUp();
    expect(receiver.records().length).toBe(expected.length);
    // Sending back the masked credentials keeps the stored secret.
    const read = again.get(orgA, created.id);
    await again.update(orgA, created.id, { name: 'renamed', destination: read.destination });
    await again.replay(orgA, created.id, { from: 0, until: Number.MAX_SAFE_INTEGER });
    expect(receiver.requests.at(-1)?.headers.authorization).toBe('Bearer s3cret-token');
    expect(again.get(orgA, created.id).name).toBe('renamed');
    await again.close();
    await receiver.stop();
  });

  it('filters events by type and sends bare objects when the size is 1', async () => {
    const receiver = new Receiver();
    await receiver.start();
    const manager = openLanes('filtered');
    await manager.create(orgA, {
      name: 'attach events',
      data_stream_type: { id: 2 },
      destination: webhook(receiver.url, { size: 1 }),
      filters: [{ field: 'event_type_id', value: ['1', 2] }],
      start: 'earliest',
    });
    await manager.caughtUp();
    const expected = events.filter((e) => e.organisation.id === orgA && [1, 2].includes(e.event_type.id));
    expect(expected.length).toBeGreaterThan(0);
    expect(receiver.requests.length).toBe(expected.length);
    expect(receiver.requests.every((r) => !Array.isArray(r.body))).toBe(true);
    expect(new Set(receiver.records().map((r) => r.id))).toEqual(new Set(expected.map((e) => e.id)));
    await manager.close();
    await receiver.stop();
  });

  it('a failing destination holds back only its own stream; it goes to Error with a dead letter, and restart or redrive delivers', async () => {
    const healthy = new Receiver();
    const failing = new Receiver();
    await healthy.start();
    await failing.start();
    failing.failNext = Number.POSITIVE_INFINITY;
    const manager = openLanes('isolation', 4000);
    const bad = await manager.create(orgA, {
      name: 'down',
      data_stream_type: { id: 2 },
      destination: webhook(failing.url, { size: 3000 }),
      start: 'earliest',
    });
    const good = await manager.create(orgA, {
      name: 'up',
      data_stream_type: { id: 2 },
      destination: webhook(healthy.url, { size: 3000 }),
      start: 'earliest',
    });
    const own = events.filter((e) => e.organisation.id === orgA).length;
    await manager.caughtUp(good.id);
    expect(healthy.records().length).toBe(own);
    // The healthy stream is done while the other one is still retrying.
    const retrying = await manager.status(orgA, bad.id);
    expect(retrying.stream.status.description).toBe('Running');
    expect(retrying.metrics.failed_attempts.retriable).toBeGreaterThan(0);
    await manager.caughtUp();
    expect((await manager.status(orgA, good.id)).stream.status.description).toBe('Running');
    const down = await manager.status(orgA, bad.id);
    expect(down.stream.status.description).toBe('Error');
    expect(down.stream.error?.code).toBe('SINK_WEBHOOK_HTTP_5XX');
    expect(down.dead_lettered_batches).toBe(1);
    expect(down.metrics.failed_attempts.retriable).toBeGreaterThan(1);
    expect(down.lag.records).toBeGreaterThan(0);

    // The receiver is fixed: redrive sends the dead-lettered batch, restart the rest from the cursor.
    failing.failNext = 0;
    expect(await manager.redrive(orgA, bad.id)).toMatchObject({ batches: 1, failed: 0 });
    await manager.restart(orgA, bad.id);
    await manager.caughtUp();
    expect(new Set(failing.records().map((r) => r.id)).size).toBe(own);
    expect((await manager.status(orgA, bad.id)).stream.status.description).toBe('Running');
    expect((await manager.status(orgA, bad.id)).dead_lettered_batches).toBe(0);
    await manager.close();
    await healthy.stop();
    await failing.stop();
  });

  it('a paused stream keeps its position and catches up when resumed; a time range can be replayed', async () => {
    const receiver = new Receiver();
    await receiver.start();
    const manager = openLanes('paused');
    const stream = await manager.create(orgB, {
      name: 'paused',
      data_stream_type: { id: 1 },
      destination: webhook(receiver.url),
      status: { id: 2 },
      start: 'earliest',
    });
    const own = usage.filter((u) => u.organisation.id === orgB);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests.length).toBe(0);
    expect((await manager.status(orgB, stream.id)).lag.records).toBe(usage.length);
    await manager.update(orgB, stream.id, { status: { id: 1 } });
    await manager.caughtUp();
    expect(receiver.records().length).toBe(own.length);

    // Replay one hour of event time again, beside the lane.
    const from = Date.UTC(2026, 0, 5, 1);
    const until = Date.UTC(2026, 0, 5, 2);
    const before = receiver.records().length;
    const replayed = await manager.replay(orgB, stream.id, { from, until });
    const inRange = own.filter(
      (u) => Date.parse(u.end_timestamp) >= from && Date.parse(u.end_timestamp) < until,
    );
    expect(replayed.records).toBe(inRange.length);
    expect(
      receiver
        .records()
        .slice(before)
        .map((r) => r.id)
        .sort(),
    ).toEqual(inRange.map((u) => u.id).sort());
    await manager.close();
    await receiver.stop();
  });
});

describe('data streams, lanes in a worker thread that dies', () => {
  it('every stream the worker ran goes to Error, and restart delivers from its cursor in a new worker', async () => {
    const receiver = new Receiver();
    await receiver.start();
    // The receiver refuses everything, so the worker dies while the lane is retrying its first batch.
    const manager = open('crash', 1500, 'worker');
    receiver.failNext = Number.POSITIVE_INFINITY;
    const stream = await manager.create(orgA, {
      name: 'crashing',
      data_stream_type: { id: 1 },
      destination: webhook(receiver.url, { size: 100 }),
      start: 'earliest',
    });
    await new Promise((r) => setTimeout(r, 200));
    // What a crash of the thread looks like from outside: it exits without being asked to.
    const { host } = manager as unknown as { host: { worker: Worker } };
    await host.worker.terminate();
    await manager.caughtUp();
    const down = await manager.status(orgA, stream.id);
    expect(down.stream.status.description).toBe('Error');
    expect(down.stream.error?.code).toBe('STREAM_LANES_EXITED');

    receiver.failNext = 0;
    await manager.restart(orgA, stream.id);
    await manager.caughtUp();
    const expected = usage.filter((u) => u.organisation.id === orgA).map((u) => u.id);
    expect(new Set(receiver.records().map((r) => r.id))).toEqual(new Set(expected));
    expect((await manager.status(orgA, stream.id)).stream.status.description).toBe('Running');
    await manager.close();
    await receiver.stop();
  });
});
