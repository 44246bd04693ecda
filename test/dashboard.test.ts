/**
 * The live dashboard in a real browser (Debian's Chromium driven by playwright-core)
 * against the real API over a socket, on a real engine with two organisations, each with a
 * data stream delivering to a local webhook receiver. The page signs in from the URL
 * fragment, draws its charts and the map, lists only its organisation's stream, and its
 * figures move when the engine processes more records. Beside it: the data route's
 * authentication, tenancy, OpenAPI entry and exact totals, and the throughput ring.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Browser, chromium, type Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkFactory } from '../connectors/sinks/types.js';
import { webhookSink } from '../connectors/sinks/webhook/index.js';
import type { DashboardSnapshot } from '../src/api/dashboard/plugin.js';
import { engineDashboardSource, ThroughputRing } from '../src/api/dashboard/source.js';
import { buildApi } from '../src/api/server.js';
import { TokenStore } from '../src/api/tokens.js';
import { parseDecimal } from '../src/core/decimal.js';
import type { EmbeddedEngine } from '../src/engine/engine.js';
import { captureLines } from '../src/engine/ingest.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { runSimulation } from '../src/simulator/run.js';
import { StreamManager } from '../src/streams/manager.js';
import { HOUR, Receiver, replayedEngine, T0 } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'ds-dashboard-'));
const reference = generateReferenceData({ devices: 200, seed: 11 });
const [orgA, orgB] = reference.organisations.map((o) => o.id) as [number, number];
const sinks = new Map<string, SinkFactory>([
  [webhookSink.connectionType, webhookSink as unknown as SinkFactory],
]);

let engine: EmbeddedEngine;
let streams: StreamManager;
let app: FastifyInstance;
const receiver = new Receiver();
let browser: Browser;
let base = '';
let secretA = '';
let jwtA = '';
let jwtB = '';
const streamIds: Record<number, string> = {};

async function get(path: string, token?: string) {
  const response = await request(`${base}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text };
}

async function authToken(secret: string): Promise<string> {
  const r = await request(`${base}/api/v1/authenticate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ application_token: secret }),
  });
  return ((await r.body.json()) as { auth_token: string }).auth_token;
}

beforeAll(async () => {
  // Fail, never skip: the browser test is the point of this file.
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  engine = await replayedEngine(dir, reference, { seed: 11, hours: 3 });
  await receiver.start();
  const hook = receiver.url;
  streams = new StreamManager({
    dir: join(dir, 'streams'),
    sources: engine.streamSources(),
    cursors: engine.log.cursors,
    sinks,
    lingerMs: 30,
    pollMs: 20,
  });
  for (const org of [orgA, orgB]) {
    const stream = await streams.create(org, {
      name: `events of organisation ${org}`,
      data_stream_type: { id: 2 },
      destination: { connection_type: 'RestAPI', credentials: { url: hook } },
      start: 'earliest',
    });
    streamIds[org] = stream.id;
  }
  const tokens = new TokenStore(join(dir, 'api', 'tokens.json'));
  app = await buildApi({
    streams,
    tokens,
    jwtSecret: 'a-test-secret-of-at-least-32-bytes!!',
    rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
    dashboard: engineDashboardSource(engine, streams, { sampleMs: 500 }),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  secretA = (await tokens.create(orgA, 'org A')).secret;
  jwtA = await authToken(secretA);
  jwtB = await authToken((await tokens.create(orgB, 'org B')).secret);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await streams?.close();
  await receiver.stop();
  await engine?.close();
});

describe('GET /api/v1/dashboard', () => {
  it('answers 401 without a token and only the caller’s organisation with one', async () => {
    const anonymous = await get('/api/v1/dashboard');
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.text).error_token).toBe('unauthorized');
    expect((await get('/api/v1/dashboard', 'not-a-jwt')).status).toBe(401);

    const a = await get('/api/v1/dashboard', jwtA);
    expect(a.status).toBe(200);
    expect(a.headers['cache-control']).toBe('no-store');
    const snapshot = JSON.parse(a.text) as DashboardSnapshot;
    expect(snapshot.organisation_id).toBe(orgA);
    expect(snapshot.streams.map((s) => s.id)).toEqual([streamIds[orgA]]);
    expect(a.text).not.toContain(streamIds[orgB]);
    expect(a.text).not.toContain(`events of organisation ${orgB}`);
    const b = JSON.parse((await get('/api/v1/dashboard', jwtB)).text) as DashboardSnapshot;
    expect(b.streams.map((s) => s.id)).toEqual([streamIds[orgB]]);

    // Devices are the organisation's own; every visited country of the fixture is on the map table.
    const endpointsOfA = engine.directory.endpointRunsOf(orgA).reduce((n, run) => n + run.count, 0);
    expect(snapshot.devices.total).toBe(endpointsOfA);
    const { offline, attached, online } = snapshot.devices.by_status;
    expect(offline + attached + online).toBe(endpointsOfA);
    expect(snapshot.devices.by_country.length).toBeGreaterThan(0);
    for (const c of snapshot.devices.by_country) expect(c.iso_numeric).toMatch(/^\d{3}$/);
    expect(snapshot.devices.by_country.find((c) => c.iso === 'de')?.iso_numeric ?? '276').toBe('276');

    // Totals per currency are ClickHouse's exact sums: the same as summing the raw usage records.
    const raw = await engine.store.query(
      `SELECT toString(currency) AS cur, toString(count()) AS n, toString(sum(cost)) AS c FROM usage_records WHERE organisation_id = ${orgA} GROUP BY cur ORDER BY cur`,
    );
    expect(raw.length).toBeGreaterThan(0);
    expect(snapshot.usage.totals.map((t) => [t.currency, t.records, parseDecimal(t.cost)])).toEqual(
      raw.map((r) => [r.cur, r.n, parseDecimal(String(r.c))]),
    );
    expect(snapshot.usage.ratezones.length).toBeGreaterThan(0);
    for (const r of snapshot.usage.ratezones) expect(r.cost).toMatch(/^-?\d+(\.\d+)?$/);
    expect(snapshot.engine.processed_records).toBe(engine.processedCount);
    expect(snapshot.engine.event_time).not.toBeNull();
  });

  it('is in the OpenAPI document with its response schema; the page is not', async () => {
    const doc = JSON.parse((await get('/api/docs/json')).text);
    const route = doc.paths['/api/v1/dashboard'].get;
    expect(route.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(route.responses['200'].content['application/json'].schema.properties)).toEqual([
      'generated_at',
      'organisation_id',
      'engine',
      'devices',
      'usage',
      'streams',
    ]);
    expect(doc.paths['/']).toBeUndefined();
  });

  it('serves the page publicly with a CSP of its own origin only, and the vendored browser builds', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.text).not.toMatch(/<script>(?!<)/); // no inline script
    for (const path of [
      '/dashboard/dashboard.js',
      '/dashboard/dashboard.css',
      '/dashboard/vendor/chart.umd.min.js',
      '/dashboard/vendor/chartjs-chart-geo.umd.min.js',
      '/dashboard/vendor/countries-110m.json',
    ])
      expect((await get(path)).status, path).toBe(200);
    expect((await get('/dashboard/../package.json')).status).toBe(404);
  });
});

/** Text of an element once it is not the placeholder. */
async function textOf(page: Page, id: string): Promise<string> {
  await expect.poll(() => page.textContent(`#${id}`), { timeout: 10_000 }).not.toBe('–');
  return (await page.textContent(`#${id}`)) ?? '';
}

/** The page-side names the evaluated functions use (tsconfig has no DOM library). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  };
}
interface ChartLike {
  data: { datasets: { data: unknown[] }[] };
}
interface PageGlobals {
  Chart: { getChart(canvas: CanvasLike): ChartLike };
  sessionStorage: Record<string, string> & { setItem(key: string, value: string): void; length: number };
}

/** The data of a chart's first dataset, as the page holds it. */
function chartData<T>(page: Page, id: string): Promise<T[]> {
  return page
    .locator(`#${id}`)
    .evaluate(
      (canvas: CanvasLike) =>
        (globalThis as unknown as PageGlobals).Chart.getChart(canvas).data.datasets[0]?.data ?? [],
    ) as Promise<T[]>;
}

describe('the dashboard in Chromium', () => {
  it('signs in from the fragment, draws every chart and the map, lists its own stream, and moves with the engine', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));

    await page.goto(`${base}/#token=${secretA}`);
    const processedBefore = await textOf(page, 'processed');
    // The token left the address bar; only the auth_token is kept, for this tab.
    expect(page.url()).toBe(`${base}/`);
    expect(requested.every((u) => !u.includes(secretA))).toBe(true);
    const stored = await page.evaluate(() => ({ ...(globalThis as unknown as PageGlobals).sessionStorage }));
    expect(Object.values(stored)).not.toContain(secretA);
    expect(Object.keys(stored)).toEqual(['data-streamer.auth_token']);
    expect(processedBefore).toBe(engine.processedCount.toLocaleString('en-US'));
    expect(await page.textContent('#organisation')).toBe(`organisation ${orgA}`);

    // Every chart has a canvas with a size.
    for (const id of ['throughput-chart', 'status-chart', 'map-chart', 'volume-chart', 'cost-chart']) {
      const box = await page.locator(`#${id}`).boundingBox();
      expect(box?.width, id).toBeGreaterThan(100);
      expect(box?.height, id).toBeGreaterThan(100);
    }
    // The map: features coloured by the organisation's countries, and drawn (many coloured pixels).
    const features = await chartData<{ feature: { id: string }; value: number | null }>(page, 'map-chart');
    const pixels = await page.locator('#map-chart').evaluate((canvas: CanvasLike) => {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      const colours = new Set<number>();
      for (let i = 0; i < data.length; i += 4)
        if ((data[i + 3] as number) > 0) {
          painted++;
          colours.add(((data[i] as number) << 16) | ((data[i + 1] as number) << 8) | (data[i + 2] as number));
        }
      return { painted: painted / (data.length / 4), colours: colours.size };
    });
    const snapshot = JSON.parse((await get('/api/v1/dashboard', jwtA)).text) as DashboardSnapshot;
    expect(features.length).toBeGreaterThan(150);
    const ids = features.map((d) => d.feature.id);
    const expected = snapshot.devices.by_country
      .filter((c) => c.iso_numeric !== null && ids.includes(c.iso_numeric))
      .map((c): [string, number] => [c.iso_numeric as string, c.devices]);
    expect(expected.length).toBeGreaterThan(0);
    const valued = features
      .filter((d) => d.value !== null)
      .map((d): [string, number] => [d.feature.id, d.value as number]);
    expect(new Map(valued)).toEqual(new Map(expected));
    expect(pixels.painted).toBeGreaterThan(0.2);
    expect(pixels.colours).toBeGreaterThan(3);

    // Its own stream, not the other organisation's.
    await page.waitForSelector(`tr[data-stream-id="${streamIds[orgA]}"]`);
    const table = (await page.textContent('#streams')) ?? '';
    expect(table).toContain(`events of organisation ${orgA}`);
    expect(table).not.toContain(`events of organisation ${orgB}`);
    expect(await page.content()).not.toContain(streamIds[orgB]);
    const usageRows = await page.locator('#usage-rows tr').count();
    expect(usageRows).toBe(snapshot.usage.ratezones.length);
    expect(await page.textContent('#usage-totals')).toContain(snapshot.usage.totals[0]?.cost);

    // More traffic: an hour after the replay, ingested and processed while the page polls.
    const totalBefore = (await page.textContent('#usage-totals')) ?? '';
    const more = join(dir, 'more.ndjson');
    await runSimulation({ reference, seed: 12, start: T0 + 3 * HOUR, durationMs: HOUR, out: more });
    const lines: string[] = [];
    for await (const line of captureLines(more)) lines.push(line);
    await engine.exclusive(async () => {
      await engine.ingest(lines);
      await engine.process();
      await engine.finish();
    });
    const processedAfter = engine.processedCount.toLocaleString('en-US');
    expect(processedAfter).not.toBe(processedBefore);
    await expect.poll(() => page.textContent('#processed'), { timeout: 10_000 }).toBe(processedAfter);
    // The throughput chart saw the jump; the usage totals (ClickHouse) followed.
    await expect
      .poll(async () => (await chartData<number>(page, 'throughput-chart')).some((v) => v > 0), {
        timeout: 10_000,
      })
      .toBe(true);
    await expect.poll(() => page.textContent('#usage-totals'), { timeout: 10_000 }).not.toBe(totalBefore);
    expect(await page.textContent('#event-time')).toMatch(/^2026-01-05 0[34]:/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the token form without a token, and goes back to it on a 401', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.waitForSelector('#sign-in:not([hidden])');
    expect(await page.isHidden('#dashboard')).toBe(true);
    await page.fill('#token-input', 'ds_not-a-real-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('#sign-in-error')).not.toBe('');
    expect(page.url()).toBe(`${base}/`);

    await page.fill('#token-input', secretA);
    await page.click('button[type=submit]');
    await textOf(page, 'processed');
    // A session the server no longer accepts: back to the form.
    await page.evaluate(() =>
      (globalThis as unknown as PageGlobals).sessionStorage.setItem(
        'data-streamer.auth_token',
        'expired.or.forged',
      ),
    );
    await page.waitForSelector('#sign-in:not([hidden])', { timeout: 5_000 });
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.length)).toBe(0);
    await page.close();
  });
});

describe('engineDashboardSource', () => {
  it('reads records/s from its own clock and reuses an organisation’s ClickHouse figures for cacheMs', async () => {
    let clock = Date.UTC(2026, 0, 5, 12);
    const source = engineDashboardSource(engine, streams, {
      now: () => clock,
      cacheMs: 2000,
      sampleMs: 1000,
    });
    const first = await source.snapshot(orgA);
    expect(first.engine.records_per_second).toBeNull();
    expect(first.generated_at).toBe('2026-01-05T12:00:00.000Z');
    clock += 1500;
    const second = await source.snapshot(orgA);
    // The engine is idle here: 0 records/s over the 1.5 s, the same cached usage reading.
    expect(second.engine.throughput).toEqual([{ at: '2026-01-05T12:00:01.500Z', records_per_second: 0 }]);
    expect(second.usage.read_at).toBe(first.usage.read_at);
    clock += 600;
    const third = await source.snapshot(orgA);
    expect(third.usage.read_at).toBe('2026-01-05T12:00:02.100Z');
    expect(third.usage).toEqual({ ...first.usage, read_at: third.usage.read_at });
    // Another organisation never gets the first one's cached figures.
    const other = await source.snapshot(orgB);
    expect(other.organisation_id).toBe(orgB);
    expect(other.usage.totals).not.toEqual(third.usage.totals);
  });
});

describe('ThroughputRing', () => {
  it('keeps at most one sample per gap and a bounded history, rates between neighbours', () => {
    const ring = new ThroughputRing(3, 1000);
    ring.sample(0, 0);
    ring.sample(500, 400); // too soon: dropped
    ring.sample(1000, 1000);
    ring.sample(3000, 5000);
    expect(ring.rates()).toEqual([
      { at: 1000, perSecond: 1000 },
      { at: 3000, perSecond: 2000 },
    ]);
    ring.sample(4000, 5000);
    // The oldest sample went: three kept, two rates.
    expect(ring.rates()).toEqual([
      { at: 3000, perSecond: 2000 },
      { at: 4000, perSecond: 0 },
    ]);
  });
});
