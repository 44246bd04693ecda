/**
 * The Pub/Sub sink against Google's official Pub/Sub emulator (a Java jar), started as a
 * child process on a free 127.0.0.1 port. What arrives is read back with a real
 * subscription (message ordering on) through synchronous Pull.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PubSub, v1 } from '@google-cloud/pubsub';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/ports.js';
import type { DeliveryError, Sink, SinkBatch, SinkContext, SinkRecord } from '../types.js';
import { classifyGrpcError } from './classify.js';
import { type PubSubCredentials, pubsubSink } from './index.js';

// Otherwise google-auth-library probes the GCE metadata server, which is not on this machine.
process.env.METADATA_SERVER_DETECTION = 'none';

const EMULATOR_DIR = '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib';
const INSTALL_HINT =
  'The Pub/Sub sink tests need the official emulator and Java 17: install the Debian packages ' +
  '`google-cloud-cli-pubsub-emulator` (jar in /usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/) ' +
  'and `openjdk-17-jre-headless`.';
const PROJECT = 'test-project';
const TIMEOUT_MS = 5_000;
const context: SinkContext = { organisationId: 1234, timeoutMs: TIMEOUT_MS, now: () => Date.now() };

let emulator: ChildProcess | undefined;
let endpoint = '';
let admin: PubSub;
let subscriber: v1.SubscriberClient;
let topicCount = 0;

function killEmulator(): void {
  if (emulator && emulator.exitCode === null && emulator.signalCode === null) emulator.kill('SIGKILL');
}
process.on('exit', killEmulator);

beforeAll(async () => {
  const port = await freePort();
  endpoint = `127.0.0.1:${port}`;
  emulator = await startEmulator(port);
  admin = new PubSub({ projectId: PROJECT, apiEndpoint: endpoint, emulatorMode: true });
  // The admin client's resolved config carries the emulator's insecure channel settings.
  const { port: _, ...config } = await admin.getClientConfig();
  subscriber = new v1.SubscriberClient({ ...config, port });
}, 45_000);

afterAll(async () => {
  await subscriber?.close();
  await admin?.close();
  killEmulator();
});

describe('pubsubSink factory', () => {
  const validate = new Ajv({ allErrors: true, strict: true }).compile(pubsubSink.credentialsSchema);

  it('declares what the registry needs', () => {
    expect(pubsubSink.connectionType).toBe('PubSub');
    expect(pubsubSink.formats).toEqual(['Json']);
    expect(pubsubSink.secretFields).toEqual(['credentials_json']);
  });

  it('accepts emnify credentials and rejects incomplete or unknown ones', () => {
    expect(validate({ cps_project: 'my-iot-project', cps_topic: 'emnify-events' })).toBe(true);
    expect(
      validate({
        cps_project: 'my-iot-project',
        cps_topic: 'emnify-events',
        credentials_json: '{"type":"service_account"}',
        api_endpoint: 'pubsub-emulator:8085',
      }),
    ).toBe(true);

    expect(validate({ cps_project: 'my-iot-project' })).toBe(false);
    expect(validate.errors).toContainEqual(
      expect.objectContaining({ params: { missingProperty: 'cps_topic' } }),
    );
    expect(validate({ cps_project: 'my-iot-project', cps_topic: 'emnify-events', region: 'eu' })).toBe(false);
    expect(validate({ cps_project: 'my-iot-project', cps_topic: 'projects/x/topics/emnify-events' })).toBe(
      false,
    );
    expect(validate({ cps_project: 'my-iot-project', cps_topic: 'goog-events' })).toBe(false);
    expect(validate({ cps_project: 'my-iot-project', cps_topic: 't', api_endpoint: 'http://x' })).toBe(false);
  });
});

describe('writing to the emulator', () => {
  it('publishes every record once, byte for byte, with attributes and per-endpoint order', async () => {
    const { topic, subscription } = await topicWithSubscription();
    const sink = await openSink({ cps_topic: topic });
    try {
      const events = eventBatch(300, 1);
      const usage = usageBatch(20, 10_000);
      await sink.write(events);
      await sink.write(usage);

      const received = await pullAll(subscription, 320);
      const byId = new Map(received.map((m) => [m.attributes.record_id, m]));
      expect(byId.size).toBe(320);
      for (const record of events.records) {
        const message = byId.get(String(record.id));
        expect(message?.data.equals(Buffer.from(record.json, 'utf8'))).toBe(true);
        expect(message?.orderingKey).toBe(record.key ?? '');
        expect(message?.attributes).toEqual({
          record_type: 'events',
          event_type_id: String(record.eventTypeId),
          record_id: String(record.id),
          stream_id: 'a1b2c3d4',
        });
      }
      for (const record of usage.records) {
        const message = byId.get(String(record.id));
        expect(message?.data.toString('utf8')).toBe(record.json);
        expect(message?.attributes).toEqual({
          record_type: 'usage',
          record_id: String(record.id),
          stream_id: 'u5',
        });
      }

      // Per ordering key, delivery follows the batch (log) order.
      const keys = new Set(events.records.map((r) => r.key).filter((k): k is string => k !== null));
      expect(keys.size).toBe(5);
      for (const key of keys) {
        const sent = [...events.records, ...usage.records]
          .filter((r) => r.key === key)
          .map((r) => String(r.id));
        const got = received.filter((m) => m.orderingKey === key).map((m) => m.attributes.record_id);
        expect(got).toEqual(sent);
      }
    } finally {
      await sink.close();
    }
  });

  it('reports an oversized record as a partial failure and delivers the rest', async () => {
    const { topic, subscription } = await topicWithSubscription();
    const sink = await openSink({ cps_topic: topic });
    try {
      const batch = eventBatch(5, 500);
      const big = batch.records[2] as SinkRecord;
      big.json = `{"id":${big.id},"padding":"${'x'.repeat(10_000_001)}"}`;

      const error = await rejection(sink.write(batch));
      expect(error).toMatchObject({ code: 'SINK_PUBSUB_PARTIAL', kind: 'partial', failed: [2] });
      expect(error.message).toContain(`record ${big.id}`);

      const received = await pullAll(subscription, 4);
      expect(received.map((m) => m.attributes.record_id).sort()).toEqual(['500', '501', '503', '504']);

      const alone = await rejection(sink.write({ ...batch, records: [big] }));
      expect(alone).toMatchObject({ code: 'SINK_PUBSUB_MESSAGE_TOO_LARGE', kind: 'permanent' });
    } finally {
      await sink.close();
    }
  });

  it('does not publish when the signal is already aborted', async () => {
    const { topic } = await topicWithSubscription();
    const sink = await openSink({ cps_topic: topic });
    try {
      const error = await rejection(sink.write(eventBatch(3, 1), AbortSignal.abort()));
      expect(error).toMatchObject({ code: 'SINK_PUBSUB_ABORTED', kind: 'retriable' });
    } finally {
      await sink.close();
    }
  });
});

describe('failures', () => {
  it('a missing topic is permanent when opening', async () => {
    const sink = pubsubSink.create(destination({ cps_topic: 'no-such-topic' }), context);
    const error = await rejection(sink.open());
    expect(error).toMatchObject({ code: 'SINK_PUBSUB_NOT_FOUND', kind: 'permanent', status: 'NOT_FOUND' });
    expect(error.message).toContain(`projects/${PROJECT}/topics/no-such-topic`);
  });

  it('a topic deleted under an open sink is permanent, and its ordering keys recover once it is back', async () => {
    const { topic } = await topicWithSubscription();
    const sink = await openSink({ cps_topic: topic });
    try {
      await admin.topic(topic).delete();
      const batch = eventBatch(40, 2000);
      const error = await rejection(sink.write(batch));
      expect(error).toMatchObject({ code: 'SINK_PUBSUB_NOT_FOUND', kind: 'permanent', status: 'NOT_FOUND' });
      expect(error.message).toContain(`projects/${PROJECT}/topics/${topic}`);

      // A failed Publish pauses its ordering keys in the client; the sink resumes them, so
      // the lane's retry of the same records goes through once the topic exists again.
      // (@google-cloud/pubsub 5.3 also drops a paused key's queue once it drains, so this
      // guards the outcome, not which of the two cleared the pause.)
      await admin.createTopic(topic);
      const subscription = `${topic}-again`;
      await admin.topic(topic).createSubscription(subscription, { enableMessageOrdering: true });
      await sink.write(batch);
      expect(await pullAll(subscription, 40)).toHaveLength(40);
    } finally {
      await sink.close();
    }
  });

  it('an unusable credentials_json is permanent and never echoed', async () => {
    const secret = '{"type":"service_account","private_key":"-----BEGIN SECRET-----"';
    const sink = pubsubSink.create(
      {
        format: 'Json',
        credentials: { cps_project: PROJECT, cps_topic: 'whatever', credentials_json: secret },
      },
      context,
    );
    const error = await rejection(sink.open());
    expect(error).toMatchObject({ code: 'SINK_PUBSUB_CREDENTIALS_INVALID', kind: 'permanent' });
    expect(error.message).not.toContain('BEGIN SECRET');
  });

  it('classifies gRPC statuses as the lane needs them', () => {
    const kindOf = (code: number) => classifyGrpcError(Object.assign(new Error('x'), { code })).kind;
    // UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, CANCELLED
    for (const code of [14, 4, 8, 10, 13, 2, 1]) expect(kindOf(code)).toBe('retriable');
    // NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT, FAILED_PRECONDITION
    for (const code of [5, 7, 16, 3, 9]) expect(kindOf(code)).toBe('permanent');

    const throttled = classifyGrpcError(
      Object.assign(new Error('8 RESOURCE_EXHAUSTED: quota'), {
        code: 8,
        details: 'quota',
        statusDetails: [{ retryDelay: { seconds: 2, nanos: 500_000_000 } }],
      }),
    );
    expect(throttled).toMatchObject({
      code: 'SINK_PUBSUB_RESOURCE_EXHAUSTED',
      kind: 'retriable',
      retryAfterMs: 2500,
    });

    // grpc-js reports a failing credentials plugin as UNKNOWN: a bad key is not transient.
    const badKey = classifyGrpcError({
      code: 2,
      details: 'Getting metadata from plugin failed with error: invalid_grant: Invalid JWT Signature.',
    });
    expect(badKey).toMatchObject({ kind: 'permanent', status: 'UNAUTHENTICATED', auth: true });
  });

  it('a stalled emulator is retriable, within the attempt timeout', async () => {
    const { topic } = await topicWithSubscription();
    const timeoutMs = 1_500;
    const sink = pubsubSink.create(destination({ cps_topic: topic }), { ...context, timeoutMs });
    await sink.open();
    // SIGSTOP: the kernel still accepts the bytes, but nothing answers.
    emulator?.kill('SIGSTOP');
    try {
      const started = Date.now();
      const error = await rejection(sink.write(eventBatch(30, 4000)));
      expect(Date.now() - started).toBeLessThan(timeoutMs + 1_000);
      expect(error).toMatchObject({ kind: 'retriable' });
      expect(['SINK_PUBSUB_TIMEOUT', 'SINK_PUBSUB_DEADLINE_EXCEEDED']).toContain(error.code);
    } finally {
      emulator?.kill('SIGCONT');
    }
    await sink.close();
  });

  // Last: it kills the emulator.
  it('a dead emulator is retriable, within the attempt timeout', async () => {
    const { topic } = await topicWithSubscription();
    const sink = await openSink({ cps_topic: topic });
    try {
      await sink.write(eventBatch(3, 3000));
      killEmulator();
      await new Promise((resolve) => emulator?.once('exit', resolve));

      const started = Date.now();
      const error = await rejection(sink.write(eventBatch(50, 3100)));
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_000);
      expect(error).toMatchObject({ kind: 'retriable' });
      expect(['SINK_PUBSUB_UNAVAILABLE', 'SINK_PUBSUB_TIMEOUT']).toContain(error.code);

      const reopen = await rejection(pubsubSink.create(destination({ cps_topic: topic }), context).open());
      expect(reopen).toMatchObject({ kind: 'retriable' });
    } finally {
      await sink.close();
    }
  });
});

// --- helpers ---

function destination(credentials: Partial<PubSubCredentials>) {
  return {
    format: 'Json',
    credentials: { cps_project: PROJECT, cps_topic: 'unset', api_endpoint: endpoint, ...credentials },
  };
}

async function openSink(credentials: Partial<PubSubCredentials>): Promise<Sink> {
  const sink = pubsubSink.create(destination(credentials), context);
  await sink.open();
  return sink;
}

async function topicWithSubscription(): Promise<{ topic: string; subscription: string }> {
  const topic = `records-${++topicCount}`;
  const subscription = `${topic}-sub`;
  await admin.createTopic(topic);
  await admin.topic(topic).createSubscription(subscription, { enableMessageOrdering: true });
  return { topic, subscription };
}

interface Pulled {
  data: Buffer;
  orderingKey: string;
  attributes: Record<string, string>;
}

/** Pulls (and acks) until `count` messages arrived, in delivery order. */
async function pullAll(subscription: string, count: number): Promise<Pulled[]> {
  const path = `projects/${PROJECT}/subscriptions/${subscription}`;
  const received: Pulled[] = [];
  const until = Date.now() + 15_000;
  while (received.length < count && Date.now() < until) {
    const [response] = await subscriber.pull({ subscription: path, maxMessages: 1000 });
    const messages = response.receivedMessages ?? [];
    for (const { message } of messages) {
      received.push({
        data: Buffer.from(message?.data ?? ''),
        orderingKey: message?.orderingKey ?? '',
        attributes: { ...(message?.attributes ?? {}) },
      });
    }
    const ackIds = messages.map((m) => m.ackId).filter((id): id is string => !!id);
    if (ackIds.length) await subscriber.acknowledge({ subscription: path, ackIds });
  }
  return received;
}

const ENDPOINTS = ['1001', '1002', '1003', '1004', '1005'];

/** Event records over five endpoints; every sixth is organisation-level (no key). */
function eventBatch(count: number, firstId: number): SinkBatch {
  const records: SinkRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstId + i;
    const key = i % 6 === 5 ? null : (ENDPOINTS[i % 6] as string);
    const eventTypeId = key ? 3 : 12;
    // Irregular spacing and non-ASCII text: the sink must pass the text through untouched.
    const json =
      `{"id": ${id},"event_type":{"id":${eventTypeId},"description":"Update location"},` +
      `"timestamp":"2025-03-01T10:00:${String(i % 60).padStart(2, '0')}.000+0000",` +
      `"endpoint":${key ? `{"id":${key},"name":"Zähler ${key} – ✓"}` : 'null'},"detail":{}}`;
    records.push({
      id,
      topic: 'events',
      partition: i % 3,
      offset: i,
      timestamp: 1_740_823_200_000 + i,
      key,
      eventTypeId,
      json,
    });
  }
  return { streamId: 'a1b2c3d4', recordType: 'events', bare: false, records };
}

function usageBatch(count: number, firstId: number): SinkBatch {
  const records: SinkRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstId + i;
    const key = ENDPOINTS[i % ENDPOINTS.length] as string;
    const json = `{"id":${id},"endpoint":{"id":${key}},"volume":{"rx":0.5,"tx":0.25,"total":0.75},"cost":0.01}`;
    records.push({
      id,
      topic: 'usage',
      partition: 0,
      offset: i,
      timestamp: 1_740_823_200_000 + i,
      key,
      json,
    });
  }
  return { streamId: 'u5', recordType: 'usage', bare: false, records };
}

async function rejection(promise: Promise<unknown>): Promise<DeliveryError> {
  try {
    await promise;
  } catch (error) {
    return error as DeliveryError;
  }
  throw new Error('expected a rejection');
}

// --- the emulator process ---

function emulatorJar(): string {
  let jars: string[] = [];
  try {
    jars = readdirSync(EMULATOR_DIR).filter((f) => /^cloud-pubsub-emulator-.*-all\.jar$/.test(f));
  } catch {
    // reported below
  }
  const jar = jars.sort().at(-1);
  if (!jar) throw new Error(`No Pub/Sub emulator jar in ${EMULATOR_DIR}. ${INSTALL_HINT}`);
  return join(EMULATOR_DIR, jar);
}

async function startEmulator(port: number): Promise<ChildProcess> {
  const jar = emulatorJar();
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error || java.status !== 0)
    throw new Error(`java is not runnable (${java.error?.message}). ${INSTALL_HINT}`);

  const child = spawn('java', ['-jar', jar, '--host=127.0.0.1', `--port=${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  emulator = child;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('did not log "Server started" within 30 s')), 30_000);
    const onOutput = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    const fail = (why: Error) => {
      clearTimeout(timer);
      killEmulator();
      reject(new Error(`Pub/Sub emulator (${jar}) failed to start: ${why.message}\n${log}\n${INSTALL_HINT}`));
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`exited with ${code}`)));
  });
  child.removeAllListeners('exit');
  // Keep draining its output so a chatty emulator never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}
