/**
 * Distributed mode against a real Kafka broker (KRaft, from Maven Central jars) and the
 * ClickHouse HTTP interface (over chDB): the same capture through the engine on Kafka with
 * a ClickHouse server and through the embedded engine gives the same outputs, record for
 * record, and the same cost totals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecimal } from '../src/core/decimal.js';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { captureLines, Ingestor, partitionOfLine } from '../src/engine/ingest.js';
import { engineTopics } from '../src/engine/topics.js';
import { openKafkaLog } from '../src/log/kafka/log.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { openStore } from '../src/storage/index.js';
import { allOutputs, CLI, captureWithQuotas, cli, Receiver } from './fixtures.js';
import { startClickHouseHttp } from './support/clickhouse-http.js';
import { type KafkaBroker, kafkaBrokersOrFail, startKafkaBroker } from './support/kafka-broker.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-engine-kafka-'));
const reference = generateReferenceData({ devices: 300, seed: 11 });
const capture = join(dir, 'capture.ndjson');
let broker: KafkaBroker | undefined;
let startFailure: Error | undefined;
const run = Date.now().toString(36);

beforeAll(async () => {
  try {
    broker = await startKafkaBroker();
  } catch (error) {
    startFailure = error as Error;
  }
  await captureWithQuotas(capture, reference, { seed: 11, hours: 6, every: 7 });
}, 300_000);

afterAll(async () => {
  await broker?.stop();
});

const costs = async (engine: EmbeddedEngine) =>
  engine.store.query(
    'SELECT toString(currency) AS currency, count() AS records, toString(sum(cost)) AS cost FROM usage_records GROUP BY currency ORDER BY currency',
  );

describe('the engine on Kafka', () => {
  it('gives the same outputs and cost totals as on the embedded log, for the same capture', async () => {
    const brokers = kafkaBrokersOrFail(broker, startFailure);
    // chDB holds one data directory per process: the embedded run first, then the server path.
    const embedded = await EmbeddedEngine.open({ dataDir: join(dir, 'embedded'), partitions: 3 }, reference);
    const expected = await embedded.replay(capture);
    const expectedOutputs = await allOutputs(embedded);
    const expectedCosts = await costs(embedded);
    await embedded.close();
    expect(expected.processed).toBeGreaterThan(5_000);
    expect(expectedOutputs.usage?.length).toBeGreaterThan(1000);

    const clickhouse = await startClickHouseHttp({ dataDir: join(dir, 'clickhouse-server') });
    const onKafka = await EmbeddedEngine.open(
      {
        dataDir: join(dir, 'kafka'),
        partitions: 3,
        log: {
          kind: 'kafka',
          options: { brokers, clientId: 'engine-kafka-test', logLevel: 'error' },
          topicPrefix: `t${run}.`,
        },
        store: { kind: 'server', url: clickhouse.url, database: 'data_streamer' },
      },
      reference,
    );
    try {
      expect((await onKafka.replay(capture)).processed).toBe(expected.processed);
      expect(await allOutputs(onKafka)).toEqual(expectedOutputs);
      expect(await costs(onKafka)).toEqual(expectedCosts);
    } finally {
      await onKafka.close();
      await clickhouse.close();
    }
  }, 240_000);
});

describe('replicas in one consumer group', () => {
  it('two replicas share a 6-partition raw topic; one is killed with SIGKILL; the other takes over; every usage record is in ClickHouse exactly once and delivered to a data stream', async () => {
    const brokers = kafkaBrokersOrFail(broker, startFailure);
    const fleet = generateReferenceData({ devices: 800, seed: 12 });
    const traffic = join(dir, 'replicas.ndjson');
    await captureWithQuotas(traffic, fleet, { seed: 12, hours: 12, every: 11 });

    // The uninterrupted run: the embedded engine in a process of its own (chDB is one per process).
    const replayed = await cli('replay', traffic, '--data-dir', join(dir, 'uninterrupted'), '--json');
    expect(replayed.code, replayed.stderr).toBe(0);
    const expected = JSON.parse(replayed.stdout) as {
      usage_records: { data: number; sms: number };
      cost: Record<string, string>;
    };
    const expectedUsage = expected.usage_records.data + expected.usage_records.sms;

    // What `kafka init` does: the topics. The traffic comes later, while the replicas run.
    const prefix = `r${run}.`;
    const log = await openKafkaLog({ brokers, logLevel: 'error', retentionMs: Number.POSITIVE_INFINITY });
    for (const t of engineTopics(6, prefix)) await log.topic(t.name, t.partitions);
    const ingestor = await Ingestor.open(await log.topic(`${prefix}raw`, 6), new Directory(fleet));
    const lines: string[] = [];
    for await (const line of captureLines(traffic)) lines.push(line);
    /** What the simulator does: the traffic onto the raw topic, a tenth at a time. */
    const feed = async (from: number, to: number) => {
      for (let tenth = from; tenth < to; tenth++) {
        for (const line of lines.slice(
          Math.floor((tenth * lines.length) / 10),
          Math.floor(((tenth + 1) * lines.length) / 10),
        ))
          ingestor.add(line);
        await ingestor.flush();
        await sleep(400);
      }
    };

    const clickhouse = await startClickHouseHttp({ dataDir: join(dir, 'clickhouse-replicas') });
    const store = await openStore({ kind: 'server', url: clickhouse.url, database: 'data_streamer' });
    writeFileSync(join(dir, 'fleet.json'), JSON.stringify(fleet));
    writeFileSync(
      join(dir, 'replicas.yaml'),
      [
        'mode: distributed',
        `dataDir: ${join(dir, 'shared-state')}`,
        'partitions: 6',
        `reference: ${join(dir, 'fleet.json')}`,
        'kafka:',
        `  brokers: [${brokers.join(', ')}]`,
        `  topicPrefix: ${prefix}`,
        `  consumerGroup: replicas-${run}`,
        'clickhouse:',
        `  url: ${clickhouse.url}`,
        'api:',
        '  port: 0',
        '',
      ].join('\n'),
    );
    const replicas: { process: ChildProcess; output: string }[] = [];
    const start = () => {
      const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'replicas.yaml')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const replica = { process: child, output: '' };
      child.stdout?.on('data', (c: Buffer) => {
        replica.output += c.toString('utf8');
      });
      child.stderr?.on('data', (c: Buffer) => {
        replica.output += c.toString('utf8');
      });
      replicas.push(replica);
      return replica;
    };
    const lastAssignment = (output: string) =>
      [...output.matchAll(/partitions of \S+: ([\d, ]+|none)/g)].at(-1)?.[1] ?? '';
    const stored = async () =>
      (
        await store.query(
          'SELECT toString(count()) AS n, toString(uniqExact(id)) AS ids FROM data_streamer.usage_records',
        )
      )[0] as {
        n: string;
        ids: string;
      };
    // A customer's webhook, fed by a data stream created through a replica's API.
    const organisation = fleet.organisations[0]?.id as number;
    const token = await cli(
      'tokens',
      'create',
      '--data-dir',
      join(dir, 'shared-state'),
      '--organisation',
      String(organisation),
    );
    const applicationToken = (JSON.parse(token.stdout) as { application_token: string }).application_token;
    const hook = new Receiver();
    await hook.start();
    try {
      const a = start();
      await expect.poll(() => lastAssignment(a.output), { timeout: 60_000 }).toBe('0, 1, 2, 3, 4, 5');
      const b = start();
      // The group splits the partitions between the two.
      await expect.poll(() => lastAssignment(b.output), { timeout: 60_000 }).toMatch(/\d/);
      const api = /API on (\S+)/.exec(b.output)?.[1] as string;
      const auth = await request(`${api}/api/v1/authenticate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ application_token: applicationToken }),
      });
      const { auth_token } = (await auth.body.json()) as { auth_token: string };
      const created = await request(`${api}/api/v2/data_stream`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auth_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'usage to the customer',
          data_stream_type: { id: 1 },
          destination: {
            connection_type: 'RestAPI',
            credentials: { url: hook.url },
          },
          start: 'earliest',
        }),
      });
      expect(created.statusCode, await created.body.text()).toBe(201);
      await expect
        .poll(() => lastAssignment(a.output).split(',').length, { timeout: 60_000 })
        .toBeLessThan(6);
      // A is killed while the traffic flows: no goodbye, no last snapshot.
      await feed(0, 5);
      expect(Number((await stored()).n)).toBeLessThan(expectedUsage);
      a.process.kill('SIGKILL');
      await feed(5, 10);
      await log.close();
      // Its session times out and B gets every partition, from A's snapshots on.
      await expect.poll(() => lastAssignment(b.output), { timeout: 60_000 }).toBe('0, 1, 2, 3, 4, 5');
      await expect
        .poll(async () => Number((await stored()).n), { timeout: 120_000, interval: 1000 })
        .toBe(expectedUsage);
      expect(await stored()).toEqual({ n: String(expectedUsage), ids: String(expectedUsage) });
      // The stream delivered every usage record of the organisation at least once, across the takeover.
      const ofOrganisation = Number(
        (
          (await store.query(
            `SELECT toString(count()) AS n FROM data_streamer.usage_records WHERE organisation_id = ${organisation}`,
          )) as { n: string }[]
        )[0]?.n,
      );
      expect(ofOrganisation).toBeGreaterThan(0);
      await expect
        .poll(() => new Set(hook.records().map((r) => r.id)).size, { timeout: 60_000 })
        .toBe(ofOrganisation);
      const costs = (await store.query(
        'SELECT toString(currency) AS currency, toString(sum(cost)) AS cost FROM data_streamer.usage_records GROUP BY currency',
      )) as { currency: string; cost: string }[];
      expect(Object.fromEntries(costs.map((c) => [c.currency, parseDecimal(c.cost)]))).toEqual(
        Object.fromEntries(Object.entries(expected.cost).map(([k, v]) => [k, parseDecimal(v)])),
      );
      b.process.kill('SIGTERM');
      expect(await new Promise((resolve) => b.process.once('exit', resolve)), b.output).toBe(0);
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\n${replicas.map((r, i) => `replica ${i}:\n${r.output}`).join('\n')}`,
      );
    } finally {
      for (const r of replicas) if (r.process.exitCode === null) r.process.kill('SIGKILL');
      await hook.stop();
      await store.close();
      await clickhouse.close();
    }
  }, 300_000);
});

describe('replay into Kafka', () => {
  it('puts every record of a capture onto the raw topic of a distributed deployment, in the engine’s partition', async () => {
    const brokers = kafkaBrokersOrFail(broker, startFailure);
    const prefix = `p${run}.`;
    writeFileSync(join(dir, 'reference.json'), JSON.stringify(reference));
    const config = join(dir, 'into.yaml');
    writeFileSync(
      config,
      [
        'mode: distributed',
        `dataDir: ${join(dir, 'into-state')}`,
        'partitions: 3',
        `reference: ${join(dir, 'reference.json')}`,
        'kafka:',
        `  brokers: [${brokers.join(', ')}]`,
        `  topicPrefix: ${prefix}`,
        'clickhouse:',
        '  url: http://127.0.0.1:1',
        '',
      ].join('\n'),
    );
    const done = await cli('replay', capture, '--config', config);
    expect(done.code, done.stderr).toBe(0);
    const expected: string[][] = [[], [], []];
    const directory = new Directory(reference);
    for await (const line of captureLines(capture)) expected[partitionOfLine(line, directory, 3)]?.push(line);
    const log = await openKafkaLog({ brokers, logLevel: 'error' });
    try {
      const raw = await log.topic(`${prefix}raw`, 3);
      for (let p = 0; p < 3; p++) {
        const lines = (await raw.read(p, 0, 1_000_000, 1 << 30)).map((r) => r.value.toString('utf8'));
        expect(lines.length, `partition ${p}`).toBe(expected[p]?.length);
        expect(lines).toEqual(expected[p]);
      }
    } finally {
      await log.close();
    }
  }, 120_000);
});
