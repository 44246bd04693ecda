/**
 * Distributed mode against a real Kafka broker (KRaft, from Maven Central jars) and the
 * ClickHouse HTTP interface (over chDB): the same capture through the engine on Kafka with
 * a ClickHouse server and through the embedded engine gives the same outputs, record for
 * record, and the same cost totals.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { allOutputs, captureWithQuotas } from './fixtures.js';
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
