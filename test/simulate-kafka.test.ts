/**
 * `simulate --kafka` against a real Kafka broker (KRaft, from Maven Central jars): the
 * simulated core's records land on the engine's raw topic exactly once, in the partition
 * the engine's ingest gives them, keyed by endpoint; enforcement commands appended to the
 * engine's enforcement topics while it runs reach the core, which then rejects the blocked
 * device; pacing follows an injected clock; and the produce rate of ~200k records.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCommand } from '../src/cli/commands/simulate.js';
import type { EnforcementCommand, SignalingRecord } from '../src/contracts/raw.js';
import { captureLines, Ingestor, lineTime } from '../src/engine/ingest.js';
import { engineTopics } from '../src/engine/topics.js';
import { type KafkaLog, openKafkaLog } from '../src/log/kafka/log.js';
import type { LogRecord, Topic } from '../src/log/types.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { type Clock, runKafkaSimulation } from '../src/simulator/kafka-producer.js';
import { runSimulation } from '../src/simulator/run.js';
import { type KafkaBroker, kafkaBrokersOrFail, startKafkaBroker } from './support/kafka-broker.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-simulate-kafka-'));
const START = Date.parse('2026-01-05T00:00:00Z');
const DURATION = 2 * 3_600_000;
const SEED = '7';
const reference = generateReferenceData({ devices: 200, seed: SEED });
const directory = new Directory(reference);
const capture = join(dir, 'capture.ndjson');
/** The capture of the same simulation, line by line: what the topic must hold. */
const lines: string[] = [];
let broker: KafkaBroker | undefined;
let startFailure: Error | undefined;
let log: KafkaLog | undefined;
// Prefixes unique per run, for a broker given by DATA_STREAMER_KAFKA_BROKERS that keeps its topics.
const run = Date.now().toString(36);

beforeAll(async () => {
  try {
    broker = await startKafkaBroker();
    log = await openKafkaLog({
      brokers: broker.brokers,
      clientId: 'simulate-kafka-test',
      retentionMs: Number.POSITIVE_INFINITY,
      logLevel: 'error',
    });
  } catch (error) {
    startFailure = error as Error;
  }
  await runSimulation({ reference, seed: SEED, start: START, durationMs: DURATION, out: capture });
  for await (const line of captureLines(capture)) lines.push(line);
}, 300_000);

afterAll(async () => {
  await log?.close();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function kafka(): { brokers: string[]; log: KafkaLog } {
  const brokers = kafkaBrokersOrFail(broker, startFailure);
  return { brokers, log: log as KafkaLog };
}

/** What `data-streamer kafka init` makes: every engine topic, with event times kept forever. */
async function createTopics(prefix: string, partitions: number): Promise<Record<string, Topic>> {
  const topics: Record<string, Topic> = {};
  for (const t of engineTopics(partitions, prefix))
    topics[t.role] = await kafka().log.topic(t.name, t.partitions, { retentionMs: Number.POSITIVE_INFINITY });
  return topics;
}

async function readPartition(topic: Topic, partition: number): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  for (let offset = 0; ; ) {
    const batch = await topic.read(partition, offset, 10_000);
    if (batch.length === 0) return records;
    records.push(...batch);
    offset = (batch[batch.length - 1] as LogRecord).offset + 1;
  }
}

const imsiOf = (line: string) => /"(?:imsi|servedIMSI)":"(\d{15})"/.exec(line)?.[1] as string;
const endpointOf = (line: string) =>
  directory.endpointId(directory.resolveImsi(imsiOf(line))?.index as number);

/** Create PDP Context records of a capture line list, parsed. */
const pdpContexts = (values: string[]) =>
  values
    .filter((line) => line.includes('"type":"CREATE_PDP_CONTEXT"'))
    .map((line) => JSON.parse(line).record as SignalingRecord);

describe('simulate --kafka', () => {
  it('puts every record of the capture on the raw topic once, in the engine partition, keyed by endpoint', async () => {
    const { brokers } = kafka();
    const partitions = 3;
    const topics = await createTopics(`a${run}.`, partitions);
    const code = await simulateCommand([
      ...['--kafka', brokers.join(','), '--topic-prefix', `a${run}.`, '--partitions', String(partitions)],
      ...['--devices', '200', '--seed', SEED, '--duration', '2h', '--quiet'],
    ]);
    expect(code).toBe(0);
    expect(lines.length).toBeGreaterThan(2_000);

    // The engine's ingest decides where each capture line goes; the topic must agree, in order.
    const raw = topics.raw as Topic;
    const ingestor = await Ingestor.open(raw, directory);
    const expected: string[][] = Array.from({ length: partitions }, () => []);
    for (const line of lines) {
      const p = ingestor.partitionOf(line);
      // ...which is the endpoint's index modulo the partition count.
      expect(p).toBe((directory.resolveImsi(imsiOf(line))?.index as number) % partitions);
      expected[p]?.push(line);
    }
    let total = 0;
    for (let p = 0; p < partitions; p++) {
      const records = await readPartition(raw, p);
      total += records.length;
      expect(records.map((r) => r.value.toString('utf8'))).toEqual(expected[p]);
      for (const r of records) {
        const line = r.value.toString('utf8');
        expect(r.key).toBe(String(endpointOf(line)));
        expect(r.timestamp).toBe(lineTime(line));
      }
    }
    expect(total).toBe(lines.length);
  });

  it('applies enforcement commands the engine appends while it runs: a blocked device is rejected', async () => {
    const partitions = 2;
    const prefix = `b${run}.`;
    await createTopics(prefix, partitions);
    // The endpoint with the most accepted sessions in the second half of the run, without enforcement.
    const blockAt = START + 30 * 60_000;
    const later = new Map<number, number>();
    for (const line of lines)
      if (line.includes('"type":"CREATE_PDP_CONTEXT"') && line.includes('"result":"ACCEPTED"')) {
        const t = lineTime(line) as number;
        if (t > blockAt + 15 * 60_000) later.set(endpointOf(line), (later.get(endpointOf(line)) ?? 0) + 1);
      }
    const [blocked] = [...later.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0] as [number, number];
    const throttled = blocked === 20000001 ? 20000002 : 20000001;
    const command = (endpoint: number, action: 'BLOCK' | 'THROTTLE', at: number): EnforcementCommand => ({
      command_id: `test-${action}-${endpoint}`,
      timestamp: at,
      action,
      scope: 'DATA',
      level: 'ENDPOINT',
      endpoint_id: endpoint,
      imsis: [],
      peak_throughput: action === 'THROTTLE' ? 64_000 : null,
      reason: 'test',
      cause_event_id: null,
    });
    let sentAt: number | undefined;
    const summary = await runKafkaSimulation({
      reference,
      seed: SEED,
      start: START,
      durationMs: DURATION,
      kafka: { brokers: kafka().brokers, logLevel: 'error' },
      topicPrefix: prefix,
      batchSize: 100,
      pollIntervalMs: 0,
      onStep: async (_progress, sim, topics) => {
        if (sentAt !== undefined || sim.now < blockAt) return;
        // As the engine writes them: on its enforcement topics, while the simulator runs.
        sentAt = sim.now;
        const [perPartition, organisation] = topics.enforcement as [Topic, Topic];
        const index = directory.indexOfEndpointId(blocked) as number;
        const block = command(blocked, 'BLOCK', blockAt);
        await perPartition.append(index % partitions, [
          { key: String(blocked), value: Buffer.from(JSON.stringify(block)), timestamp: blockAt },
        ]);
        const throttle = command(throttled, 'THROTTLE', blockAt);
        await organisation.append(0, [
          { key: String(throttled), value: Buffer.from(JSON.stringify(throttle)), timestamp: blockAt },
          { key: null, value: Buffer.from('not a command'), timestamp: blockAt },
        ]);
      },
    });
    expect(sentAt).toBeDefined();
    expect(summary.completed).toBe(true);
    expect(summary.commands).toBe(2);
    expect(summary.invalidCommands).toBe(1);
    expect(summary.stats.enforcementApplied).toBe(2);

    // The blocked endpoint's session requests after the block are all refused by the core.
    const raw = await kafka().log.topic(`${prefix}raw`, partitions);
    const index = directory.indexOfEndpointId(blocked) as number;
    const ofBlocked = (await readPartition(raw, index % partitions))
      .filter((r) => r.key === String(blocked))
      .map((r) => r.value.toString('utf8'));
    // A step just before the command can write a record a moment ahead of its own time.
    const after = pdpContexts(ofBlocked).filter((r) => r.timestamp > (sentAt as number) + 60_000);
    expect(after.length).toBeGreaterThan(0);
    for (const r of after)
      expect([r.result, r.cause, r.cause_code]).toEqual(['REJECTED', 'SERVICE_NOT_ALLOWED', 200]);
    // Without the command, the same device had sessions accepted then.
    const before = pdpContexts(lines.filter((line) => endpointOf(line) === blocked)).filter(
      (r) => r.timestamp > (sentAt as number) + 60_000,
    );
    expect(before.some((r) => r.result === 'ACCEPTED')).toBe(true);
    // Its open session was torn down by the core, as the embedded closed loop does.
    expect(ofBlocked.some((line) => line.includes('"MANAGEMENT_INTERVENTION"'))).toBe(true);
  });

  it('paces by --rate and by --speed on the clock it is given', async () => {
    const prefix = `c${run}.`;
    await createTopics(prefix, 2);
    /** A clock that never waits: sleeping moves it forward. */
    const fakeClock = (): Clock & { t: number; slept: number } => {
      const clock = {
        t: 0,
        slept: 0,
        now: () => clock.t,
        sleep: async (ms: number) => {
          clock.t += ms;
          clock.slept += ms;
        },
      };
      return clock;
    };
    const base = {
      reference,
      seed: SEED,
      start: START,
      durationMs: DURATION,
      kafka: { brokers: kafka().brokers, logLevel: 'error' as const },
      topicPrefix: prefix,
    };
    const byRate = fakeClock();
    const rated = await runKafkaSimulation({ ...base, rate: 1000, clock: byRate });
    expect(rated.records).toBe(lines.length);
    // Batches of rate / 20 records, each due at records / rate: the run takes records / rate seconds.
    expect(byRate.t).toBeCloseTo((lines.length / 1000) * 1000, 0);

    const bySpeed = fakeClock();
    const sped = await runKafkaSimulation({ ...base, speed: 3600, clock: bySpeed });
    // The same records whatever the pace (no command came); two virtual hours take two seconds.
    expect(sped.records).toBe(lines.length);
    expect(bySpeed.t).toBeGreaterThanOrEqual(DURATION / 3600 - 50);
    expect(bySpeed.t).toBeLessThanOrEqual(DURATION / 3600 + 100);
  });

  it('takes Kafka, topic prefix, partitions and fleet from --config', async () => {
    const prefix = `e${run}.`;
    const topics = await createTopics(prefix, 4);
    const referenceFile = join(dir, 'fleet.json');
    writeFileSync(referenceFile, JSON.stringify(reference));
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'mode: distributed',
        'partitions: 4',
        'reference: fleet.json',
        'kafka:',
        `  brokers: [${kafka().brokers.join(', ')}]`,
        `  topicPrefix: ${prefix}`,
        'clickhouse:',
        '  url: http://127.0.0.1:8123',
      ].join('\n'),
    );
    const args = ['--config', config, '--seed', SEED, '--duration', '2h', '--quiet'];
    expect(await simulateCommand(args)).toBe(0);
    let onTopic = 0;
    for (let p = 0; p < 4; p++) onTopic += await (topics.raw as Topic).endOffset(p);
    expect(onTopic).toBe(lines.length);
    // The configuration's partition count is checked against the topic's.
    writeFileSync(config, readFileSync(config, 'utf8').replace('partitions: 4', 'partitions: 6'));
    await expect(simulateCommand(args)).rejects.toThrow(/has 4 partitions, expected 6/);
  });

  it('refuses to start when the topics are missing, and creates none', async () => {
    const { brokers } = kafka();
    const prefix = `missing${run}.`;
    await expect(
      simulateCommand(['--kafka', brokers.join(','), '--topic-prefix', prefix, '--devices', '10', '--quiet']),
    ).rejects.toThrow(/missing.*raw.*not found.*data-streamer kafka init --config/s);
    const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      expect((await admin.listTopics()).filter((name) => name.startsWith(prefix))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
    await expect(simulateCommand(['--kafka', 'not a broker', '--devices', '10', '--quiet'])).rejects.toThrow(
      /--kafka/,
    );
    await expect(simulateCommand(['--out', join(dir, 'x.ndjson'), '--speed', '10'])).rejects.toThrow(
      /--speed needs --kafka/,
    );
    await expect(
      simulateCommand(['--out', join(dir, 'x.ndjson'), '--kafka', brokers.join(',')]),
    ).rejects.toThrow(/either --out or --kafka/);
    await expect(simulateCommand(['--devices', '10'])).rejects.toThrow(/--out FILE is required/);
    // --out writes the capture as before.
    const again = join(dir, 'again.ndjson');
    await simulateCommand([
      '--devices',
      '200',
      '--seed',
      SEED,
      '--duration',
      '2h',
      '--out',
      again,
      '--quiet',
    ]);
    expect(readFileSync(again, 'utf8').split('\n').slice(1, -2)).toEqual(lines);
  });

  it('produces about 200k records and reports the rate', async () => {
    const prefix = `d${run}.`;
    const partitions = 6;
    const topics = await createTopics(prefix, partitions);
    const summary = await runKafkaSimulation({
      reference: generateReferenceData({ devices: 6_000, seed: SEED }),
      seed: SEED,
      start: START,
      durationMs: 6 * 3_600_000,
      kafka: { brokers: kafka().brokers, logLevel: 'error' },
      topicPrefix: prefix,
    });
    let onTopic = 0;
    for (let p = 0; p < partitions; p++) onTopic += await (topics.raw as Topic).endOffset(p);
    console.log(
      `simulate --kafka: ${summary.records} records to ${partitions} partitions in ${(summary.elapsedMs / 1000).toFixed(2)} s = ${Math.round(summary.recordsPerSecond)} records/s`,
    );
    expect(summary.records).toBeGreaterThan(150_000);
    expect(summary.acknowledged).toBe(summary.records);
    expect(onTopic).toBe(summary.records);
  }, 120_000);
});
