/**
 * The management API over real sockets: a real engine data directory (a small replay), a
 * webhook receiver, fastify listening on 127.0.0.1. Authentication, application tokens,
 * the data_stream routes end to end, tenant isolation on every route, a fuzz run of
 * malformed requests (never a 5xx), rate limiting, the OpenAPI document.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkFactory } from '../connectors/sinks/types.js';
import { webhookSink } from '../connectors/sinks/webhook/index.js';
import { buildApi } from '../src/api/server.js';
import { TokenStore } from '../src/api/tokens.js';
import { UserStore } from '../src/api/users.js';
import type { EmbeddedEngine } from '../src/engine/engine.js';
import { topicValues } from '../src/engine/topic-values.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { StreamManager } from '../src/streams/manager.js';
import { Receiver, replayedEngine } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-api-'));
const reference = generateReferenceData({ devices: 200, seed: 5 });
const [orgA, orgB] = reference.organisations.map((o) => o.id) as [number, number];
const SECRET_HEADER = 'Authorization:Bearer s3cret-token';
const METRICS_TOKEN = 'metrics-token-for-tests';
const sinks = new Map<string, SinkFactory>([
  [webhookSink.connectionType, webhookSink as unknown as SinkFactory],
]);

let engine: EmbeddedEngine;
let streams: StreamManager;
let tokens: TokenStore;
let app: FastifyInstance;
let base = '';
let receiver: Receiver;
let usageOfA: number[];
let clock = Date.now();
const logLines: string[] = [];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; contentType?: string; url?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  // undici's request, not fetch: the fuzz run sends bodies with GET too.
  const response = await request(`${options.url ?? base}${path}`, {
    method: method as 'GET',
    headers,
    body: body ?? null,
  });
  const text = await response.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text, json };
}

async function authToken(secret: string): Promise<string> {
  const answer = await call('POST', '/api/v1/authenticate', { body: { application_token: secret } });
  expect(answer.status).toBe(200);
  return (answer.json as { auth_token: string }).auth_token;
}

const webhookBody = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  data_stream_type: { id: 1 },
  destination: {
    connection_type: 'RestAPI',
    credentials: { url: receiver.url, headers: [SECRET_HEADER], signing_secret: 'sixteen-chars-or-more' },
  },
  start: 'earliest',
  ...extra,
});

let secretA: string;
let secretB: string;
let jwtA: string;
let jwtB: string;
let users: UserStore;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  engine = await replayedEngine(dir, reference, { seed: 5, hours: 4 });
  usageOfA = [];
  for (const topic of engine.streamSources().usage)
    for await (const v of topicValues(topic)) {
      const u = JSON.parse(v) as { id: number; organisation: { id: number } };
      if (u.organisation.id === orgA) usageOfA.push(u.id);
    }
  streams = new StreamManager({
    dir: join(dir, 'streams'),
    sources: engine.streamSources(),
    cursors: engine.log.cursors,
    sinks,
    retry: { minDelayMs: 10, maxDelayMs: 50, maxElapsedMs: 1500 },
    lingerMs: 30,
    pollMs: 10,
    timeoutMs: 2000,
  });
  tokens = new TokenStore(join(dir, 'api', 'tokens.json'));
  users = new UserStore(join(dir, 'api', 'users.json'), () => clock);
  await users.add(orgA, 'alice@example.com', PASSWORD);
  receiver = new Receiver();
  await receiver.start();
  app = await buildApi({
    streams,
    tokens,
    users,
    jwtSecret: 'a-test-secret-of-at-least-32-bytes!!',
    now: () => clock,
    rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
    metricsToken: METRICS_TOKEN,
    stages: () => engine.stageCounts(),
    connectionTypes: [{ type: 'RestAPI', formats: ['Json'] }],
    logger: {
      level: 'info',
      stream: new Writable({
        write(chunk, _encoding, callback) {
          logLines.push(String(chunk));
          callback();
        },
      }),
    },
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  secretA = (await tokens.create(orgA, 'org A')).secret;
  secretB = (await tokens.create(orgB, 'org B')).secret;
  jwtA = await authToken(secretA);
  jwtB = await authToken(secretB);
}, 180_000);

afterAll(async () => {
  await app?.close();
  await streams?.close();
  await receiver?.stop();
  await engine?.close();
});

describe('authentication and application tokens', () => {
  it('exchanges an application token for a 240-minute JWT with the organisation and token id', async () => {
    const [, payload] = jwtA.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    expect(claims.organisation_id).toBe(orgA);
    expect(typeof claims.token_id).toBe('string');
    expect(claims.exp - claims.iat).toBe(240 * 60);
    expect((await call('GET', '/api/v2/data_stream', { token: jwtA })).status).toBe(200);

    // Past its 240 minutes the auth_token is refused.
    const saved = clock;
    clock += 241 * 60_000;
    expect((await call('GET', '/api/v2/data_stream', { token: jwtA })).status).toBe(401);
    clock = saved;
  });

  it('refuses wrong, malformed and missing credentials with 401 or a 4xx naming the field', async () => {
    const wrong = await call('POST', '/api/v1/authenticate', {
      body: { application_token: `${secretA.slice(0, -4)}AAAA` },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ error_code: 401, error_token: 'unauthorized' });
    expect((await call('POST', '/api/v1/authenticate', { body: { application_token: 'nope' } })).status).toBe(
      401,
    );
    expect(
      (await call('POST', '/api/v1/authenticate', { body: { username: 'a', password: 'b' } })).status,
    ).toBe(401);
    const missing = await call('POST', '/api/v1/authenticate', { body: {} });
    expect(missing.status).toBe(422);
    expect((missing.json as { problems: string[] }).problems).toEqual([
      'body: give one of: application_token; username and password; refresh_token',
    ]);
    expect((await call('POST', '/api/v1/authenticate', { body: { username: 'a' } })).status).toBe(422);
    const typed = await call('POST', '/api/v1/authenticate', { body: { application_token: 5 } });
    expect(typed.status).toBe(422);
    expect(typed.text).toContain('application_token');
    // A forged JWT (signed with another key) and garbage are refused.
    const [h, p] = jwtA.split('.') as [string, string];
    expect((await call('GET', '/api/v2/data_stream', { token: `${h}.${p}.forged` })).status).toBe(401);
    expect((await call('GET', '/api/v2/data_stream', { token: 'garbage' })).status).toBe(401);
  });

  it('creates, lists and revokes application tokens per organisation; a revoked token’s JWTs stop working', async () => {
    const created = await call('POST', '/api/v1/application_token', {
      token: jwtA,
      body: { description: 'ci' },
    });
    expect(created.status).toBe(201);
    const { id, application_token } = created.json as { id: string; application_token: string };
    expect(application_token).toMatch(/^ds_[0-9a-f]{16}_/);
    expect(created.headers.location).toBe(`/api/v1/application_token/${id}`);

    const list = await call('GET', '/api/v1/application_token', { token: jwtA });
    expect(list.status).toBe(200);
    expect((list.json as { id: string }[]).map((t) => t.id)).toContain(id);
    expect(list.text).not.toContain(application_token.slice(20));
    expect(list.text).not.toMatch(/salt|hash/);
    // Only hashes on disk.
    expect(readFileSync(join(dir, 'api', 'tokens.json'), 'utf8')).not.toContain(application_token.slice(20));
    // Organisation B neither sees nor revokes it.
    const listB = await call('GET', '/api/v1/application_token', { token: jwtB });
    expect((listB.json as { id: string }[]).map((t) => t.id)).not.toContain(id);
    expect((await call('DELETE', `/api/v1/application_token/${id}`, { token: jwtB })).status).toBe(404);

    const jwt = await authToken(application_token);
    expect((await call('GET', '/api/v2/data_stream', { token: jwt })).status).toBe(200);
    expect((await call('DELETE', `/api/v1/application_token/${id}`, { token: jwtA })).status).toBe(204);
    expect((await call('GET', '/api/v2/data_stream', { token: jwt })).status).toBe(401);
    expect(
      (await call('POST', '/api/v1/authenticate', { body: { application_token: application_token } })).status,
    ).toBe(401);
    expect((await call('DELETE', `/api/v1/application_token/${id}`, { token: jwtA })).status).toBe(404);
  });

  it('logs a user in with username and password: an auth_token and a refresh_token, which gets new auth_tokens', async () => {
    const login = await call('POST', '/api/v1/authenticate', {
      body: { username: 'alice@example.com', password: PASSWORD },
    });
    expect(login.status).toBe(200);
    const { auth_token, refresh_token } = login.json as { auth_token: string; refresh_token: string };
    expect(refresh_token).toMatch(/^dsr_[0-9a-f]{16}_/);
    const claims = JSON.parse(Buffer.from(auth_token.split('.')[1] as string, 'base64url').toString('utf8'));
    expect(claims.organisation_id).toBe(orgA);
    expect((await call('GET', '/api/v2/data_stream', { token: auth_token })).status).toBe(200);
    const refreshed = await call('POST', '/api/v1/authenticate', { body: { refresh_token } });
    expect(refreshed.status).toBe(200);
    expect(Object.keys(refreshed.json as object)).toEqual(['auth_token']);
    // Neither the password nor the refresh secret is on disk.
    const onDisk = readFileSync(join(dir, 'api', 'users.json'), 'utf8');
    expect(onDisk).not.toContain(PASSWORD);
    expect(onDisk).not.toContain(refresh_token.slice(21));

    // A wrong password and an unknown user get the same answer.
    const wrong = await call('POST', '/api/v1/authenticate', {
      body: { username: 'alice@example.com', password: 'x' },
    });
    const unknown = await call('POST', '/api/v1/authenticate', {
      body: { username: 'bob@example.com', password: 'x' },
    });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.text).toBe(unknown.text);
    expect(
      (
        await call('POST', '/api/v1/authenticate', {
          body: { refresh_token: `${refresh_token.slice(0, -4)}AAAA` },
        })
      ).status,
    ).toBe(401);

    // A refresh token runs out after 30 days.
    const saved = clock;
    clock += 31 * 86_400_000;
    expect((await call('POST', '/api/v1/authenticate', { body: { refresh_token } })).status).toBe(401);
    clock = saved;

    // Removing the user ends its auth_tokens and refresh tokens at once.
    const fresh = (refreshed.json as { auth_token: string }).auth_token;
    expect(await users.remove(orgB, 'alice@example.com')).toBe(false);
    expect(await users.remove(orgA, 'alice@example.com')).toBe(true);
    expect((await call('GET', '/api/v2/data_stream', { token: fresh })).status).toBe(401);
    expect((await call('POST', '/api/v1/authenticate', { body: { refresh_token } })).status).toBe(401);
    await users.add(orgA, 'alice@example.com', PASSWORD);
  });

  it('answers 401 without an Authorization header on every authenticated route', async () => {
    for (const [method, path] of routes('abcd1234'))
      expect({ method, path, status: (await call(method, path, { body: {} })).status }).toEqual({
        method,
        path,
        status: 401,
      });
  });
});

/** Every authenticated route, with a stream id where it takes one. */
function routes(id: string): [string, string][] {
  return [
    ['GET', '/api/v1/application_token'],
    ['POST', '/api/v1/application_token'],
    ['DELETE', '/api/v1/application_token/0123456789abcdef'],
    ['GET', '/api/v2/data_stream'],
    ['POST', '/api/v2/data_stream'],
    ['GET', '/api/v2/data_stream/status'],
    ['GET', '/api/v2/data_stream/type'],
    ['GET', '/api/v2/data_stream/connection_type'],
    ['GET', '/api/v2/data_stream/filter_field_type'],
    ...streamRoutes(id),
  ];
}

function streamRoutes(id: string): [string, string][] {
  return [
    ['GET', `/api/v2/data_stream/${id}`],
    ['PATCH', `/api/v2/data_stream/${id}`],
    ['DELETE', `/api/v2/data_stream/${id}`],
    ['POST', `/api/v2/data_stream/${id}/restart`],
    ['GET', `/api/v2/data_stream/${id}/status`],
    ['POST', `/api/v2/data_stream/${id}/redrive`],
    ['POST', `/api/v2/data_stream/${id}/replay`],
  ];
}

describe('data streams', () => {
  it('create -> delivered to the receiver -> status -> pause -> restart -> replay -> delete, credentials masked throughout', async () => {
    const answers: Answer[] = [];
    const keep = (a: Answer) => {
      answers.push(a);
      return a;
    };
    const created = keep(
      await call('POST', '/api/v2/data_stream', {
        token: jwtA,
        body: webhookBody('usage to webhook', {
          destination: {
            connection_type: 'RestAPI',
            credentials: {
              url: receiver.url,
              headers: [SECRET_HEADER],
              signing_secret: 'sixteen-chars-or-more',
              size: 250,
            },
          },
        }),
      }),
    );
    expect(created.status).toBe(201);
    const stream = created.json as { id: string; destination: { credentials: Record<string, unknown> } };
    expect(created.headers.location).toBe(`/api/v2/data_stream/${stream.id}`);
    expect(stream.destination.credentials).toEqual({
      url: receiver.url,
      headers: ['Authorization:*****'],
      signing_secret: '*****',
      size: 250,
    });

    await streams.caughtUp(stream.id);
    expect(new Set(receiver.records().map((r) => r.id))).toEqual(new Set(usageOfA));
    expect(receiver.requests[0]?.headers.authorization).toBe('Bearer s3cret-token');

    const status = keep(await call('GET', `/api/v2/data_stream/${stream.id}/status`, { token: jwtA }));
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({
      stream: { id: stream.id, status: { id: 1, description: 'Running' } },
      metrics: { delivered_records: usageOfA.length },
      lag: { records: 0 },
      dead_lettered_batches: 0,
    });

    const read = keep(await call('GET', `/api/v2/data_stream/${stream.id}`, { token: jwtA }));
    expect(read.status).toBe(200);
    const list = keep(await call('GET', '/api/v2/data_stream', { token: jwtA }));
    expect((list.json as { id: string }[]).map((s) => s.id)).toContain(stream.id);

    const paused = keep(
      await call('PATCH', `/api/v2/data_stream/${stream.id}`, { token: jwtA, body: { status: { id: 2 } } }),
    );
    expect(paused.status).toBe(202);
    expect(paused.json).toMatchObject({ status: { id: 2, description: 'Paused' } });

    const invalid = await call('PATCH', `/api/v2/data_stream/${stream.id}`, {
      token: jwtA,
      body: { name: '', destination: { connection_type: 'RestAPI', credentials: { url: 'ftp://x' } } },
    });
    expect(invalid.status).toBe(422);
    expect(invalid.json).toMatchObject({ error_code: 422, error_token: 'invalid_data_stream' });
    expect((invalid.json as { problems: string[] }).problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^name:/),
        expect.stringMatching(/^destination\.credentials\.url:/),
      ]),
    );

    const restarted = keep(await call('POST', `/api/v2/data_stream/${stream.id}/restart`, { token: jwtA }));
    expect(restarted.status).toBe(202);
    expect(restarted.json).toMatchObject({ status: { id: 1, description: 'Running' } });
    const skipping = keep(
      await call('POST', `/api/v2/data_stream/${stream.id}/restart`, {
        token: jwtA,
        body: { skip_failed: true },
      }),
    );
    expect(skipping.status).toBe(202);

    const before = receiver.records().length;
    const replayed = keep(
      await call('POST', `/api/v2/data_stream/${stream.id}/replay`, {
        token: jwtA,
        body: { from: '2026-01-05T00:00:00Z', until: '2026-01-06T00:00:00Z' },
      }),
    );
    expect(replayed.status).toBe(200);
    expect(replayed.json).toMatchObject({ records: usageOfA.length, failed: 0 });
    expect(receiver.records().length).toBe(before + usageOfA.length);
    const backwards = await call('POST', `/api/v2/data_stream/${stream.id}/replay`, {
      token: jwtA,
      body: { from: '2026-01-06T00:00:00Z', until: '2026-01-05T00:00:00Z' },
    });
    expect(backwards.status).toBe(422);
    expect(backwards.text).toContain('until: must be after from');

    const redriven = keep(await call('POST', `/api/v2/data_stream/${stream.id}/redrive`, { token: jwtA }));
    expect(redriven.json).toEqual({ batches: 0, records: 0, failed: 0 });

    const metrics = await call('GET', '/metrics', { token: METRICS_TOKEN });
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toContain(
      `data_streamer_stream_delivered_records_total{stream_id="${stream.id}",organisation_id="${orgA}"} ${usageOfA.length}`,
    );
    expect(metrics.text).toContain(
      `data_streamer_stream_failed_attempts_total{stream_id="${stream.id}",organisation_id="${orgA}",kind="retriable"} 0`,
    );
    expect(metrics.text).toContain(
      `data_streamer_stream_lag_records{stream_id="${stream.id}",organisation_id="${orgA}"} 0`,
    );
    const labels = `stream_id="${stream.id}",organisation_id="${orgA}"`;
    const value = (line: string) =>
      Number(new RegExp(`^${line.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics.text)?.[1]);
    // The delivery histogram: cumulative buckets ending in +Inf = count.
    const count = value(`data_streamer_stream_delivery_seconds_count{${labels}}`);
    expect(count).toBeGreaterThan(0);
    expect(value(`data_streamer_stream_delivery_seconds_bucket{${labels},le="+Inf"}`)).toBe(count);
    expect(value(`data_streamer_stream_delivery_seconds_bucket{${labels},le="60"}`)).toBeLessThanOrEqual(
      count,
    );
    expect(value(`data_streamer_stream_lag_seconds{${labels}}`)).toBe(0);
    // The engine's stages: what the replay folded and stored, and what each output topic holds.
    const stages = await engine.stageCounts();
    expect(stages.processed).toBeGreaterThan(0);
    expect(value('data_streamer_engine_processed_records_total')).toBe(stages.processed);
    expect(value('data_streamer_storage_inserted_rows_total')).toBe(stages.storedRows);
    expect(value('data_streamer_engine_output_records{topic="usage"}')).toBeGreaterThanOrEqual(
      usageOfA.length,
    );
    expect(value('data_streamer_engine_dead_letters')).toBe(stages.outputs['dead-letters']);
    expect((await call('GET', '/metrics', { token: jwtA })).status).toBe(401);
    expect((await call('GET', '/metrics')).status).toBe(401);

    // Lookups as emnify has them.
    expect((await call('GET', '/api/v2/data_stream/status', { token: jwtA })).json).toEqual([
      { id: 1, description: 'Running' },
      { id: 2, description: 'Paused' },
      { id: 3, description: 'Error' },
      { id: 4, description: 'Pending' },
    ]);
    expect((await call('GET', '/api/v2/data_stream/type', { token: jwtA })).json).toEqual([
      { id: 1, description: 'Usage' },
      { id: 2, description: 'Events' },
    ]);

    const deleted = await call('DELETE', `/api/v2/data_stream/${stream.id}`, { token: jwtA });
    expect(deleted.status).toBe(202);
    expect((await call('GET', `/api/v2/data_stream/${stream.id}`, { token: jwtA })).status).toBe(404);

    for (const answer of answers) {
      expect(answer.text).not.toContain('s3cret');
      expect(answer.text).not.toContain('sixteen-chars');
    }
    const logs = logLines.join('');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of ['s3cret', 'sixteen-chars', jwtA, secretA, PASSWORD])
      expect(logs).not.toContain(secret);
  });

  it('isolates organisations on every route: B gets 404 for A’s streams and never A’s data', async () => {
    const created = await call('POST', '/api/v2/data_stream', {
      token: jwtA,
      body: webhookBody('A-private-stream', { status: { id: 2 } }),
    });
    expect(created.status).toBe(201);
    const id = (created.json as { id: string }).id;
    const bodies: Record<string, unknown> = {
      PATCH: { name: 'taken over by B', status: { id: 1 } },
      POST: {},
    };
    for (const [method, path] of streamRoutes(id)) {
      const body = path.endsWith('/replay')
        ? { from: '2026-01-05T00:00:00Z', until: '2026-01-06T00:00:00Z' }
        : bodies[method];
      const answer = await call(method, path, { token: jwtB, ...(body ? { body } : {}) });
      expect({ method, path, status: answer.status }).toEqual({ method, path, status: 404 });
      expect(answer.json).toMatchObject({ error_code: 404, error_token: 'not_found' });
      expect(answer.text).not.toContain('A-private-stream');
      expect(answer.text).not.toContain(receiver.url);
      // The answer is the same as for an id that exists nowhere: B learns nothing.
      const nowhere = await call(method, path.replace(id, 'ffffffff'), {
        token: jwtB,
        ...(body ? { body } : {}),
      });
      expect(nowhere.status).toBe(404);
      expect(nowhere.text.replace('ffffffff', id)).toBe(answer.text);
    }
    expect((await call('GET', '/api/v2/data_stream', { token: jwtB })).json).toEqual([]);
    // A's stream is untouched.
    const after = await call('GET', `/api/v2/data_stream/${id}`, { token: jwtA });
    expect(after.json).toMatchObject({ name: 'A-private-stream', status: { id: 2 } });
    // B's own stream is B's alone.
    const own = await call('POST', '/api/v2/data_stream', {
      token: jwtB,
      body: webhookBody('B-stream', { status: { id: 2 } }),
    });
    expect(own.status).toBe(201);
    const listA = (await call('GET', '/api/v2/data_stream', { token: jwtA })).json as { name: string }[];
    expect(listA.map((s) => s.name)).not.toContain('B-stream');
    const listB = (await call('GET', '/api/v2/data_stream', { token: jwtB })).json as { name: string }[];
    expect(listB.map((s) => s.name)).toEqual(['B-stream']);
  });
});

/** A small deterministic PRNG: the fuzz run is the same every time. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};

const ATOMS: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  '',
  'x',
  'x'.repeat(100_000),
  '\u0000\uffff💥',
  [],
  [null],
  {},
  { __proto__: { admin: true } },
  JSON.parse('{"__proto__":{"polluted":1}}'),
  { constructor: { prototype: { polluted: 1 } } },
  nested(20),
  nested(200),
  '2026-01-05T00:00:00Z',
  { id: 1 },
  { id: 'x' },
  [1, 2, 3],
];

const FIELDS = [
  'name',
  'data_stream_type',
  'destination',
  'filters',
  'status',
  'start',
  'skip_failed',
  'from',
  'until',
  'description',
  'application_token',
  'username',
  'password',
  'refresh_token',
];

const RAW_TEXTS = ['{', '{"a":}', "{'a':1}", 'nul', 'undefined', '[1,]', '"\\x"', '{"a":1}}', '\u0000', ' '];

function* malformed(
  rand: () => number,
  count: number,
): Generator<{ raw?: string; body?: unknown; contentType?: string }> {
  const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)] as T;
  for (const atom of ATOMS) yield { body: atom };
  for (const raw of RAW_TEXTS) yield { raw };
  yield { raw: '{"a":1}', contentType: 'text/plain' };
  yield { raw: '<xml/>', contentType: 'application/xml' };
  yield { raw: `${'['.repeat(5000)}${']'.repeat(5000)}` };
  yield { raw: `${'{"a":'.repeat(40)}1${'}'.repeat(40)}` };
  for (let i = 0; i < count; i++) {
    const body: Record<string, unknown> = {};
    const n = 1 + Math.floor(rand() * 4);
    for (let f = 0; f < n; f++) body[pick(FIELDS)] = pick(ATOMS);
    if (rand() < 0.3)
      body.destination = { connection_type: pick(['RestAPI', 'S3', 1, null, 'x']), credentials: pick(ATOMS) };
    if (rand() < 0.2) body.data_stream_type = { id: pick([1, 2, 3, '1', null]) };
    // Never a valid stream body: a name of the wrong type keeps creates failing.
    if (rand() < 0.5) body.name = pick([null, 5, {}, [], '']);
    yield { body };
  }
}

describe('fuzz', () => {
  it('never answers a malformed request with a 5xx, on any route', async () => {
    const target = async () =>
      (
        (
          await call('POST', '/api/v2/data_stream', {
            token: jwtA,
            body: webhookBody('fuzz target', { status: { id: 2 } }),
          })
        ).json as { id: string }
      ).id;
    const rand = prng(42);
    const counts = new Map<number, number>();
    const badIds = [
      'ffffffff',
      '..',
      '%00',
      '%2e%2e%2f',
      'a'.repeat(300),
      '%F0%9F%92%A5',
      'null',
      '-1',
      '%20',
      'status',
    ];
    const operations = (id: string): [string, string][] => [
      ['POST', '/api/v1/authenticate'],
      ...routes(id),
      ['GET', '/health'],
      ['GET', '/ready'],
      ['GET', '/metrics'],
    ];
    let total = 0;
    for (let i = 0; i < operations('x').length; i++) {
      // A stream of its own per route: a DELETE fuzzed before does not leave the others only 404s.
      const id = await target();
      const [method, path] = operations(id)[i] as [string, string];
      let refused = 0;
      let sent = 0;
      for (const request of malformed(rand, 200)) {
        const answer = await call(method, path, { token: jwtA, ...request });
        total++;
        sent++;
        if (answer.status >= 400) refused++;
        counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1);
        if (answer.status >= 500)
          throw new Error(
            `${method} ${path} ${JSON.stringify(request).slice(0, 200)} -> ${answer.status} ${answer.text}`,
          );
        if (answer.status >= 400) expect(answer.json).toMatchObject({ error_code: answer.status });
        // A malformed body never creates a stream.
        if (method === 'POST' && path === '/api/v2/data_stream') expect(answer.status).not.toBe(201);
      }
      // Routes that take a body refuse nearly all of these: the run exercised their validation.
      if (method === 'POST' || method === 'PATCH')
        expect(refused / sent, `${method} ${path}`).toBeGreaterThan(0.8);
      for (const bad of badIds) {
        const answer = await call(method, path.replace(id, bad), { token: jwtA, body: {} });
        total++;
        counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1);
        if (answer.status >= 500)
          throw new Error(`${method} ${path.replace(id, bad)} -> ${answer.status} ${answer.text}`);
      }
    }
    expect(total).toBeGreaterThan(4500);
    expect([...counts.keys()].every((s) => s < 500)).toBe(true);
  }, 300_000);
});

describe('rate limiting, operations and the OpenAPI document', () => {
  it('limits requests per token: one token over its limit does not hold back another', async () => {
    const limited = await buildApi({
      streams,
      tokens,
      jwtSecret: 'another-test-secret-of-32-bytes-at-least',
      rateLimit: { max: 3, timeWindowMs: 60_000 },
    });
    const url = await limited.listen({ port: 0, host: '127.0.0.1' });
    try {
      const sign = async (secret: string) =>
        (
          (await call('POST', '/api/v1/authenticate', { url, body: { application_token: secret } })).json as {
            auth_token: string;
          }
        ).auth_token;
      const a = await sign(secretA);
      const b = await sign(secretB);
      const statuses = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await call('GET', '/api/v2/data_stream', { url, token: a })).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const refused = await call('GET', '/api/v2/data_stream', { url, token: a });
      expect(refused.json).toMatchObject({ error_code: 429, error_token: 'too_many_requests' });
      expect((await call('GET', '/api/v2/data_stream', { url, token: b })).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('serves /health and /ready, and an OpenAPI document with every route at /api/docs', async () => {
    expect((await call('GET', '/health')).json).toEqual({ status: 'ok' });
    expect((await call('GET', '/ready')).json).toEqual({ status: 'ready' });
    const doc = await call('GET', '/api/docs/json');
    expect(doc.status).toBe(200);
    const spec = doc.json as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(spec.openapi).toMatch(/^3\.1/);
    const expected: Record<string, string[]> = {
      '/api/v1/authenticate': ['post'],
      '/api/v1/application_token': ['get', 'post'],
      '/api/v1/application_token/{id}': ['delete'],
      '/api/v2/data_stream': ['get', 'post'],
      '/api/v2/data_stream/status': ['get'],
      '/api/v2/data_stream/type': ['get'],
      '/api/v2/data_stream/connection_type': ['get'],
      '/api/v2/data_stream/filter_field_type': ['get'],
      '/api/v2/data_stream/{data_stream_id}': ['get', 'patch', 'delete'],
      '/api/v2/data_stream/{data_stream_id}/restart': ['post'],
      '/api/v2/data_stream/{data_stream_id}/status': ['get'],
      '/api/v2/data_stream/{data_stream_id}/redrive': ['post'],
      '/api/v2/data_stream/{data_stream_id}/replay': ['post'],
      '/health': ['get'],
      '/ready': ['get'],
      '/metrics': ['get'],
    };
    for (const [path, methods] of Object.entries(expected))
      expect(Object.keys(spec.paths[path] ?? {}).sort(), path).toEqual(expect.arrayContaining(methods));
    expect(Object.keys(spec.paths).filter((p) => !(p in expected))).toEqual([]);
    const ui = await call('GET', '/api/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toMatch(/swagger/i);
  });
});
