/**
 * `data-streamer kafka init` and `kafka topics` against a real single-node Kafka broker
 * (KRaft) started by test/support/kafka-broker.ts. The command runs in this process
 * (kafkaCommand), its output read from the console.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { kafkaCommand } from '../src/cli/commands/kafka.js';
import { ConfigError } from '../src/config/index.js';
import { engineTopics } from '../src/engine/topics.js';
import { LogError } from '../src/log/errors.js';
import { openKafkaLog } from '../src/log/kafka/log.js';
import { type KafkaBroker, kafkaBrokersOrFail, startKafkaBroker } from './support/kafka-broker.js';
import { freePort } from './support/sink-harness.js';

let broker: KafkaBroker | undefined;
let startFailure: Error | undefined;
const dir = mkdtempSync(join(tmpdir(), 'ds-kafka-cli-'));

beforeAll(async () => {
  try {
    broker = await startKafkaBroker();
  } catch (error) {
    startFailure = error as Error;
  }
}, 300_000);

afterAll(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Fails (never skips) when the broker did not start, saying how to fix it. */
const brokers = (): string[] => kafkaBrokersOrFail(broker, startFailure);

/** A distributed configuration with its own topic prefix, so that tests do not share topics. */
function config(prefix: string, partitions: number, brokerList = brokers()): string {
  const file = join(dir, `${prefix}yaml`);
  writeFileSync(
    file,
    [
      'mode: distributed',
      `partitions: ${partitions}`,
      'reference: /shared/reference.json',
      `kafka: { brokers: [${brokerList.join(', ')}], topicPrefix: "${prefix}", clientId: kafka-cli-test }`,
      'clickhouse: { url: "http://127.0.0.1:8123" }',
    ].join('\n'),
  );
  return file;
}

/** Runs the command, returning its exit code (or the error it threw) and what it printed. */
async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void out.push(String(line)));
  const error = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void err.push(String(line)));
  try {
    const code = await kafkaCommand(argv);
    return { code, out, err, error: undefined };
  } catch (thrown) {
    return { code: undefined, out, err, error: thrown as Error };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('kafka init', () => {
  it('creates every engine topic, then finds them on the next run', async () => {
    const file = config('init1.', 6);
    const layout = engineTopics(6, 'init1.');
    const first = await run('init', '--config', file);
    expect(first.error).toBeUndefined();
    expect(first.code).toBe(0);
    expect(first.out).toEqual(
      layout.map(
        (t) =>
          `created  ${t.name} (${t.partitions} partition${t.partitions === 1 ? '' : 's'}, replication factor 1)`,
      ),
    );
    expect(layout.map((t) => t.name)).toContain('init1.raw');

    const second = await run('init', '--config', file);
    expect(second.code).toBe(0);
    expect(second.out).toEqual(
      layout.map((t) => `exists   ${t.name} (${t.partitions} partition${t.partitions === 1 ? '' : 's'})`),
    );

    // What the engine opens next is what init made.
    const log = await openKafkaLog({ brokers: brokers(), logLevel: 'error' });
    try {
      for (const t of layout) expect((await log.topic(t.name, t.partitions)).partitions).toBe(t.partitions);
    } finally {
      await log.close();
    }
  });

  it('refuses a topic with another partition count, after going through all of them', async () => {
    const log = await openKafkaLog({ brokers: brokers(), logLevel: 'error' });
    await log.topic('mismatch.raw', 2);
    await log.close();
    const result = await run('init', '--config', config('mismatch.', 4));
    expect(result.error).toBeInstanceOf(LogError);
    expect((result.error as LogError).code).toBe('LOG_TOPIC_MISMATCH');
    expect(result.error?.message).toContain(
      "mismatch.raw has another partition count than the configuration's 4",
    );
    expect(result.out[0]).toBe('mismatch mismatch.raw: topic mismatch.raw has 2 partitions, asked for 4');
    expect(result.out.slice(1).every((line) => line.startsWith('created  mismatch.'))).toBe(true);
    expect(result.out).toHaveLength(engineTopics(4).length);
  });

  it('needs mode distributed', async () => {
    const file = join(dir, 'embedded.yaml');
    writeFileSync(file, 'mode: embedded\n');
    const result = await run('init', '--config', file);
    expect(result.error).toBeInstanceOf(ConfigError);
    expect(result.error?.message).toContain('mode embedded');
  });

  it('says which brokers it cannot reach', async () => {
    const nowhere = `127.0.0.1:${await freePort()}`;
    const result = await run('init', '--config', config('nowhere.', 2, [nowhere]));
    expect(result.error).toBeInstanceOf(LogError);
    expect((result.error as LogError).code).toBe('LOG_IO');
    expect((result.error as LogError).kind).toBe('retriable');
    expect(result.error?.message).toContain(nowhere);
  });

  it('prints its help and refuses unknown subcommands and flags', async () => {
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.out.join('\n')).toContain('kafka init --config FILE');
    expect((await run('create')).error?.message).toContain('unknown subcommand "create"');
    expect((await run('init', '--brokers', 'x')).error?.message).toContain("Unknown option '--brokers'");
  });
});

describe('kafka topics', () => {
  it('lists partition counts and end offsets', async () => {
    const file = config('list.', 3);
    const missing = await run('topics', '--config', file);
    expect(missing.code).toBe(1);
    expect(missing.out[0]).toMatch(/^list\.raw +missing \(expected 3 partitions\)$/);
    expect(missing.err[0]).toContain(`${engineTopics(3).length} of ${engineTopics(3).length} topics missing`);

    expect((await run('init', '--config', file)).code).toBe(0);
    const log = await openKafkaLog({ brokers: brokers(), logLevel: 'error' });
    try {
      const raw = await log.topic('list.raw', 3);
      const value = Buffer.from('{}');
      await raw.append(1, [
        { key: 'a', value, timestamp: 1 },
        { key: 'b', value, timestamp: 2 },
      ]);
      await raw.append(2, [{ key: 'c', value, timestamp: 3 }]);
    } finally {
      await log.close();
    }
    const listed = await run('topics', '--config', file);
    expect(listed.code).toBe(0);
    expect(listed.err).toEqual([]);
    expect(listed.out).toHaveLength(engineTopics(3).length);
    expect(listed.out[0]).toMatch(/^list\.raw +3 partitions {2}end offsets 0:0 1:2 2:1 {2}total 3$/);
    const organisation = engineTopics(3, 'list.').find((t) => t.partitions === 1);
    expect(listed.out.find((line) => line.startsWith(`${organisation?.name} `))).toMatch(
      / 1 partition {2}end offsets 0:0 {2}total 0$/,
    );
  });
});
