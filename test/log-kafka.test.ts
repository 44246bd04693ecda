/**
 * The Kafka log against a real single-node Kafka broker (KRaft) started from Maven Central
 * jars by test/support/kafka-broker.ts: the Log contract (test/support/log-contract.ts,
 * also run on the embedded log in log.test.ts), then what only Kafka has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KafkaLog, openKafkaLog } from '../src/log/kafka/log.js';
import type { KafkaLogOptions } from '../src/log/kafka/options.js';
import { type KafkaBroker, kafkaBrokersOrFail, startKafkaBroker } from './support/kafka-broker.js';
import { describeLogContract } from './support/log-contract.js';
import { expectRecords, readAll, rec, recs, rejection, removeTempDirs, T0 } from './support/log-fixtures.js';

let broker: KafkaBroker | undefined;
let startFailure: Error | undefined;

beforeAll(async () => {
  try {
    broker = await startKafkaBroker();
    console.log(
      `kafka broker at ${broker.brokers.join(',')} ready in ${broker.startMs} ms (jar resolution ${broker.resolveMs} ms)`,
    );
  } catch (error) {
    startFailure = error as Error;
  }
}, 300_000);

afterAll(async () => {
  await broker?.stop();
  removeTempDirs();
});

/** Fails (never skips) when the broker did not start, saying how to fix it. */
const brokers = (): string[] => kafkaBrokersOrFail(broker, startFailure);

/** Event times of the fixtures are in January 2026: no retention by time, or the broker would delete them. */
const options = (extra: Partial<KafkaLogOptions> = {}): KafkaLogOptions => ({
  brokers: brokers(),
  clientId: 'log-kafka-test',
  retentionMs: Number.POSITIVE_INFINITY,
  logLevel: 'error',
  ...extra,
});

// Names unique per run, for a broker given by DATA_STREAMER_KAFKA_BROKERS that keeps its topics.
const run = Date.now().toString(36);
let names = 0;
const topicName = (base: string) => `${base}-${run}-${++names}`;

describeLogContract({ name: 'kafka', open: () => openKafkaLog(options()), topicName });

describe('kafka log: what only Kafka has', () => {
  const opened: KafkaLog[] = [];
  const open = async (extra: Partial<KafkaLogOptions> = {}) => {
    const log = await openKafkaLog(options(extra));
    opened.push(log);
    return log;
  };
  afterAll(async () => {
    await Promise.allSettled(opened.map((l) => l.close()));
  });

  it('creates topics with the partition count and retention asked for', async () => {
    const log = await open();
    const name = topicName('config');
    await log.topic(name, 3, { retentionMs: 3 * 86_400_000, retentionBytes: 10_000_000 });
    const { Kafka } = await import('kafkajs');
    const admin = new Kafka({ brokers: brokers(), logLevel: 0 }).admin();
    await admin.connect();
    try {
      const [meta] = (await admin.fetchTopicMetadata({ topics: [name] })).topics;
      expect(meta?.partitions).toHaveLength(3);
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: 2, name, configNames: ['retention.ms', 'retention.bytes', 'message.timestamp.type'] },
        ],
      });
      const entries = Object.fromEntries(
        (resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]),
      );
      expect(entries).toEqual({
        'retention.ms': String(3 * 86_400_000),
        'retention.bytes': '10000000',
        'message.timestamp.type': 'CreateTime',
      });
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps event times from far in the future, and splits a big append into batches', async () => {
    const log = await open({ maxBatchBytes: 4096 });
    const topic = await log.topic(topicName('future'), 1);
    const future = Date.now() + 400 * 86_400_000;
    expect(await topic.append(0, [rec(0, future)])).toEqual({ baseOffset: 0, nextOffset: 1 });
    expect((await topic.read(0, 0, 1))[0]?.timestamp).toBe(future);
    // 1000 records of 76 bytes in batches of 4 KiB: 19 produce requests, one result.
    expect(await topic.append(0, recs(1, 1000))).toEqual({ baseOffset: 1, nextOffset: 1001 });
    expectRecords((await readAll(topic, 0, 333)).slice(1), 1, 1000);
  });

  it('moves startOffset when records are deleted: reads below it are LOG_OFFSET_OUT_OF_RANGE', async () => {
    const log = await open();
    const name = topicName('deleted');
    const topic = await log.topic(name, 1);
    await topic.append(0, recs(0, 50));
    const { Kafka } = await import('kafkajs');
    const admin = new Kafka({ brokers: brokers(), logLevel: 0 }).admin();
    await admin.connect();
    try {
      await admin.fetchTopicMetadata({ topics: [name] }); // kafkajs's admin needs it loaded first
      await admin.deleteTopicRecords({ topic: name, partitions: [{ partition: 0, offset: '20' }] });
    } finally {
      await admin.disconnect();
    }
    expect(await topic.startOffset(0)).toBe(20);
    const e = await rejection(topic.read(0, 19, 10));
    expect(e.code).toBe('LOG_OFFSET_OUT_OF_RANGE');
    expect(e.message).toBe(`${name}/0: offset 19 is out of range; the partition holds 20 to 50`);
    expect(await topic.offsetForTime(0, 0)).toBe(20);
    expect(await topic.offsetForTime(0, T0 + 30_000)).toBe(30);
    expectRecords(await readAll(topic, 0), 20, 30);
  });

  it('refuses a replication factor the cluster cannot give with LOG_INVALID_ARGUMENT', async () => {
    const log = await open({ replicationFactor: 3 });
    const e = await rejection(log.topic(topicName('replicated'), 1));
    expect(e.code).toBe('LOG_INVALID_ARGUMENT');
    expect(e.message).toContain('INVALID_REPLICATION_FACTOR');
  });

  it('rejects bad options with LOG_INVALID_ARGUMENT naming them, before connecting', async () => {
    for (const [bad, name] of [
      [{ brokers: [] }, 'brokers'],
      [{ brokers: ['localhost'] }, 'brokers'],
      [{ brokers: ['127.0.0.1:9092'], replicationFactor: 0 }, 'replicationFactor'],
      [{ brokers: ['127.0.0.1:9092'], retentionMs: -1 }, 'retentionMs'],
      [{ brokers: ['127.0.0.1:9092'], maxBatchBytes: 10 }, 'maxBatchBytes'],
      [{ brokers: ['127.0.0.1:9092'], logLevel: 'loud' }, 'logLevel'],
    ] as const) {
      const e = await rejection(openKafkaLog(bad as KafkaLogOptions));
      expect(e.code).toBe('LOG_INVALID_ARGUMENT');
      expect(e.message).toContain(name);
    }
  });

  it('fails to open with a retriable LOG_IO naming the brokers when none answers', async () => {
    const started = Date.now();
    const e = await rejection(
      openKafkaLog({ brokers: ['127.0.0.1:1'], retries: 1, connectionTimeoutMs: 500, logLevel: 'nothing' }),
    );
    expect(e.code).toBe('LOG_IO');
    expect((e as { kind?: string }).kind).toBe('retriable');
    expect(e.message).toContain('127.0.0.1:1 is unreachable');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('measures append and read throughput of 100,000 small records', async () => {
    const log = await open();
    const topic = await log.topic(topicName('throughput'), 1);
    const total = 100_000;
    const batch = 1000;
    const value = Buffer.alloc(100, 1);
    let started = performance.now();
    for (let i = 0; i < total; i += batch)
      await topic.append(
        0,
        Array.from({ length: batch }, (_, k) => ({
          key: `k${(i + k) % 1000}`,
          value,
          timestamp: T0 + i + k,
        })),
      );
    const appendSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    let read = 0;
    for (let next = 0; next < total; ) {
      const got = await topic.read(0, next, batch);
      read += got.length;
      next = (got.at(-1)?.offset ?? next) + 1;
    }
    const readSeconds = (performance.now() - started) / 1000;
    expect(read).toBe(total);
    console.log(
      `kafka log, ${total} records of 100 bytes in batches of ${batch}: ` +
        `append ${Math.round(total / appendSeconds)} records/s, read ${Math.round(total / readSeconds)} records/s`,
    );
  });
});
