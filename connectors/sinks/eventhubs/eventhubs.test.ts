/**
 * The Event Hubs sink against FakeEventHubs: a protocol-level AMQP 1.0 namespace on
 * 127.0.0.1 (there is no Event Hubs emulator on this machine). Real SDK, real sockets; the
 * assertions are on what the fake accepted and on how each failure is classified.
 */
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DeliveryError, type SinkBatch, type SinkContext, type SinkRecord } from '../types.js';
import { FakeEventHubs } from './fake-event-hubs.js';
import { type EventHubsCredentials, eventHubsSink } from './index.js';

/** A realistic-looking key, so a leak would be findable in any message. */
const KEY = 'Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXk9PQ==';
const HUB = 'telemetry';
const context: SinkContext = { organisationId: 42, timeoutMs: 3000, now: () => Date.now() };

let fake: FakeEventHubs;
const openSinks: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  fake = await FakeEventHubs.start({ hubs: { [HUB]: 4, doomed: 2 }, keys: { send: KEY } });
});

afterAll(async () => {
  await Promise.all(openSinks.map((sink) => sink.close()));
  await fake?.stop();
});

async function openSink(credentials: Partial<EventHubsCredentials> = {}, ctx: SinkContext = context) {
  const sink = eventHubsSink.create(
    {
      credentials: { connection_string: fake.connectionString(HUB, 'send', KEY), ...credentials },
      format: 'Json',
    },
    ctx,
  );
  openSinks.push(sink);
  await sink.open();
  return sink;
}

/** Awaits a failure and checks what every failure must satisfy. */
async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a DeliveryError, the call succeeded');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeliveryError);
  const delivery = error as DeliveryError;
  expect(delivery.message).not.toContain(KEY);
  expect(delivery.message).toMatch(/^Event Hubs /);
  return delivery;
}

let nextId = 1_000_000;
/** Events of several endpoints (and organisation-level ones without a key), as the lane hands them over. */
function records(count: number, endpoints: (string | null)[], padding = 0): SinkRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const id = nextId++;
    const key = endpoints[i % endpoints.length] ?? null;
    const eventTypeId = (i % 3) + 1;
    // Unusual spacing and non-ASCII text: the body must arrive exactly as this text's bytes.
    const json = `{"id":${id}, "event_type":{"id":${eventTypeId},"description":"Update location"},"endpoint":{"id":${key ?? 'null'},"name":"Zähler №${i}"},"detail":"${'x'.repeat(padding)}"}`;
    return {
      id,
      topic: 'events',
      partition: 0,
      offset: i,
      timestamp: 1_700_000_000_000 + i,
      key,
      eventTypeId,
      json,
    };
  });
}

function batchOf(recs: SinkRecord[], recordType: SinkBatch['recordType'] = 'events'): SinkBatch {
  return { streamId: 'a1b2c3d4', recordType, bare: false, records: recs };
}

function acceptedById() {
  return new Map(fake.accepted.map((event) => [event.properties.record_id as number, event]));
}

describe('factory', () => {
  test('declares EventHubs, Json and the secret connection string', () => {
    expect(eventHubsSink.connectionType).toBe('EventHubs');
    expect(eventHubsSink.formats).toEqual(['Json']);
    expect(eventHubsSink.secretFields).toEqual(['connection_string']);
  });

  test('its schema accepts emnify credentials and rejects what the sink cannot use', () => {
    const validate = new Ajv({ allErrors: true }).compile(eventHubsSink.credentialsSchema);
    const cs = `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${KEY};EntityPath=hub`;
    expect(validate({ connection_string: cs })).toBe(true);
    expect(validate({ connection_string: cs.replace(';EntityPath=hub', ''), event_hub_name: 'hub' })).toBe(
      true,
    );
    expect(validate({ connection_string: cs, region: 'westeurope' })).toBe(false);
    expect(validate({ connection_string: 'Endpoint=sb://ns.servicebus.windows.net/;EntityPath=hub' })).toBe(
      false,
    );
    expect(validate({})).toBe(false);
  });
});

describe('delivery', () => {
  test('a few hundred records over several endpoints arrive complete, byte for byte, keyed by endpoint', async () => {
    fake.reset();
    const sink = await openSink();
    const endpoints = ['101', '102', '103', '104', '105', null];
    const recs = records(300, endpoints);
    await sink.write(batchOf(recs));

    expect(fake.accepted).toHaveLength(300);
    const byId = acceptedById();
    for (const record of recs) {
      const event = byId.get(record.id);
      expect(event, `record ${record.id}`).toBeDefined();
      expect(event?.body.equals(Buffer.from(record.json, 'utf8'))).toBe(true);
      expect(event?.contentType).toBe('application/json');
      expect(event?.partitionKey).toBe(record.key ?? undefined);
      expect(event?.properties).toEqual({
        record_type: 'events',
        event_type_id: record.eventTypeId,
        record_id: record.id,
        stream_id: 'a1b2c3d4',
      });
    }
    // One key per transfer, and each endpoint's records in their log order.
    for (const key of endpoints) {
      const ids = fake.accepted
        .filter((e) => e.partitionKey === (key ?? undefined))
        .map((e) => e.properties.record_id);
      const expected = recs.filter((r) => r.key === key).map((r) => r.id);
      expect(ids).toEqual(expected);
    }
    expect(fake.transfers).toBe(endpoints.length);
  });

  test('usage records carry record_type usage and no event_type_id', async () => {
    fake.reset();
    const sink = await openSink();
    const recs = records(3, ['7']).map(({ eventTypeId: _, ...record }) => record);
    await sink.write(batchOf(recs, 'usage'));
    expect(fake.accepted.map((e) => e.properties)).toEqual(
      recs.map((r) => ({ record_type: 'usage', record_id: r.id, stream_id: 'a1b2c3d4' })),
    );
  });

  test("a hub with a small max_message_size makes the sink split each endpoint's records", async () => {
    fake.reset();
    fake.maxMessageSize = 2048;
    try {
      const sink = await openSink(); // the link learns max_message_size when it attaches
      const recs = records(60, ['201', '202'], 150);
      await sink.write(batchOf(recs));
      expect(fake.accepted).toHaveLength(60);
      expect(fake.transfers).toBeGreaterThan(4); // ~300-byte events, at most 2048 bytes per transfer
      for (const key of ['201', '202']) {
        const ids = fake.accepted.filter((e) => e.partitionKey === key).map((e) => e.properties.record_id);
        expect(ids).toEqual(recs.filter((r) => r.key === key).map((r) => r.id));
      }

      const transfers = fake.transfers;
      const tooBig = records(1, ['203'], 3000);
      const error = await failure(sink.write(batchOf([...records(2, ['203']), ...tooBig])));
      expect(error.kind).toBe('permanent');
      expect(error.code).toBe('SINK_EVENTHUBS_RECORD_TOO_LARGE');
      expect(error.message).toContain(String(tooBig[0]?.id));
      expect(fake.transfers).toBe(transfers); // nothing was sent
    } finally {
      fake.maxMessageSize = 1024 * 1024;
    }
  });
});

describe('failures', () => {
  test('server-busy → retriable, waiting 4 s; the next attempt goes through', async () => {
    fake.reset();
    const sink = await openSink();
    const recs = records(10, ['301']);
    fake.rejectNext(1, 'com.microsoft:server-busy');
    const error = await failure(sink.write(batchOf(recs)));
    expect(error).toMatchObject({
      kind: 'retriable',
      code: 'SINK_EVENTHUBS_SERVER_BUSY',
      status: 'ServerBusyError',
      retryAfterMs: 4000,
    });
    expect(fake.accepted).toHaveLength(0);
    await sink.write(batchOf(recs));
    expect(fake.accepted).toHaveLength(10);
  });

  test('some transfers rejected → partial, listing exactly the records of those transfers', async () => {
    fake.reset();
    const sink = await openSink();
    const recs = records(60, ['401', '402', '403', '404', '405', '406']);
    fake.rejectNext(2, 'com.microsoft:server-busy');
    const error = await failure(sink.write(batchOf(recs)));
    expect(error.kind).toBe('partial');
    expect(error.code).toBe('SINK_EVENTHUBS_PARTIAL');
    const rejectedIds = new Set(fake.rejected.map((e) => e.properties.record_id));
    expect(rejectedIds.size).toBe(20);
    const expected = recs.flatMap((r, index) => (rejectedIds.has(r.id) ? [index] : []));
    expect(error.failed).toEqual(expected);
    expect(fake.accepted).toHaveLength(40);
  });

  test("a rejected batch stops the rest of its endpoint's batches, so they never arrive out of order", async () => {
    fake.reset();
    fake.maxMessageSize = 2048;
    try {
      const sink = await openSink();
      const recs = records(40, ['501', '502'], 150);
      fake.rejectNext(1, 'com.microsoft:server-busy', { partitionKey: '502' });
      const error = await failure(sink.write(batchOf(recs)));
      expect(error.kind).toBe('partial');
      // The first 502 batch was rejected; the later 502 batches were never sent.
      expect(error.failed).toEqual(recs.flatMap((r, index) => (r.key === '502' ? [index] : [])));
      expect(fake.accepted.every((e) => e.partitionKey === '501')).toBe(true);
      expect(fake.accepted).toHaveLength(20);
    } finally {
      fake.maxMessageSize = 1024 * 1024;
    }
  });

  test('unauthorized-access on send → permanent', async () => {
    fake.reset();
    const sink = await openSink();
    fake.rejectNext(1, 'amqp:unauthorized-access', {
      description: "Unauthorized access. 'Send' claim(s) are required.",
    });
    const error = await failure(sink.write(batchOf(records(5, ['601']))));
    expect(error).toMatchObject({ kind: 'permanent', code: 'SINK_EVENTHUBS_UNAUTHORIZED' });
    expect(error.message).toContain("'Send' claim(s) are required");
  });

  test('a missing hub fails at open, and a hub deleted later fails the write; both permanent', async () => {
    const atOpen = await failure(
      openSink({ connection_string: fake.connectionString('nohub', 'send', KEY) }),
    );
    expect(atOpen).toMatchObject({ kind: 'permanent', code: 'SINK_EVENTHUBS_HUB_NOT_FOUND' });
    expect(atOpen.message).toContain('nohub');

    fake.reset();
    const sink = await openSink({ connection_string: fake.connectionString('doomed', 'send', KEY) });
    fake.hubs.delete('doomed');
    const atWrite = await failure(sink.write(batchOf(records(5, ['701']))));
    expect(atWrite).toMatchObject({ kind: 'permanent', code: 'SINK_EVENTHUBS_HUB_NOT_FOUND' });
    expect(atWrite.message).toContain('doomed');
  });

  test('a wrong key fails at open as permanent, and the key appears in no message', async () => {
    const wrongKey = 'd3Jvbmcta2V5LXRoYXQtbXVzdC1ub3QtbGVhaw==';
    const error = await failure(
      openSink({ connection_string: fake.connectionString(HUB, 'send', wrongKey) }),
    );
    expect(error).toMatchObject({ kind: 'permanent', code: 'SINK_EVENTHUBS_UNAUTHORIZED' });
    expect(error.message).toContain('InvalidSignature');
    expect(error.message).not.toContain(wrongKey);
    expect(String((error.cause as Error).message)).not.toContain(wrongKey);
  });

  test('bad credentials are a permanent config error before any connection, without the key', async () => {
    const noHub = fake.connectionString(undefined, 'send', KEY);
    const missing = await failure(openSink({ connection_string: noHub }));
    expect(missing).toMatchObject({ kind: 'permanent', code: 'SINK_EVENTHUBS_CONFIG' });
    const mismatch = await failure(openSink({ event_hub_name: 'other' }));
    expect(mismatch).toMatchObject({ kind: 'permanent', code: 'SINK_EVENTHUBS_CONFIG' });
    const malformed = await failure(
      openSink({ connection_string: `Endpoint=sb://x;SharedAccessKey=${KEY};oops` }),
    );
    expect(malformed.code).toBe('SINK_EVENTHUBS_CONFIG');

    // A namespace-level policy names the hub in event_hub_name instead.
    fake.reset();
    const sink = await openSink({ connection_string: noHub, event_hub_name: HUB });
    await sink.write(batchOf(records(2, ['801'])));
    expect(fake.accepted).toHaveLength(2);
  });

  test('an aborted write is retriable', async () => {
    const sink = await openSink();
    const error = await failure(sink.write(batchOf(records(2, ['901'])), AbortSignal.abort()));
    expect(error).toMatchObject({ kind: 'retriable', code: 'SINK_EVENTHUBS_ABORTED' });
  });

  test('the namespace going away → retriable at write and at open; the same sink recovers when it is back', async () => {
    const doomed = await FakeEventHubs.start({ keys: { send: KEY } });
    const port = doomed.port;
    const quick: SinkContext = { ...context, timeoutMs: 1500 };
    const connection_string = doomed.connectionString(HUB, 'send', KEY);
    const sink = await openSink({ connection_string }, quick);
    await doomed.stop();
    const atWrite = await failure(sink.write(batchOf(records(3, ['1001']))));
    expect(atWrite.kind).toBe('retriable');
    expect(['SINK_EVENTHUBS_TIMEOUT', 'SINK_EVENTHUBS_CONNECTION']).toContain(atWrite.code);

    const atOpen = await failure(openSink({ connection_string }, quick));
    expect(atOpen).toMatchObject({
      kind: 'retriable',
      code: 'SINK_EVENTHUBS_CONNECTION',
      status: 'ECONNREFUSED',
    });

    // The lane's next attempt, on the same sink, once the namespace answers again.
    const back = await FakeEventHubs.start({ keys: { send: KEY }, port });
    try {
      const recs = records(3, ['1001']);
      await sink.write(batchOf(recs));
      expect(back.accepted.map((e) => e.properties.record_id)).toEqual(recs.map((r) => r.id));
    } finally {
      await back.stop();
    }
  });
});
