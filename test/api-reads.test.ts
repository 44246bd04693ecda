/**
 * The read routes of the management API (events, usage) over a real socket, against a real
 * engine data directory with two organisations. Every expectation is computed on its own
 * from the engine's output log (topicValues): event pages and filters as the exact JSON
 * text on the log, usage sums with exact decimals (parseDecimal). Tenant isolation and a
 * fuzz run of malformed query strings (4xx naming the parameter, never 5xx).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineDashboardSource } from '../src/api/dashboard/source.js';
import { engineQuotas } from '../src/api/from-engine.js';
import { buildApi } from '../src/api/server.js';
import { TokenStore } from '../src/api/tokens.js';
import { UserStore } from '../src/api/users.js';
import { parseDecimal } from '../src/core/decimal.js';
import type { EmbeddedEngine } from '../src/engine/engine.js';
import { topicValues } from '../src/engine/topic-values.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { StreamManager } from '../src/streams/manager.js';
import { HOUR, replayedEngine, T0 } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-api-reads-'));
const reference = generateReferenceData({ devices: 200, seed: 7 });
const [orgA, orgB] = reference.organisations.map((o) => o.id) as [number, number];

interface LogEvent {
  text: string;
  id: number;
  ms: number;
  type: number;
  severity: number;
  alert: boolean;
  org: number;
  endpoint: number | null;
}
interface LogUsage {
  org: number;
  endpoint: number;
  key: string;
  day: string;
  cost: bigint;
  total: bigint;
  rx: bigint;
  tx: bigint;
}

let engine: EmbeddedEngine;
let streams: StreamManager;
let app: FastifyInstance;
let base = '';
let jwtA = '';
let jwtB = '';
const events: LogEvent[] = [];
const usage: LogUsage[] = [];

async function get(path: string, token?: string) {
  return send('GET', path, token);
}

async function send(method: 'GET' | 'POST' | 'DELETE', path: string, token?: string, body?: unknown) {
  const response = await request(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
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

const newestFirst = (a: LogEvent, b: LogEvent) => b.ms - a.ms || b.id - a.id;
const page = (list: LogEvent[]) => `[${list.map((e) => e.text).join(',')}]`;
const decimalIn = (text: string, field: string): bigint => {
  const m = new RegExp(`"${field}":(-?[0-9]+(?:\\.[0-9]+)?)[,}]`).exec(text);
  if (!m) throw new Error(`no ${field} in ${text.slice(0, 200)}`);
  return parseDecimal(m[1] as string);
};

beforeAll(async () => {
  engine = await replayedEngine(dir, reference, { seed: 7, hours: 4 });
  const sources = engine.streamSources();
  for (const topic of sources.events)
    for await (const text of topicValues(topic)) {
      const e = JSON.parse(text);
      events.push({
        text,
        id: e.id,
        ms: Date.parse(e.timestamp),
        type: e.event_type.id,
        severity: e.event_severity.id,
        alert: e.alert === true,
        org: e.organisation.id,
        endpoint: e.endpoint?.id ?? null,
      });
    }
  for (const topic of sources.usage)
    for await (const text of topicValues(topic)) {
      const u = JSON.parse(text);
      const volume = /"volume":\{([^}]*)\}/.exec(text)?.[1] ?? '';
      const day = new Date(Date.parse(u.end_timestamp)).toISOString().slice(0, 10);
      usage.push({
        org: u.organisation.id,
        endpoint: u.endpoint.id,
        day,
        key: `${day}|${u.tariff.ratezone.id}|${u.traffic_type.id}|${u.currency.code}`,
        cost: decimalIn(text, 'cost'),
        total: decimalIn(`${volume},`, 'total'),
        rx: decimalIn(`${volume},`, 'rx'),
        tx: decimalIn(`${volume},`, 'tx'),
      });
    }
  streams = new StreamManager({
    dir: join(dir, 'streams'),
    sources,
    cursors: engine.log.cursors,
    sinks: new Map(),
  });
  const tokens = new TokenStore(join(dir, 'api', 'tokens.json'));
  app = await buildApi({
    streams,
    tokens,
    store: engine.store,
    connectivity: (id) => engine.connectivityOf(id),
    // Commands are stamped an hour after the replayed traffic.
    quotas: engineQuotas(engine, () => T0 + 5 * HOUR),
    dashboard: engineDashboardSource(engine, streams),
    users: new UserStore(join(dir, 'api', 'users.json')),
    stages: () => engine.stageCounts(),
    metricsToken: 'metrics-token-for-tests',
    jwtSecret: 'a-test-secret-of-at-least-32-bytes!!',
    rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  const jwt = async (org: number) => {
    const secret = (await tokens.create(org, `org ${org}`)).secret;
    const r = await request(`${base}/api/v1/authenticate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ application_token: secret }),
    });
    return ((await r.body.json()) as { auth_token: string }).auth_token;
  };
  jwtA = await jwt(orgA);
  jwtB = await jwt(orgB);
}, 180_000);

afterAll(async () => {
  await app?.close();
  await streams?.close();
  await engine?.close();
});

const ofA = () => events.filter((e) => e.org === orgA).sort(newestFirst);

describe('GET /api/v1/event', () => {
  it('pages the organisation’s events newest first, exactly as on the log, with X-Total-Count', async () => {
    const all = ofA();
    expect(all.length).toBeGreaterThan(250);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    const first = await get('/api/v1/event', jwtA);
    expect(first.status).toBe(200);
    expect(first.headers['x-total-count']).toBe(String(all.length));
    expect(first.text).toBe(page(all.slice(0, 100)));
    // Every page of 97 together is the whole list, once, in order.
    const pages = Math.ceil(all.length / 97);
    expect((await get('/api/v1/event?per_page=97', jwtA)).headers['x-total-pages']).toBe(String(pages));
    const seen: LogEvent[] = [];
    for (let p = 1; p <= pages; p++) {
      const r = await get(`/api/v1/event?per_page=97&page=${p}`, jwtA);
      expect(r.headers['x-current-page']).toBe(String(p));
      expect(r.text).toBe(page(all.slice((p - 1) * 97, p * 97)));
      seen.push(...all.slice((p - 1) * 97, p * 97));
    }
    expect(seen.length).toBe(all.length);
    const past = await get(`/api/v1/event?per_page=97&page=${pages + 1}`, jwtA);
    expect(past.text).toBe('[]');
    expect(past.headers['x-total-count']).toBe(String(all.length));
    const max = await get('/api/v1/event?per_page=1000', jwtA);
    expect(max.text).toBe(page(all.slice(0, 1000)));
  });

  it('filters by type, severity, alert, endpoint and time, each and together', async () => {
    const all = ofA();
    const count = (f: (e: LogEvent) => boolean) => all.filter(f);
    const byType = new Map<number, number>();
    for (const e of all) byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
    const [t1, t2] = [...byType.entries()].sort((a, b) => b[1] - a[1]).map(([t]) => t) as [number, number];
    const endpoint = all.find((e) => e.endpoint !== null)?.endpoint as number;
    const times = all.map((e) => e.ms).sort((a, b) => a - b);
    const from = times[Math.floor(times.length / 4)] as number;
    const until = times[Math.floor((times.length * 3) / 4)] as number;
    const iso = (ms: number) => new Date(ms).toISOString();
    const cases: [string, (e: LogEvent) => boolean][] = [
      [`type=${t1}`, (e) => e.type === t1],
      [`type=${t1},${t2}`, (e) => e.type === t1 || e.type === t2],
      [`type=${t1}&type=${t2}`, (e) => e.type === t1 || e.type === t2],
      ['severity=0', (e) => e.severity === 0],
      ['severity=1,2', (e) => e.severity === 1 || e.severity === 2],
      ['alert=true', (e) => e.alert],
      ['alert=false', (e) => !e.alert],
      [`endpoint=${endpoint}`, (e) => e.endpoint === endpoint],
      [`from=${iso(from)}`, (e) => e.ms >= from],
      [`until=${iso(until)}`, (e) => e.ms < until],
      [
        `from=${encodeURIComponent(new Date(from).toISOString().replace('Z', '+00:00'))}&until=${iso(until)}`,
        (e) => e.ms >= from && e.ms < until,
      ],
      [`type=${t1}&alert=false&from=${iso(from)}`, (e) => e.type === t1 && !e.alert && e.ms >= from],
      ['type=65535', () => false],
    ];
    for (const [query, filter] of cases) {
      const expected = count(filter);
      const r = await get(`/api/v1/event?per_page=1000&${query}`, jwtA);
      expect(r.status, query).toBe(200);
      expect(r.headers['x-total-count'], query).toBe(String(expected.length));
      expect(r.text, query).toBe(page(expected.slice(0, 1000)));
    }
    expect(count((e) => e.alert).length).toBeGreaterThan(0);
    expect(count((e) => e.ms >= from && e.ms < until).length).toBeGreaterThan(0);
  });

  it('GET /api/v1/endpoint/{id}/event answers the endpoint’s events with the same filters', async () => {
    const all = ofA();
    const endpoint = all.find((e) => e.endpoint !== null)?.endpoint as number;
    const mine = all.filter((e) => e.endpoint === endpoint);
    const r = await get(`/api/v1/endpoint/${endpoint}/event?per_page=1000`, jwtA);
    expect(r.status).toBe(200);
    expect(r.headers['x-total-count']).toBe(String(mine.length));
    expect(r.text).toBe(page(mine));
    const alerts = mine.filter((e) => e.alert);
    const f = await get(`/api/v1/endpoint/${endpoint}/event?alert=true&per_page=1000`, jwtA);
    expect(f.text).toBe(page(alerts));
    expect((await get(`/api/v1/endpoint/${endpoint}/event?endpoint=1`, jwtA)).status).toBe(400);
  });
});

function expectedUsage(filter: (u: LogUsage) => boolean) {
  const sums = new Map<string, { n: number; cost: bigint; total: bigint; rx: bigint; tx: bigint }>();
  for (const u of usage.filter(filter)) {
    const s = sums.get(u.key) ?? { n: 0, cost: 0n, total: 0n, rx: 0n, tx: 0n };
    s.n++;
    s.cost += u.cost;
    s.total += u.total;
    s.rx += u.rx;
    s.tx += u.tx;
    sums.set(u.key, s);
  }
  return sums;
}
function actualUsage(json: unknown) {
  const rows = json as {
    date: string;
    ratezone: { id: number };
    traffic_type: { id: number };
    currency: { code: string };
    records: string;
    volume: { total: string; rx: string; tx: string };
    cost: string;
  }[];
  return new Map(
    rows.map((r) => [
      `${r.date}|${r.ratezone.id}|${r.traffic_type.id}|${r.currency.code}`,
      {
        n: Number(r.records),
        cost: parseDecimal(r.cost),
        total: parseDecimal(r.volume.total),
        rx: parseDecimal(r.volume.rx),
        tx: parseDecimal(r.volume.tx),
      },
    ]),
  );
}

describe('usage', () => {
  it('GET /api/v1/organisation/usage: exact sums per day, ratezone, traffic type and currency', async () => {
    for (const [org, token] of [
      [orgA, jwtA],
      [orgB, jwtB],
    ] as const) {
      const expected = expectedUsage((u) => u.org === org);
      expect(expected.size).toBeGreaterThan(0);
      const r = await get('/api/v1/organisation/usage', token);
      expect(r.status).toBe(200);
      expect(actualUsage(r.json)).toEqual(expected);
      // Cost is the text of the exact sum: no float got in the way.
      for (const row of r.json as { cost: string }[]) expect(row.cost).toMatch(/^-?\d+(\.\d+)?$/);
    }
    const days = [...new Set(usage.map((u) => u.day))].sort();
    const day = days[0] as string;
    const one = await get(`/api/v1/organisation/usage?from=${day}&until=${day}`, jwtA);
    expect(actualUsage(one.json)).toEqual(expectedUsage((u) => u.org === orgA && u.day === day));
    expect((await get('/api/v1/organisation/usage?from=2148-01-01', jwtA)).json).toEqual([]);
    expect((await get('/api/v1/organisation/usage?until=1999-12-31', jwtA)).json).toEqual([]);
  });

  it('GET /api/v1/endpoint/{id}/usage: the endpoint’s sums', async () => {
    const endpoint = usage.find((u) => u.org === orgA)?.endpoint as number;
    const r = await get(`/api/v1/endpoint/${endpoint}/usage`, jwtA);
    expect(r.status).toBe(200);
    expect(actualUsage(r.json)).toEqual(expectedUsage((u) => u.endpoint === endpoint && u.org === orgA));
  });
});

describe('tenancy', () => {
  it('B never sees A’s events or usage; A’s endpoint under B’s token is 404', async () => {
    const ofB = events.filter((e) => e.org === orgB).sort(newestFirst);
    const r = await get('/api/v1/event?per_page=1000', jwtB);
    expect(r.headers['x-total-count']).toBe(String(ofB.length));
    expect(r.text).toBe(page(ofB.slice(0, 1000)));
    for (const e of r.json as { organisation: { id: number } }[]) expect(e.organisation.id).toBe(orgB);
    const endpointA = ofA().find((e) => e.endpoint !== null)?.endpoint as number;
    const usageEndpointA = usage.find((u) => u.org === orgA)?.endpoint as number;
    // A's endpoint as a filter is simply no event of B's.
    expect((await get(`/api/v1/event?endpoint=${endpointA}`, jwtB)).text).toBe('[]');
    for (const path of [
      `/api/v1/endpoint/${endpointA}/event`,
      `/api/v1/endpoint/${endpointA}/event?page=0`,
      `/api/v1/endpoint/${usageEndpointA}/usage`,
      '/api/v1/endpoint/99999999999/event',
      '/api/v1/endpoint/abc/usage',
      '/api/v1/endpoint/-1/event',
    ]) {
      const answer = await get(path, jwtB);
      expect(answer.status, path).toBe(404);
      expect(answer.json).toMatchObject({ error_code: 404, error_token: 'not_found' });
    }
    const usageB = await get('/api/v1/organisation/usage', jwtB);
    expect(actualUsage(usageB.json)).toEqual(expectedUsage((u) => u.org === orgB));
    // No token, no data.
    expect((await get('/api/v1/event')).status).toBe(401);
    expect((await get('/api/v1/organisation/usage')).status).toBe(401);
  });
});

describe('GET /api/v1/endpoint/{id}/connectivity', () => {
  it('answers what the last event of the endpoint says, and 404 for another organisation’s or an unknown endpoint', async () => {
    // The last event per endpoint of A, from the log: an accepted Create PDP Context leaves it
    // Online, a Purge GPRS location Offline.
    const last = new Map<number, LogEvent>();
    for (const e of events)
      if (e.org === orgA && e.endpoint !== null && (last.get(e.endpoint)?.ms ?? -1) <= e.ms)
        last.set(e.endpoint, e);
    const online = [...last.values()].find((e) => e.type === 3 && e.severity === 0);
    const offline = [...last.values()].find((e) => e.type === 16);
    expect(online).toBeDefined();
    const r = await get(`/api/v1/endpoint/${online?.endpoint}/connectivity`, jwtA);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      status: { id: 2, description: 'ONLINE' },
      last_updated: new Date(online?.ms as number).toISOString(),
    });
    expect((r.json as { operator: { name: string } }).operator.name).toBe(
      (JSON.parse(online?.text as string) as { detail: { name: string } }).detail.name,
    );
    if (offline) {
      const o = await get(`/api/v1/endpoint/${offline.endpoint}/connectivity`, jwtA);
      expect(o.json).toMatchObject({ status: { id: 0, description: 'OFFLINE' } });
    }
    const foreign = await get(`/api/v1/endpoint/${online?.endpoint}/connectivity`, jwtB);
    const unknown = await get('/api/v1/endpoint/999999999/connectivity', jwtB);
    expect([foreign.status, unknown.status]).toEqual([404, 404]);
    expect(foreign.text.replace(String(online?.endpoint), 'X')).toBe(unknown.text.replace('999999999', 'X'));
    for (const bad of ['abc', '0', '-1', '1e3', '9'.repeat(30)])
      expect((await get(`/api/v1/endpoint/${bad}/connectivity`, jwtA)).status, bad).toBe(404);
    expect((await get(`/api/v1/endpoint/${online?.endpoint}/connectivity`)).status).toBe(401);
  });
});

describe('malformed queries', () => {
  it('answer 400 naming the parameter, never a 5xx (fuzz)', async () => {
    const endpoint = ofA().find((e) => e.endpoint !== null)?.endpoint as number;
    const fixed: [string, string][] = [
      ['/api/v1/event?page=0', 'page'],
      ['/api/v1/event?page=-1', 'page'],
      ['/api/v1/event?page=1.5', 'page'],
      ['/api/v1/event?page=1&page=2', 'page'],
      ['/api/v1/event?per_page=0', 'per_page'],
      ['/api/v1/event?per_page=1001', 'per_page'],
      ['/api/v1/event?per_page=abc', 'per_page'],
      ['/api/v1/event?type=x', 'type'],
      ['/api/v1/event?type=1,,2', 'type'],
      ['/api/v1/event?type=70000', 'type'],
      ['/api/v1/event?type=1%27%20OR%201=1', 'type'],
      ['/api/v1/event?severity=-1', 'severity'],
      ['/api/v1/event?alert=yes', 'alert'],
      ['/api/v1/event?alert=', 'alert'],
      ['/api/v1/event?endpoint=1e3', 'endpoint'],
      ['/api/v1/event?endpoint=18446744073709551616', 'endpoint'],
      ['/api/v1/event?from=yesterday', 'from'],
      ['/api/v1/event?from=2026-13-01T00:00:00Z', 'from'],
      ['/api/v1/event?until=2026-01-05', 'until'],
      ["/api/v1/event?until=2026-01-05T00:00:00Z')", 'until'],
      ['/api/v1/event?from=2026-01-06T00:00:00Z&until=2026-01-05T00:00:00Z', 'until'],
      ['/api/v1/event?sort=id', 'sort'],
      [`/api/v1/endpoint/${endpoint}/event?per_page=0`, 'per_page'],
      ['/api/v1/organisation/usage?from=2026-02-30', 'from'],
      ['/api/v1/organisation/usage?until=20260105', 'until'],
      ['/api/v1/organisation/usage?from=2026-01-06&until=2026-01-05', 'until'],
      ['/api/v1/organisation/usage?from=a&from=b', 'from'],
      ['/api/v1/organisation/usage?page=1', 'page'],
      [`/api/v1/endpoint/${endpoint}/usage?from=x`, 'from'],
    ];
    for (const [path, name] of fixed) {
      const r = await get(path, jwtA);
      expect(r.status, path).toBe(400);
      expect(r.json, path).toMatchObject({ error_code: 400, error_token: 'invalid_request' });
      expect((r.json as { problems: string[] }).problems.join(' '), path).toContain(`${name}:`);
    }
    // Random values for every parameter: a 200 or a 400 that names it, nothing else.
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = [
      '0',
      '1',
      '9',
      '-',
      ',',
      '.',
      ':',
      'T',
      'Z',
      '+',
      "'",
      '"',
      '\\',
      ' ',
      'a',
      '%',
      '2026-01-05',
    ];
    const params = ['page', 'per_page', 'type', 'severity', 'alert', 'endpoint', 'from', 'until'];
    for (let i = 0; i < 150; i++) {
      const name = params[Math.floor(rand() * params.length)] as string;
      let value = '';
      const len = Math.floor(rand() * 8);
      for (let k = 0; k < len; k++) value += alphabet[Math.floor(rand() * alphabet.length)];
      const route = i % 3 === 0 ? '/api/v1/organisation/usage' : '/api/v1/event';
      const r = await get(`${route}?${name}=${encodeURIComponent(value)}`, jwtA);
      expect(r.status, `${route} ${name}=${value}`).toBeLessThan(500);
      if (r.status !== 200) {
        expect(r.status).toBe(400);
        expect((r.json as { message: string }).message, `${name}=${value}`).toContain(`${name}:`);
      }
    }
  });

  it('lists every route in an OpenAPI document that validates against the OpenAPI 3.1 schema', async () => {
    const spec = (await get('/api/docs/json')).json as { paths: Record<string, Record<string, unknown>> };
    const validation = await new Validator().validate(spec as Parameters<Validator['validate']>[0]);
    expect(validation.errors ?? [], JSON.stringify(validation.errors)).toEqual([]);
    expect(validation.valid).toBe(true);
    expect(Object.keys(spec.paths)).toContain('/api/v1/dashboard');
    for (const path of [
      '/api/v1/event',
      '/api/v1/endpoint/{id}/event',
      '/api/v1/organisation/usage',
      '/api/v1/endpoint/{id}/usage',
      '/api/v1/endpoint/{id}/connectivity',
      '/api/v1/endpoint/{id}/quota/data',
      '/api/v1/endpoint/{id}/quota/sms',
    ])
      expect(Object.keys(spec.paths[path] ?? {}), path).toContain('get');
    for (const service of ['data', 'sms'])
      expect(Object.keys(spec.paths[`/api/v1/endpoint/{id}/quota/${service}`] ?? {})).toEqual(
        expect.arrayContaining(['get', 'post', 'delete']),
      );
  });
});

describe('quotas', () => {
  const rawEnd = async () => {
    let n = 0;
    for (let p = 0; p < engine.raw.partitions; p++) n += await engine.raw.endOffset(p);
    return n;
  };
  const rawCommands = async () => {
    const ids: string[] = [];
    for (let p = 0; p < engine.raw.partitions; p++)
      for (const r of await engine.raw.read(p, 0, 1_000_000))
        if (r.value.toString('utf8').includes('"api-')) ids.push(r.value.toString('utf8'));
    return ids;
  };
  const assign = {
    status: { id: 1 },
    volume: 25.5,
    expiry_date: '2026-02-01T00:00:00Z',
    auto_refill: 1,
    threshold_percentage: 20,
    action_on_exhaustion: { id: 2, peak_throughput: 128000 },
  };

  it('assigns, tops up and deletes a data quota through command records on the input log, with events 56 and 57', async () => {
    const endpoint = ofA().find((e) => e.endpoint !== null)?.endpoint as number;
    const path = `/api/v1/endpoint/${endpoint}/quota/data`;
    expect((await get(path, jwtA)).status).toBe(404);

    const created = await send('POST', path, jwtA, assign);
    expect(created.status, created.text).toBe(201);
    const expected = {
      status: { id: 1, description: 'ACTIVE' },
      volume: 25.5,
      expiry_date: '2026-02-01T00:00:00.000Z',
      auto_refill: 1,
      threshold_percentage: 20,
      // 20% of 26,738,688 bytes in whole bytes, as the engine (and event 56) counts it.
      threshold_volume: 5.099999,
      action_on_exhaustion: { id: 2, description: 'Throttle', peak_throughput: 128000 },
      last_volume_added: 25.5,
      last_status_change_date: new Date(T0 + 5 * HOUR).toISOString(),
    };
    expect(created.json).toEqual(expected);
    expect((await get(path, jwtA)).json).toEqual(expected);

    // Top-up as emnify has it: read, add, post the new total (the read-only fields ride along).
    const current = (await get(path, jwtA)).json as typeof expected;
    const topped = await send('POST', path, jwtA, { ...current, volume: current.volume + 10 });
    expect(topped.status, topped.text).toBe(201);
    expect(topped.json).toMatchObject({ volume: 35.5, last_volume_added: 35.5 });

    // On the input log as commands (a replay reproduces them), and out as events in ClickHouse.
    const commands = await rawCommands();
    expect(commands).toHaveLength(2);
    expect(JSON.parse(commands[0] as string).record).toMatchObject({
      type: 'QUOTA_ASSIGN',
      endpoint_id: endpoint,
      service: 'DATA',
      volume: '25.5',
      action_on_exhaustion: 'THROTTLE',
      peak_throughput: 128000,
      auto_refill: true,
    });
    const assigned = await get(`/api/v1/endpoint/${endpoint}/event?type=56`, jwtA);
    expect(assigned.json as unknown[]).toHaveLength(2);
    expect((assigned.json as { detail: { quota: { volume: number } } }[])[0]?.detail.quota.volume).toBe(35.5);

    expect((await send('DELETE', path, jwtA)).status).toBe(204);
    const gone = await get(path, jwtA);
    expect(gone.status).toBe(404);
    expect(gone.json).toMatchObject({ message: `endpoint ${endpoint} has no data quota` });
    expect((await get(`/api/v1/endpoint/${endpoint}/event?type=57`, jwtA)).json as unknown[]).toHaveLength(1);
    expect((await send('DELETE', path, jwtA)).status).toBe(404);
  });

  it('SMS quotas count messages', async () => {
    const endpoint = ofA().find((e) => e.endpoint !== null)?.endpoint as number;
    const path = `/api/v1/endpoint/${endpoint}/quota/sms`;
    const body = { status: { id: 1 }, volume: 100, expiry_date: '2026-02-01T00:00:00.000+0000' };
    const r = await send('POST', path, jwtA, body);
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ volume: 100, action_on_exhaustion: { id: 1, description: 'Block' } });
    expect((await send('POST', path, jwtA, { ...body, volume: 1.5 })).status).toBe(422);
    expect((await send('DELETE', path, jwtA)).status).toBe(204);
  });

  it('never lets B read, assign or delete A’s quota, and writes nothing for B’s attempts', async () => {
    const endpoint = ofA().find((e) => e.endpoint !== null)?.endpoint as number;
    const path = `/api/v1/endpoint/${endpoint}/quota/data`;
    expect((await send('POST', path, jwtA, assign)).status).toBe(201);
    const before = await rawEnd();
    const unknown = (method: 'GET' | 'POST' | 'DELETE') =>
      send(method, '/api/v1/endpoint/999999999/quota/data', jwtB, method === 'POST' ? assign : undefined);
    for (const method of ['GET', 'POST', 'DELETE'] as const) {
      const foreign = await send(method, path, jwtB, method === 'POST' ? assign : undefined);
      expect(foreign.status, method).toBe(404);
      expect(foreign.text.replace(String(endpoint), 'X')).toBe(
        (await unknown(method)).text.replace('999999999', 'X'),
      );
      expect((await send(method, path, undefined, method === 'POST' ? assign : undefined)).status).toBe(401);
    }
    expect(await rawEnd()).toBe(before);
    expect((await get(path, jwtA)).status).toBe(200);
    expect((await send('DELETE', path, jwtA)).status).toBe(204);
  });

  it('answers a malformed quota with a 422 naming the field, never a 5xx, and writes nothing (fuzz)', async () => {
    const endpoint = ofA().find((e) => e.endpoint !== null)?.endpoint as number;
    const path = `/api/v1/endpoint/${endpoint}/quota/data`;
    const before = await rawEnd();
    const commandsBefore = (await rawCommands()).length;
    const cases: [unknown, string][] = [
      [{ ...assign, status: undefined }, 'status'],
      [{ ...assign, status: { id: 2 } }, 'status.id'],
      [{ ...assign, volume: -1 }, 'volume'],
      [{ ...assign, volume: '10' }, 'volume'],
      [{ ...assign, volume: 1.1234567 }, 'volume'],
      [{ ...assign, volume: 1e-7 }, 'volume'],
      [{ ...assign, expiry_date: 'tomorrow' }, 'expiry_date'],
      [{ ...assign, expiry_date: '2026-02-01T00:00:00' }, 'expiry_date'],
      [{ ...assign, expiry_date: '2026-01-05T00:00:00Z' }, 'expiry_date'],
      [{ ...assign, threshold_percentage: 101 }, 'threshold_percentage'],
      [{ ...assign, auto_refill: 2 }, 'auto_refill'],
      [{ ...assign, action_on_exhaustion: { id: 3 } }, 'action_on_exhaustion.id'],
      [{ ...assign, action_on_exhaustion: { id: 2 } }, 'action_on_exhaustion.peak_throughput'],
      [
        { ...assign, action_on_exhaustion: { id: 2, peak_throughput: 100 } },
        'action_on_exhaustion.peak_throughput',
      ],
      [{ ...assign, colour: 'red' }, 'colour'],
    ];
    for (const [body, field] of cases) {
      const r = await send('POST', path, jwtA, body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect((r.json as { message: string }).message, JSON.stringify(body)).toContain(field);
    }
    let seed = 99;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values = [null, true, 0, -1, 1.5, 1e300, '', 'x', '2026-02-01T00:00:00Z', [], {}, { id: 1 }, [1]];
    const fields = [
      'status',
      'volume',
      'expiry_date',
      'auto_refill',
      'threshold_percentage',
      'action_on_exhaustion',
    ];
    for (let i = 0; i < 120; i++) {
      const body: Record<string, unknown> = { ...assign };
      body[fields[Math.floor(rand() * fields.length)] as string] = values[Math.floor(rand() * values.length)];
      const text =
        i % 10 === 0 ? JSON.stringify(body).slice(0, Math.floor(rand() * 40)) : JSON.stringify(body);
      const r = await send('POST', path, jwtA, text);
      expect(r.status, text).toBeLessThan(500);
      if (r.status === 201) expect((await send('DELETE', path, jwtA)).status).toBe(204);
    }
    const bad = await send('POST', path, jwtA, '{"volume":');
    expect(bad.status).toBe(400);
    // Nothing but the accepted ones (and their deletes) reached the input log.
    expect(await rawEnd()).toBe(before + (await rawCommands()).length - commandsBefore);
  });
});
