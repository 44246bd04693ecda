/**
 * One conformance suite for every sink, through the real data-stream machinery: output
 * topics on the embedded log, a StreamManager with the production sink registry, and each
 * destination's local endpoint behind a TCP fault proxy (test/support/sink-harness.ts).
 *
 * The same six cases run against every harness:
 *
 * 1. delivery: every record of the organisation (usage and events streams), exactly once,
 *    byte for byte, with the destination's key; other organisations' records never.
 *    S3 uses the NdjsonGzip format, so bytes are compared too (CSV has its own tests).
 * 2. ordering: with one batch in flight, each endpoint's records arrive in log order, as
 *    each destination promises it (harness.ordering).
 * 3. retry: the proxy resets every connection for ~1 s while records flow; everything
 *    arrives, the stream stays Running, failed attempts > 0.
 * 4. partial failure, where a real (or protocol-faithful) endpoint can report one:
 *
 *    | sink      | partial failure                                                          |
 *    | --------- | ------------------------------------------------------------------------ |
 *    | eventhubs | the fake refuses one transfer of two endpoints (server busy): all arrive |
 *    | pubsub    | a record over 10 MB: the rest arrive, it alone is dead-lettered          |
 *    | kinesis   | not applicable: moto never fails single entries (needs a fake)           |
 *    | s3        | not applicable: an object is stored whole or not at all                  |
 *    | webhook   | not applicable: a request is accepted or refused as a whole              |
 *
 *    For "not applicable" the case asserts nothing (the harness says why).
 * 5. restart: the StreamManager is closed mid-delivery and a new one opened on the same
 *    directory and log; every record arrives at least once.
 * 6. dead letters: the proxy stays broken past a short retry budget → Error with a
 *    dead-lettered batch; healed → redrive, then restart → every record delivered.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddedLog, openEmbeddedLog } from '../src/log/index.js';
import type { AppendRecord, Topic } from '../src/log/types.js';
import type { RetryPolicy } from '../src/streams/delivery.js';
import { StreamManager } from '../src/streams/manager.js';
import { SINKS } from '../src/streams/sinks.js';
import { EventHubsHarness } from './support/harnesses/eventhubs.js';
import { KinesisHarness } from './support/harnesses/kinesis.js';
import { PubSubHarness } from './support/harnesses/pubsub.js';
import { S3Harness } from './support/harnesses/s3.js';
import { WebhookHarness } from './support/harnesses/webhook.js';
import type { Destination, Received, SinkHarness } from './support/sink-harness.js';

// ---------------------------------------------------------------- records

const ORG = 1825;
const OTHER_ORG = 4711;
/** Records per stream: a multiple of BATCH, so S3 (batched by flush_size, rotate_interval >= 10 s) never lingers. */
const PER_STREAM = 200;
const BATCH = 20;
const T0 = Date.parse('2026-01-05T08:00:00.000Z');

const ENDPOINTS = Array.from({ length: 10 }, (_, i) => ({
  id: 20200070 + i,
  name: i % 3 === 0 ? `Zähler ${i} – Kühlhaus` : `Tracker ${i}`,
  ip_address: `10.176.${i}.${20 + i}`,
  imei: `86773005111111${String(i).padStart(2, '0')}`,
  tags: i % 2 ? 'fleet,eu' : null,
  iccid: `898830300000801393${String(i).padStart(2, '0')}`,
  imsi: `2950509010648${String(i).padStart(2, '0')}`,
  sim_id: 3324190 + i,
  imsi_id: 9624040 + i,
}));

/** A record as the engine writes it to an output topic. */
interface LogRow {
  topic: 'usage' | 'events' | 'organisation-events';
  partition: number;
  key: string | null;
  timestamp: number;
  json: string;
  id: number;
  organisation: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * JSON text with some numbers written as emnify writes them (trailing zeros, many digits):
 * a sink that re-serialises instead of passing the text through changes the bytes.
 *
 * Key order: emnify's examples start events with `timestamp` and usage records with
 * `cost` (emnify-data-streamer.md); this engine's writer (src/core) puts `id` first. Even
 * records are written the engine's way, odd ones emnify's way: both must go through.
 */
function emnifyText(n: number, value: Record<string, unknown>, raw: Record<string, string> = {}): string {
  let text = JSON.stringify(n % 2 === 0 ? Object.assign({ id: value.id }, value) : value);
  for (const [name, number] of Object.entries(raw)) text = text.replace(`"@${name}@"`, number);
  return text;
}

/** A usage record (emnify-data-streamer.md §2.3 shape). */
function usageRow(n: number, organisation: number): LogRow {
  const i = n % ENDPOINTS.length;
  const e = ENDPOINTS[i] as (typeof ENDPOINTS)[number];
  const id = 333333333300000 + n;
  const timestamp = T0 + n * 1000;
  const sms = n % 4 === 3;
  const json = emnifyText(
    n,
    {
      cost: '@cost@',
      id,
      operator: { id: 5, name: 'Telefonica O2', mnc: '07', country: { id: 74, mcc: '262', name: 'Germany' } },
      organisation: { id: organisation, name: organisation === ORG ? 'Test Org' : 'Other Org' },
      tariff: {
        id: 1,
        name: 'Internal Test Data Plan',
        ratezone: { id: sms ? 1 : 2, name: sms ? 'Area 1' : 'Area 2' },
      },
      traffic_type: sms ? { id: 6, description: 'SMS' } : { id: 5, description: 'Data' },
      endpoint: {
        id: e.id,
        name: e.name,
        ip_address: e.ip_address,
        tags: e.tags,
        imei: e.imei,
        balance: null,
      },
      imsi: e.imsi,
      volume: sms ? { total: 1, rx: 1, tx: 0 } : { total: '@total@', rx: 0.172848, tx: 0.047085 },
      start_timestamp: iso(timestamp - 60_000).replace('.000Z', 'Z'),
      sim: {
        id: e.sim_id,
        iccid: e.iccid,
        msisdn: `4236639201234${i}`,
        production_date: '2020-09-09T06:42:59Z',
      },
      currency: { id: 1, code: 'EUR', symbol: '€' },
      end_timestamp: iso(timestamp),
      imsi_id: e.imsi_id,
      session_id: `722aeb56-c4de-4753-ac23-${String(n).padStart(12, '0')}`,
    },
    { cost: sms ? '0.070' : `0.00188${String(n % 100).padStart(2, '0')}0`, total: '0.219930' },
  );
  return { topic: 'usage', partition: i % 2, key: String(e.id), timestamp, json, id, organisation };
}

const EVENT_TYPES = [
  { id: 1, description: 'Update location' },
  { id: 3, description: 'Create PDP Context' },
  { id: 5, description: 'Delete PDP Context' },
];

/** An event (emnify-data-streamer.md §1); every tenth is organisation-level (no endpoint, no key). */
function eventRow(n: number, organisation: number): LogRow {
  const id = 31877320000 + n;
  const timestamp = T0 + n * 1000 + 500;
  const org = { id: organisation, name: organisation === ORG ? 'Test Org' : 'Other Org' };
  if (n % 10 === 9) {
    const json = emnifyText(n, {
      timestamp: iso(timestamp),
      alert: false,
      description: 'Data quota enabled for service profile "Fleet EU".',
      id,
      event_type: { id: 52, description: 'Data quota enabled' },
      event_source: { id: 2, description: 'API' },
      event_severity: { id: 1, description: 'Warn' },
      organisation: org,
      user: { id: 77, name: 'Ops Team', username: 'ops@example.com' },
      endpoint: null,
      sim: null,
      imsi: null,
      detail: null,
    });
    return { topic: 'organisation-events', partition: 0, key: null, timestamp, json, id, organisation };
  }
  // Shifted every ten records, so every endpoint gets events although every tenth is organisation-level.
  const i = (n + Math.floor(n / 10)) % ENDPOINTS.length;
  const e = ENDPOINTS[i] as (typeof ENDPOINTS)[number];
  const type = EVENT_TYPES[n % EVENT_TYPES.length] as (typeof EVENT_TYPES)[number];
  const country = { id: 74, name: 'Germany', country_code: '49', mcc: '262', iso_code: 'de' };
  const detail =
    type.id === 1
      ? {
          id: 2,
          name: 'Telefonica O2',
          country,
          tapcode: [{ id: 2, tapcode: 'DEUD2' }],
          mnc: [{ id: 2, mnc: '07' }],
        }
      : {
          id: 3,
          name: 'Vodafone',
          country,
          session_id: `d12c574f-e219-45a4-8836-${String(n).padStart(12, '0')}`,
          pdp_context: {
            apn: 'em',
            rat_type: 6,
            rac: null,
            tunnel_created: iso(timestamp).slice(0, 19),
            mcc: '262',
            mnc: '02',
            ue_ip_address: e.ip_address,
          },
          ...(type.id === 5 ? { volume: { total: '@total@', rx: 0.5, tx: 0.12 } } : {}),
        };
  const json = emnifyText(
    n,
    {
      timestamp: iso(timestamp),
      alert: false,
      description:
        type.id === 1
          ? `New location received from VLR for IMSI=${e.imsi}, now attached to VLR=491770940000.`
          : `PDP Context ${type.id === 3 ? 'activated' : 'deleted'} with SGSN CP=60.195.159.61 \\ "quoted"`,
      id,
      event_type: type,
      event_source: { id: 0, description: 'Network' },
      event_severity: { id: 0, description: 'Info' },
      organisation: org,
      endpoint: { id: e.id, imei: e.imei, ip_address: e.ip_address, name: e.name, tags: e.tags },
      sim: { iccid: e.iccid, id: e.sim_id, production_date: '2020-12-23T13:02:11.000Z' },
      imsi: { id: e.imsi_id, import_date: '2020-12-23T13:02:11.000Z', imsi: e.imsi },
      detail,
    },
    { total: '0.620000' },
  );
  return { topic: 'events', partition: i % 2, key: String(e.id), timestamp, json, id, organisation };
}

/** PER_STREAM records of the organisation, with another organisation's records in between (every 11th). */
function dataset(type: 'usage' | 'events', first = 0): LogRow[] {
  const make = type === 'usage' ? usageRow : eventRow;
  const rows: LogRow[] = [];
  for (let n = first; n < first + PER_STREAM; n++) {
    rows.push(make(n, ORG));
    if (n % 10 === 4) rows.push(make(100_000 + n, OTHER_ORG));
  }
  return rows;
}

const mine = (rows: LogRow[]) => rows.filter((r) => r.organisation === ORG);

// ---------------------------------------------------------------- one case's world

const RETRY: RetryPolicy = { minDelayMs: 50, maxDelayMs: 400, maxElapsedMs: 30_000 };
const SHORT_RETRY: RetryPolicy = { minDelayMs: 50, maxDelayMs: 200, maxElapsedMs: 1500 };

const temps: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

interface CaseWorld {
  /** The StreamManager's directory (streams.json, dead-letters/). */
  streamsDir: string;
  log: EmbeddedLog;
  topics: Record<LogRow['topic'], Topic>;
  destination: Destination;
  /** Opens a StreamManager on the case's directory and log (a second call: "after a restart"). */
  manager(options?: { retry?: RetryPolicy; maxInFlight?: number; maxBytes?: number }): StreamManager;
  /** Appends rows in log order; with `chunk`, a chunk every `intervalMs` (records flowing). */
  append(rows: LogRow[], pace?: { chunk: number; intervalMs: number }): Promise<void>;
}

async function openCase(harness: SinkHarness, name: string): Promise<CaseWorld> {
  const dir = mkdtempSync(join(tmpdir(), `ds-conformance-${harness.name}-${name}-`));
  temps.push(dir);
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), fsync: 'never' });
  const topics = {
    usage: await log.topic('usage', 2),
    events: await log.topic('events', 2),
    'organisation-events': await log.topic('organisation-events', 1),
  };
  const managers: StreamManager[] = [];
  cleanups.push(async () => {
    for (const m of managers) await m.close().catch(() => undefined);
    harness.proxy.heal();
    await log.close();
  });
  const destination = await harness.destination(name, BATCH);
  return {
    streamsDir: join(dir, 'streams'),
    log,
    topics,
    destination,
    manager: (options = {}) => {
      const manager = new StreamManager({
        dir: join(dir, 'streams'),
        sources: { usage: [topics.usage], events: [topics.events, topics['organisation-events']] },
        cursors: log.cursors,
        sinks: SINKS,
        retry: options.retry ?? RETRY,
        lingerMs: 30,
        pollMs: 10,
        timeoutMs: 3000,
        maxInFlight: options.maxInFlight ?? 2,
        ...(options.maxBytes ? { maxBytes: options.maxBytes } : {}),
      });
      managers.push(manager);
      return manager;
    },
    append: async (rows, pace) => {
      const step = pace?.chunk ?? rows.length;
      for (let at = 0; at < rows.length; at += step) {
        if (at > 0 && pace) await sleep(pace.intervalMs);
        // Grouped per topic and partition, each group in log order.
        const groups = new Map<string, { topic: Topic; partition: number; records: AppendRecord[] }>();
        for (const row of rows.slice(at, at + step)) {
          const slot = `${row.topic}/${row.partition}`;
          const group = groups.get(slot) ?? {
            topic: topics[row.topic],
            partition: row.partition,
            records: [],
          };
          group.records.push({
            key: row.key,
            value: Buffer.from(row.json, 'utf8'),
            timestamp: row.timestamp,
          });
          groups.set(slot, group);
        }
        for (const g of groups.values()) await g.topic.append(g.partition, g.records);
      }
    },
  };
}

function streamBody(type: 'usage' | 'events', destination: Destination, name = `${type} conformance`) {
  return {
    name,
    data_stream_type: { id: type === 'usage' ? 1 : 2 },
    destination: {
      ...destination.body,
      credentials: { ...destination.body.credentials, size: BATCH },
    },
    start: 'earliest',
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Waits until the destination holds every expected id at least once (destinations may lag their ack). */
async function arrived(destination: Destination, rows: LogRow[], timeoutMs = 10_000): Promise<Received[]> {
  const want = new Set(rows.map((r) => r.id));
  let got: Received[] = [];
  await waitFor(
    `${want.size} records at the destination`,
    async () => {
      got = await destination.received();
      const have = new Set(got.map((r) => r.id));
      return [...want].every((id) => have.has(id));
    },
    timeoutMs,
  ).catch(() => undefined);
  return got;
}

/** Every expected record arrived (at least once), byte for byte, and nothing else did. */
function expectEveryRecord(received: Received[], rows: LogRow[], harness: SinkHarness, exactlyOnce: boolean) {
  const expected = new Map(rows.map((r) => [r.id, r]));
  const ids = received.map((r) => r.id);
  const missing = [...expected.keys()].filter((id) => !ids.includes(id));
  expect(missing, 'records that never arrived').toEqual([]);
  expect(
    ids.filter((id) => !expected.has(id)),
    'records that should not have arrived',
  ).toEqual([]);
  if (exactlyOnce) expect(received.length, 'no record delivered twice').toBe(expected.size);
  for (const got of received) {
    const row = expected.get(got.id) as LogRow;
    expect(got.json, `bytes of record ${got.id}`).toBe(row.json);
    expect(got.key, `key of record ${got.id}`).toBe(row.key ?? harness.keylessKey(row.partition));
    if (got.recordId !== undefined)
      expect(got.recordId, `record_id of record ${got.id}`).toBe(String(got.id));
  }
}

// ---------------------------------------------------------------- the suite

const harnesses: SinkHarness[] = [
  new WebhookHarness(),
  new S3Harness(),
  new KinesisHarness(),
  new PubSubHarness(),
  new EventHubsHarness(),
];
const started = new Map<SinkHarness, Promise<void>>();

beforeAll(() => {
  // Every endpoint starts at once; each harness's describe waits for its own.
  for (const h of harnesses) {
    const start = h.start();
    start.catch(() => undefined);
    started.set(h, start);
  }
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

afterAll(async () => {
  await Promise.allSettled(harnesses.map((h) => h.stop()));
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe.each(harnesses.map((h) => [h.name, h] as const))('sink conformance: %s', (_name, harness) => {
  // A service that cannot start fails every case with its install hint (never a skip).
  let startFailure: unknown;
  beforeAll(async () => {
    await started.get(harness)?.catch((error: unknown) => {
      startFailure = error;
    });
  }, 60_000);
  beforeEach(() => {
    if (startFailure) throw startFailure;
  });

  it('delivers every record of the organisation exactly once, byte for byte, with its key', async () => {
    const world = await openCase(harness, 'delivery');
    const usage = dataset('usage');
    const events = dataset('events');
    await world.append([...usage, ...events]);
    const manager = world.manager();
    const u = await manager.create(ORG, streamBody('usage', world.destination));
    const e = await manager.create(ORG, streamBody('events', world.destination));
    await manager.caughtUp();
    const expected = [...mine(usage), ...mine(events)];
    expect(expected).toHaveLength(2 * PER_STREAM);
    expectEveryRecord(await arrived(world.destination, expected), expected, harness, true);
    for (const id of [u.id, e.id]) {
      const status = await manager.status(ORG, id);
      expect(status.stream.status.description).toBe('Running');
      expect(status.lag.records).toBe(0);
      expect(status.metrics.delivered_records).toBe(PER_STREAM);
      expect(status.metrics.failed_attempts).toEqual({ retriable: 0, permanent: 0, partial: 0 });
    }
  });

  it(`keeps each endpoint's records in log order (${harness.ordering})`, async () => {
    const world = await openCase(harness, 'ordering');
    const events = dataset('events');
    await world.append(events);
    const manager = world.manager({ maxInFlight: 1 });
    await manager.create(ORG, streamBody('events', world.destination));
    await manager.caughtUp();
    const received = await arrived(world.destination, mine(events));
    expectEveryRecord(received, mine(events), harness, true);
    for (const endpoint of ENDPOINTS) {
      const key = String(endpoint.id);
      const sent = mine(events)
        .filter((r) => r.key === key)
        .map((r) => r.id);
      expect(sent.length).toBeGreaterThan(10);
      expect(
        received.filter((r) => r.key === key).map((r) => r.id),
        `order of endpoint ${key}`,
      ).toEqual(sent);
    }
  });

  it('retries through ~1 s of refused connections while records flow, and stays Running', async () => {
    const world = await openCase(harness, 'retry');
    const usage = dataset('usage');
    const manager = world.manager();
    const stream = await manager.create(ORG, streamBody('usage', world.destination));
    const flowing = world.append(usage, { chunk: 22, intervalMs: 60 });
    await waitFor('a first batch delivered', async () => {
      return (await manager.status(ORG, stream.id)).metrics.delivered_batches >= 1;
    });
    await harness.proxy.breakFor(1000);
    await flowing;
    await manager.caughtUp();
    expectEveryRecord(await arrived(world.destination, mine(usage)), mine(usage), harness, false);
    const status = await manager.status(ORG, stream.id);
    expect(status.stream.status.description).toBe('Running');
    expect(status.stream.error).toBeUndefined();
    // Failed attempts, retriable or partial: a write whose connection is reset after some of
    // its transfers were accepted (Event Hubs sends up to 8 endpoints at once) is partial.
    const { retriable, partial, permanent } = status.metrics.failed_attempts;
    expect(retriable + partial).toBeGreaterThan(0);
    expect(permanent).toBe(0);
    expect(status.dead_lettered_batches).toBe(0);
    expect(status.lag.records).toBe(0);
    expect(harness.proxy.refused + harness.proxy.resets).toBeGreaterThan(0);
  });

  it(`reports a partial failure and retries only what failed (${harness.partial.kind})`, async () => {
    const partial = harness.partial;
    if (partial.kind === 'not-applicable') {
      // Not applicable to this destination (see the table at the top): nothing to assert.
      return;
    }
    const world = await openCase(harness, 'partial');
    const events = dataset('events');
    if (partial.kind === 'transient') {
      await world.append(events);
      const keys = [String(ENDPOINTS[0]?.id), String(ENDPOINTS[3]?.id)];
      partial.inject(world.destination, keys);
      const manager = world.manager();
      const stream = await manager.create(ORG, streamBody('events', world.destination));
      await manager.caughtUp();
      expectEveryRecord(await arrived(world.destination, mine(events)), mine(events), harness, false);
      const status = await manager.status(ORG, stream.id);
      expect(status.stream.status.description).toBe('Running');
      expect(status.metrics.failed_attempts.partial).toBeGreaterThan(0);
      expect(status.dead_lettered_batches).toBe(0);
      return;
    }
    // A record the destination can never take, in the middle of the log: the rest of its
    // batch is accepted (partial), it alone is retried, refused for good and dead-lettered.
    const at = events.findIndex((r, i) => i > 90 && r.key !== null && r.organisation === ORG);
    const normal = events[at] as LogRow;
    const big: LogRow = {
      ...normal,
      id: 31877399999,
      json: normal.json
        .replace(`"id":${normal.id},`, '"id":31877399999,')
        .replace('"detail":{', `"detail":{"padding":"${'x'.repeat(partial.bytes)}",`),
    };
    expect(big.json).toContain('"id":31877399999,');
    const rows = [...events.slice(0, at), big, ...events.slice(at)];
    await world.append(rows);
    const manager = world.manager({ maxBytes: 64 * 2 ** 20 });
    const stream = await manager.create(ORG, streamBody('events', world.destination));
    await waitFor('the stream to go to Error', async () => {
      return manager.get(ORG, stream.id).status.description === 'Error';
    });
    const failed = await manager.status(ORG, stream.id);
    expect(failed.metrics.failed_attempts.partial).toBeGreaterThan(0);
    expect(failed.metrics.failed_attempts.permanent).toBeGreaterThan(0);
    expect(failed.dead_lettered_batches).toBe(1);
    const [file] = readdirSync(join(world.streamsDir, 'dead-letters', stream.id));
    const deadLettered = JSON.parse(
      readFileSync(join(world.streamsDir, 'dead-letters', stream.id, file as string), 'utf8'),
    ) as { records: { id: number }[]; error: { kind: string } };
    expect(deadLettered.records.map((r) => r.id)).toContain(big.id);
    // Out of Error past the dead-lettered batch: the rest of the log follows.
    await manager.restart(ORG, stream.id, { skipFailed: true });
    await manager.caughtUp();
    const expected = mine(events);
    const received = await arrived(world.destination, expected);
    expectEveryRecord(received, expected, harness, false);
    const status = await manager.status(ORG, stream.id);
    expect(status.stream.status.description).toBe('Running');
    expect(status.lag.records).toBe(0);
  });

  it('loses nothing when the StreamManager is closed mid-delivery and reopened', async () => {
    const world = await openCase(harness, 'restart');
    const events = dataset('events');
    const first = world.manager();
    const stream = await first.create(ORG, streamBody('events', world.destination));
    const flowing = world.append(events, { chunk: 22, intervalMs: 80 });
    await waitFor('some batches delivered', async () => {
      return (await first.status(ORG, stream.id)).metrics.delivered_batches >= 3;
    });
    await first.close();
    const before = new Set((await world.destination.received()).map((r) => r.id));
    expect(before.size, 'closed mid-delivery').toBeLessThan(PER_STREAM);
    const second = world.manager();
    await second.start();
    await flowing;
    await second.caughtUp();
    expectEveryRecord(await arrived(world.destination, mine(events)), mine(events), harness, false);
    const status = await second.status(ORG, stream.id);
    expect(status.stream.status.description).toBe('Running');
    expect(status.lag.records).toBe(0);
  });

  it('dead-letters a batch once the retry budget is spent, and redrive + restart deliver everything', async () => {
    const world = await openCase(harness, 'dead-letter');
    const usage = dataset('usage');
    const manager = world.manager({ retry: SHORT_RETRY });
    const stream = await manager.create(ORG, streamBody('usage', world.destination));
    const firstPart = usage.slice(0, 44);
    await world.append(firstPart);
    await waitFor('the first records delivered', async () => {
      return (await manager.status(ORG, stream.id)).metrics.delivered_records >= mine(firstPart).length;
    });
    harness.proxy.break();
    await world.append(usage.slice(44));
    await waitFor('the stream to go to Error', async () => {
      return manager.get(ORG, stream.id).status.description === 'Error';
    });
    const failed = await manager.status(ORG, stream.id);
    expect(failed.stream.error?.code).toMatch(/^SINK_/);
    expect(failed.dead_lettered_batches).toBeGreaterThanOrEqual(1);
    expect(failed.metrics.failed_attempts.retriable).toBeGreaterThan(0);
    expect(failed.lag.records).toBeGreaterThan(0);

    harness.proxy.heal();
    const redriven = await manager.redrive(ORG, stream.id);
    expect(redriven).toMatchObject({ failed: 0 });
    expect(redriven.batches).toBe(failed.dead_lettered_batches);
    expect((await manager.status(ORG, stream.id)).dead_lettered_batches).toBe(0);
    await manager.restart(ORG, stream.id);
    await manager.caughtUp();
    expectEveryRecord(await arrived(world.destination, mine(usage)), mine(usage), harness, false);
    const status = await manager.status(ORG, stream.id);
    expect(status.stream.status.description).toBe('Running');
    expect(status.stream.error).toBeUndefined();
    expect(status.lag.records).toBe(0);
  });
});
