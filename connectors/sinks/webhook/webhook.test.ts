import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv } from 'ajv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryError, type Sink, type SinkBatch, type SinkRecord } from '../types.js';
import { type WebhookCredentials, webhookSink } from './index.js';

/** What the receiver answers a request with, when told to fail it. */
type Plan =
  | {
      kind: 'status';
      status: number;
      headers?: Record<string, string>;
      body?: string | ((r: Received) => string);
    }
  | { kind: 'hang' }
  | { kind: 'reset' };

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  remotePort: number;
}

/** A real HTTP receiver on 127.0.0.1 that records requests and fails the next n on demand. */
class Receiver {
  readonly requests: Received[] = [];
  readonly #plans: Plan[] = [];
  readonly #server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        remotePort: req.socket.remotePort ?? 0,
      };
      this.requests.push(received);
      const plan = this.#plans.shift();
      if (!plan) return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      if (plan.kind === 'hang') return;
      if (plan.kind === 'reset') return req.socket.destroy();
      const body = typeof plan.body === 'function' ? plan.body(received) : (plan.body ?? '');
      res.writeHead(plan.status, plan.headers).end(body);
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${path}`;
  }

  failNext(n: number, plan: Plan): void {
    for (let i = 0; i < n; i++) this.#plans.push(plan);
  }

  reset(): void {
    this.requests.length = 0;
    this.#plans.length = 0;
    this.#server.closeAllConnections();
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0, 789);
const receiver = new Receiver();
const sinks: Sink[] = [];

beforeAll(async () => {
  await receiver.start();
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  receiver.reset();
});
afterAll(async () => {
  await receiver.stop();
});

async function openSink(credentials: Partial<WebhookCredentials> = {}, timeoutMs = 2_000): Promise<Sink> {
  const sink = webhookSink.create(
    { credentials: { url: receiver.url(), ...credentials }, format: 'Json' },
    { organisationId: 42, timeoutMs, now: () => NOW },
  );
  sinks.push(sink);
  await sink.open();
  return sink;
}

// Deliberately not in JSON.stringify's canonical form: the bytes must arrive untouched.
const TEXTS = [
  '{"id":101,"event_type":{"id":3} ,"description":"Update location"}',
  '{ "id": 102, "detail": {"name": "Grüße", "x": 1.50} }',
  '{"id":103,"emoji":"\\ud83d\\udce1"}',
];

function record(i: number): SinkRecord {
  return {
    id: 101 + i,
    topic: 'events-out',
    partition: 2,
    offset: 7000 + i,
    timestamp: NOW - 1000,
    key: '55',
    eventTypeId: 3,
    json: TEXTS[i] as string,
  };
}

function batch(n = 3, bare = false): SinkBatch {
  return {
    streamId: '689d97ba',
    recordType: 'events',
    bare,
    records: Array.from({ length: n }, (_, i) => record(i)),
  };
}

/** The rejection of a write, asserted to be a DeliveryError. */
async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeliveryError);
  return error as DeliveryError;
}

describe('webhook sink: what arrives', () => {
  it('POSTs a batch as a JSON array of the records, byte for byte, with stream and batch headers', async () => {
    const sink = await openSink();
    await sink.write(batch(3));

    expect(receiver.requests).toHaveLength(1);
    const [req] = receiver.requests as [Received];
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hook');
    expect(req.body.equals(Buffer.from(`[${TEXTS.join(',')}]`, 'utf8'))).toBe(true);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['content-length']).toBe(String(req.body.length));
    expect(req.headers['x-data-streamer-stream']).toBe('689d97ba');
    expect(req.headers['x-data-streamer-batch']).toBe('689d97ba-events-out-2-7000');
    expect(req.headers['x-data-streamer-signature']).toBeUndefined();
  });

  it('sends the bare object when the batch is bare (batch size 1)', async () => {
    const sink = await openSink();
    await sink.write(batch(1, true));
    expect(receiver.requests[0]?.body.toString('utf8')).toBe(TEXTS[0]);
  });

  it('wraps a single record in an array when the batch is not bare', async () => {
    const sink = await openSink();
    await sink.write(batch(1, false));
    expect(receiver.requests[0]?.body.toString('utf8')).toBe(`[${TEXTS[0]}]`);
  });

  it.each(['PUT', 'PATCH'] as const)(
    'uses the configured method %s and keeps the query string',
    async (method) => {
      const sink = await openSink({ method, url: receiver.url('/in/data?tenant=7&x=y') });
      await sink.write(batch(2));
      expect(receiver.requests[0]?.method).toBe(method);
      expect(receiver.requests[0]?.url).toBe('/in/data?tenant=7&x=y');
    },
  );

  it('sends the configured headers: name trimmed, value split at the first colon only', async () => {
    const sink = await openSink({
      headers: [
        'Authorization:Basic 0123456789ABCDEF',
        ' X-Callback-Url : https://example.com:8443/cb?a=b:c',
        'X-Empty:',
      ],
    });
    await sink.write(batch(1));
    const headers = receiver.requests[0]?.headers ?? {};
    expect(headers.authorization).toBe('Basic 0123456789ABCDEF');
    expect(headers['x-callback-url']).toBe('https://example.com:8443/cb?a=b:c');
    expect(headers['x-empty']).toBe('');
  });

  it('signs the body with HMAC-SHA256 and the timestamp from the injected clock', async () => {
    const secret = 'whsec_0123456789abcdef';
    const sink = await openSink({ signing_secret: secret });
    await sink.write(batch(3));

    const req = receiver.requests[0] as Received;
    const header = String(req.headers['x-data-streamer-signature']);
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    expect(match).not.toBeNull();
    const [, t, v1] = match as unknown as [string, string, string];
    expect(Number(t)).toBe(Math.floor(NOW / 1000));
    // Verified the way the README tells receivers to: over "<t>.<raw body bytes>".
    const expected = createHmac('sha256', secret).update(`${t}.`).update(req.body).digest();
    expect(timingSafeEqual(expected, Buffer.from(v1, 'hex'))).toBe(true);
    const wrong = createHmac('sha256', 'another-secret-value').update(`${t}.`).update(req.body).digest();
    expect(timingSafeEqual(wrong, Buffer.from(v1, 'hex'))).toBe(false);
  });

  it('reuses one connection for consecutive writes, also after error answers with a body', async () => {
    const sink = await openSink();
    // undici hands a connection back to its pool a tick after the answer ends; the pauses
    // keep this test about body consumption (an unread body would close the connection).
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
    await sink.write(batch(1));
    await settle();
    receiver.failNext(1, { kind: 'status', status: 503, body: 'busy '.repeat(200) });
    await failure(sink.write(batch(1)));
    await settle();
    receiver.failNext(1, { kind: 'status', status: 400, body: 'bad '.repeat(100_000) });
    await failure(sink.write(batch(1)));
    await settle();
    await sink.write(batch(2));
    expect(receiver.requests.map((r) => r.remotePort)).toEqual(
      Array(4).fill(receiver.requests[0]?.remotePort),
    );
  });
});

describe('webhook sink: how failures are classified', () => {
  it('503 is retriable, with the status and the receiver’s text in the message', async () => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'status', status: 503, body: 'maintenance until noon' });
    const error = await failure(sink.write(batch()));
    expect(error.kind).toBe('retriable');
    expect(error.code).toBe('SINK_WEBHOOK_HTTP_5XX');
    expect(error.status).toBe(503);
    expect(error.retryAfterMs).toBeUndefined();
    expect(error.message).toContain(
      `${receiver.url()} answered 503 Service Unavailable: maintenance until noon`,
    );
  });

  it('429 with Retry-After in seconds is retriable with retryAfterMs', async () => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'status', status: 429, headers: { 'Retry-After': '2' } });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code, error.status, error.retryAfterMs]).toEqual([
      'retriable',
      'SINK_WEBHOOK_HTTP_429',
      429,
      2000,
    ]);
  });

  it('Retry-After as an HTTP date is measured from the injected clock', async () => {
    const sink = await openSink();
    const at = new Date(NOW - (NOW % 1000) + 30_000).toUTCString();
    receiver.failNext(1, { kind: 'status', status: 503, headers: { 'Retry-After': at } });
    const error = await failure(sink.write(batch()));
    expect(error.retryAfterMs).toBe(30_000 - (NOW % 1000));
  });

  it('408 is retriable', async () => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'status', status: 408 });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code, error.status]).toEqual(['retriable', 'SINK_WEBHOOK_HTTP_408', 408]);
  });

  it.each([400, 401, 404, 422])('%i is permanent', async (status) => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'status', status, body: '{"error":"nope"}' });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code, error.status]).toEqual(['permanent', 'SINK_WEBHOOK_HTTP_4XX', status]);
    expect(error.message).toContain('{"error":"nope"}');
  });

  it('a redirect is permanent and not followed', async () => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'status', status: 301, headers: { Location: receiver.url('/moved') } });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code, error.status]).toEqual(['permanent', 'SINK_WEBHOOK_HTTP_3XX', 301]);
    expect(error.message).toContain('redirects are not followed');
    expect(receiver.requests.map((r) => r.url)).toEqual(['/hook']);
  });

  it('a closed port is retriable (connection refused)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const sink = await openSink({ url: `http://127.0.0.1:${port}/hook` });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code, error.status]).toEqual([
      'retriable',
      'SINK_WEBHOOK_CONNECTION',
      undefined,
    ]);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('a connection reset before the answer is retriable', async () => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'reset' });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code]).toEqual(['retriable', 'SINK_WEBHOOK_CONNECTION']);
  });

  it('a host name that does not resolve is retriable', async () => {
    const sink = await openSink({ url: 'http://receiver.invalid/hook' });
    const error = await failure(sink.write(batch()));
    expect([error.kind, error.code]).toEqual(['retriable', 'SINK_WEBHOOK_DNS']);
  });

  it('a receiver that never answers is a retriable timeout within timeoutMs', async () => {
    const timeoutMs = 400;
    const sink = await openSink({}, timeoutMs);
    receiver.failNext(1, { kind: 'hang' });
    const started = performance.now();
    const error = await failure(sink.write(batch()));
    const elapsed = performance.now() - started;
    expect([error.kind, error.code]).toEqual(['retriable', 'SINK_WEBHOOK_TIMEOUT']);
    expect(error.message).toContain('400 ms');
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(elapsed).toBeLessThan(timeoutMs + 400);
    // The sink stays usable: the next write goes over a new connection.
    await sink.write(batch(1));
  });

  it('the caller’s signal aborts the attempt as retriable', async () => {
    const sink = await openSink();
    receiver.failNext(1, { kind: 'hang' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(sink.write(batch(), controller.signal));
    expect([error.kind, error.code]).toEqual(['retriable', 'SINK_WEBHOOK_ABORTED']);
  });

  it('never puts a header value, the signing secret or the query string into a message', async () => {
    const secret = 'signing-secret-0123456789';
    const sink = await openSink({
      url: receiver.url('/hook?token=query-token-xyz'),
      headers: ['Authorization:Bearer tok-abc-123', 'X-Api-Key: key-456-def'],
      signing_secret: secret,
    });
    // A careless receiver that echoes the request's headers in its error answer.
    receiver.failNext(1, {
      kind: 'status',
      status: 401,
      body: (r) => `denied: ${JSON.stringify(r.headers)} secret=${secret}`,
    });
    const error = await failure(sink.write(batch()));
    expect(error.kind).toBe('permanent');
    for (const leaked of ['tok-abc-123', 'Bearer tok', 'key-456-def', secret, 'query-token-xyz'])
      expect(error.message).not.toContain(leaked);
    expect(error.message).toContain('denied');
    expect(error.message).toContain('***');
  });

  it('a header that the sink sets itself is a permanent config error, without its value', async () => {
    const sink = webhookSink.create(
      {
        credentials: { url: receiver.url(), headers: ['X-Data-Streamer-Batch:forged-value'] },
        format: 'Json',
      },
      { organisationId: 42, timeoutMs: 1000, now: () => NOW },
    );
    sinks.push(sink);
    const error = await failure(sink.open());
    expect([error.kind, error.code]).toEqual(['permanent', 'SINK_WEBHOOK_CONFIG']);
    expect(error.message).not.toContain('forged-value');
    await failure(sink.write(batch()));
    expect(receiver.requests).toHaveLength(0);
  });

  it('a write after close is refused without a request', async () => {
    const sink = await openSink();
    await sink.close();
    const error = await failure(sink.write(batch()));
    expect(error.code).toBe('SINK_WEBHOOK_CLOSED');
    expect(receiver.requests).toHaveLength(0);
  });
});

describe('webhook sink: factory and credentials schema', () => {
  const validate = new Ajv({ allErrors: true, strict: true }).compile(webhookSink.credentialsSchema);
  const ok = {
    url: 'https://example.com/emnify',
    method: 'PATCH',
    headers: ['Authorization:Basic 0123456789ABCDEF', 'X-Url:https://a.example:8443/x'],
    signing_secret: '0123456789abcdef',
  };

  it('declares what the registry needs', () => {
    expect(webhookSink.connectionType).toBe('RestAPI');
    expect(webhookSink.formats).toEqual(['Json']);
    expect(webhookSink.secretFields).toEqual(['headers', 'signing_secret']);
  });

  it('accepts emnify-style credentials', () => {
    expect(validate(ok)).toBe(true);
    expect(validate({ url: 'http://127.0.0.1:8080' })).toBe(true);
  });

  it.each([
    ['a URL that is not http(s)', { url: 'ftp://example.com/x' }],
    ['a URL that is not a URL', { url: 'example.com/hook' }],
    ['a URL with user:password@', { url: 'https://user:pw@example.com/x' }],
    ['an unknown method', { method: 'GET' }],
    ['a lower-case method', { method: 'post' }],
    ['a header without a colon', { headers: ['Authorization Basic abc'] }],
    ['a header with an invalid name', { headers: ['X Bad Name:1'] }],
    ['a header value with a newline', { headers: ['X-A:1\r\nX-B:2'] }],
    ['a short signing secret', { signing_secret: 'short' }],
    ['an unknown field', { password: 'x' }],
  ])('rejects %s', (_, change) => {
    expect(validate({ ...ok, ...change })).toBe(false);
  });

  it('requires the url', () => {
    const { url: _, ...rest } = ok;
    expect(validate(rest)).toBe(false);
  });
});
