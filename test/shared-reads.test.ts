import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkFactory } from '../connectors/sinks/types.js';
import { webhookSink } from '../connectors/sinks/webhook/index.js';
import { type EmbeddedLog, openEmbeddedLog } from '../src/log/index.js';
import type { Topic } from '../src/log/types.js';
import { StreamManager } from '../src/streams/manager.js';
import { type SharedChunk, SharedReads } from '../src/streams/shared-reads.js';
import { Receiver } from './fixtures.js';

const ORGANISATIONS = [1001, 1002, 1003];
const RECORDS = 3000;

let dir: string;
let log: EmbeddedLog;
let topic: Topic;
/** Records the log handed out, counted on the real topic. */
let readFromLog = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ds-shared-reads-'));
  log = await openEmbeddedLog({ dir, fsync: 'never' });
  topic = await log.topic('events', 1);
  const records = Array.from({ length: RECORDS }, (_, i) => ({
    key: String(i % 50),
    timestamp: 1_767_225_600_000 + i,
    value: Buffer.from(
      `{"id":${i * 64},"timestamp":"x","event_type":{"id":${1 + (i % 3)},"description":"d"},"alert":${i % 5 === 0},"organisation":{"id":${ORGANISATIONS[i % 3]},"name":"o"},"detail":"${'x'.repeat(200)}"}`,
    ),
  }));
  await topic.append(0, records);
  const read = topic.read.bind(topic);
  topic.read = async (...args: Parameters<Topic['read']>) => {
    const batch = await read(...args);
    readFromLog += batch.length;
    return batch;
  };
});

afterAll(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Reads a whole partition as one lane does: chunk after chunk, keeping its organisation's records. */
async function follow(reads: SharedReads, reader: object, organisation: number, step = 1): Promise<number[]> {
  const ids: number[] = [];
  let at = 0;
  reads.at(reader, topic, 0, at);
  for (;;) {
    const chunk: SharedChunk | undefined = await reads.chunk(topic, 0, at, reader);
    if (!chunk) return ids;
    const own = chunk.byOrganisation.get(organisation);
    // `step` records at a time: a lane whose batch fills up in the middle of a chunk.
    const start = own?.firstAtOrAfter(at) ?? 0;
    const end = Math.min(start + step, own?.length ?? 0);
    for (let i = start; i < end; i++) ids.push(own?.record(i).id as number);
    at = own && end - start === step && end < own.length ? (own.offsets[end] as number) : chunk.to;
  }
}

const expected = (organisation: number) =>
  Array.from({ length: RECORDS }, (_, i) => i)
    .filter((i) => ORGANISATIONS[i % 3] === organisation)
    .map((i) => i * 64);

describe('shared reads of the output log', () => {
  it('reads each record once for lanes that follow the log together, and gives each its own records in order', async () => {
    readFromLog = 0;
    const reads = new SharedReads({ chunkRecords: 256 });
    const lanes = ORGANISATIONS.map((organisation) => ({ organisation }));
    const results = await Promise.all(lanes.map((lane) => follow(reads, lane, lane.organisation, 100)));
    results.forEach((ids, i) => {
      expect(ids).toEqual(expected(ORGANISATIONS[i] as number));
    });
    expect(readFromLog).toBe(RECORDS);
  });

  it('keeps the fields a lane filters on, found once per record', async () => {
    const reads = new SharedReads();
    const chunk = await reads.chunk(topic, 0, 0, {});
    const own = chunk?.byOrganisation.get(1001);
    expect(own?.record(0)).toMatchObject({
      id: 0,
      topic: 'events',
      partition: 0,
      offset: 0,
      key: '0',
      eventTypeId: 1,
    });
    expect(own?.alerts[0]).toBe(1);
    expect(own?.record(0).json.startsWith('{"id":0,')).toBe(true);
  });

  it('stays within its byte bound: a lane far behind reads again for itself and still gets everything', async () => {
    readFromLog = 0;
    // Room for about two chunks of 100 records (~280 bytes each).
    const reads = new SharedReads({ chunkRecords: 100, cacheBytes: 60_000 });
    const ahead = {};
    const behind = {};
    reads.at(behind, topic, 0, 0);
    expect(await follow(reads, ahead, 1002)).toEqual(expected(1002));
    expect(await follow(reads, behind, 1003)).toEqual(expected(1003));
    // The lane behind found little of what the first one read: more than one pass.
    expect(readFromLog).toBeGreaterThan(RECORDS);
    expect(readFromLog).toBeLessThanOrEqual(2 * RECORDS);
  });

  it('drops what every lane has passed first, and forgets a lane that stopped', async () => {
    readFromLog = 0;
    const reads = new SharedReads({ chunkRecords: 100, cacheBytes: 60_000 });
    const stopped = {};
    reads.at(stopped, topic, 0, 0);
    reads.forget(stopped);
    const a = {};
    const b = {};
    const [x, y] = await Promise.all([follow(reads, a, 1001, 7), follow(reads, b, 1002, 7)]);
    expect(x).toEqual(expected(1001));
    expect(y).toEqual(expected(1002));
    expect(readFromLog).toBe(RECORDS);
  });

  it('says there is nothing yet at the end of the log', async () => {
    expect(await new SharedReads().chunk(topic, 0, RECORDS, {})).toBeUndefined();
  });
});

describe('a lane at the end of the embedded log', () => {
  it('is woken by the next append: the record arrives long before the next poll would find it', async () => {
    const receiver = new Receiver();
    await receiver.start();
    const own = await openEmbeddedLog({ dir: join(dir, 'live'), fsync: 'never' });
    const live = await own.topic('events', 2);
    const usage = await own.topic('usage', 2);
    const manager = new StreamManager({
      dir: join(dir, 'streams'),
      sources: { events: [live], usage: [usage] },
      cursors: own.cursors,
      sinks: new Map([[webhookSink.connectionType, webhookSink as unknown as SinkFactory]]),
      lingerMs: 30,
      // A lane that only polled would not look again for a minute.
      pollMs: 60_000,
    });
    await manager.create(1001, {
      name: 'live',
      data_stream_type: { id: 2 },
      destination: { connection_type: 'RestAPI', credentials: { url: receiver.url } },
      start: 'now',
    });
    // Let the lane find the log empty and go to sleep.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const began = Date.now();
    await live.append(1, [
      {
        key: '7',
        timestamp: 1_767_225_600_000,
        value: Buffer.from(
          '{"id":64,"alert":false,"event_type":{"id":1},"organisation":{"id":1001,"name":"o"}}',
        ),
      },
    ]);
    while (receiver.records().length === 0 && Date.now() - began < 30_000)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(receiver.records().map((r) => r.id)).toEqual([64]);
    expect(Date.now() - began).toBeLessThan(30_000);
    await manager.close();
    await own.close();
    await receiver.stop();
  });
});

describe('records a lane hands to sinks', () => {
  it('carry the bytes read from the log, decode their text on demand, and are stored as plain records', async () => {
    const chunk = await new SharedReads().chunk(topic, 0, 3, {});
    const record = chunk?.byOrganisation.get(1001)?.record(0);
    expect(record?.bytes?.toString('utf8')).toBe(record?.json);
    expect(JSON.parse(JSON.stringify({ records: [record] })).records[0]).toEqual({
      id: 3 * 64,
      topic: 'events',
      partition: 0,
      offset: 3,
      timestamp: 1_767_225_600_003,
      key: '3',
      eventTypeId: 1,
      json: record?.json,
    });
  });

  it('keep each key as it was written: endpoint ids, other text, and no key', async () => {
    const keyed = await log.topic('keyed', 1);
    const value = (id: number) =>
      Buffer.from(`{"id":${id},"alert":false,"event_type":{"id":1},"organisation":{"id":1001}}`);
    // Integers go in a number column; one other key keeps the chunk's keys as text.
    const keys = [
      ['12', null, '9007199254740'],
      ['12', '007', null, 'endpoint-a'],
    ] as const;
    for (const batch of keys) {
      const from = await keyed.endOffset(0);
      await keyed.append(
        0,
        batch.map((key, i) => ({ key, timestamp: 1_767_225_600_000, value: value(64 * (from + i)) })),
      );
      const own = (await new SharedReads().chunk(keyed, 0, from, {}))?.byOrganisation.get(1001);
      expect(Array.from({ length: own?.length ?? 0 }, (_, i) => own?.record(i).key)).toEqual(batch);
    }
  });

  it('finds the envelope fields from the head of the bytes as from the whole text', async () => {
    const { fieldsOf, fieldsOfBytes } = await import('../src/streams/record-fields.js');
    const event = `{"id":128,"timestamp":"t","alert":true,"description":"Zürich ${'é'.repeat(100)}","event_type":{"id":3,"description":"x"},"organisation":{"id":1002,"name":"ö"}}`;
    const usage = `{"id":192,"traffic_type":{"id":5,"description":"Data"},"organisation":{"id":1003,"name":"o"},"cost":1.5}`;
    const quiet = '{"id":5,"alert":false,"event_type":{"id":11},"organisation":{"id":7}}';
    for (const text of [event, usage, quiet]) {
      const viaBytes = fieldsOfBytes(Buffer.from(text, 'utf8'));
      expect(viaBytes).toEqual(fieldsOf(text));
    }
    // The organisation beyond the head, or text not written by the engine: the caller parses the text.
    expect(
      fieldsOfBytes(Buffer.from(`{"id":1,"description":"${'x'.repeat(2000)}","organisation":{"id":1}}`)),
    ).toBeUndefined();
    expect(fieldsOfBytes(Buffer.from('{"organisation":{"id":1},"id":2}'))).toBeUndefined();
    expect(fieldsOfBytes(Buffer.from('{"id":12'))).toBeUndefined();
    expect(
      fieldsOfBytes(Buffer.from(`{"id":3,"x":"${'y'.repeat(745)}","organisation":{"id":12345}}`)),
    ).toBeUndefined();
  });
});
