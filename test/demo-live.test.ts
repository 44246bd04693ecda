/**
 * What a new user does with `npm start`: the demo runs (the built CLI, a small fleet at a
 * pace), its printed dashboard address opens in headless Chromium and the numbers move
 * while the day runs; meanwhile the README's curl steps work against its API: a webhook
 * stream created over HTTP gets records, and a quota assigned over HTTP is in the demo's
 * capture, so replaying the capture reproduces the demo's outputs exactly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, Receiver } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'ds-demo-live-'));
let demo: ChildProcess;
let output = '';
let browser: Browser;
const hook = new Receiver();

const exited = () =>
  new Promise<number | null>((resolve) => {
    if (demo.exitCode !== null) resolve(demo.exitCode);
    else demo.once('exit', (code) => resolve(code));
  });

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it)`);
  await hook.start();
  // 300 devices, 12 virtual hours at 1,440x: about 30 s of wall time.
  demo = spawn(
    process.execPath,
    [
      CLI,
      'demo',
      '--data-dir',
      dir,
      '--devices',
      '300',
      '--duration',
      '12h',
      '--speed',
      '1440',
      '--port',
      '0',
      '--exit',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  demo.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  demo.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  if (demo && demo.exitCode === null) demo.kill('SIGKILL');
  await browser?.close();
  await hook.stop();
});

describe('npm start', () => {
  it('serves a dashboard whose numbers move while the day runs, and the API of the README', async () => {
    await expect.poll(() => /Dashboard: +(\S+)/.exec(output)?.[1], { timeout: 30_000 }).toBeDefined();
    const url = /Dashboard: +(\S+)/.exec(output)?.[1] as string;
    const api = url.slice(0, url.indexOf('/#'));
    const applicationToken = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    expect(url).toBe(`${api}/#token=${applicationToken}`);

    // The README's curl steps.
    const auth = await request(`${api}/api/v1/authenticate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ application_token: applicationToken }),
    });
    const { auth_token } = (await auth.body.json()) as { auth_token: string };
    const post = async (path: string, body: unknown) => {
      const r = await request(`${api}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auth_token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
    };
    const stream = await post('/api/v2/data_stream', {
      name: 'my usage',
      data_stream_type: { id: 1 },
      destination: {
        connection_type: 'RestAPI',
        credentials: { url: hook.url },
      },
      start: 'now',
    });
    expect(stream.status).toBe(201);
    const quota = await post('/api/v1/endpoint/20000001/quota/data', {
      status: { id: 1 },
      volume: 5,
      expiry_date: '2026-12-31T00:00:00Z',
      action_on_exhaustion: { id: 1 },
    });
    expect(quota.status).toBe(201);

    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => page.textContent('#processed'), { timeout: 15_000 }).toMatch(/\d/);
    const first = await page.textContent('#processed');
    const firstTime = await page.textContent('#event-time');
    // A few seconds later the engine has moved on, and so has the page.
    await expect.poll(() => page.textContent('#processed'), { timeout: 15_000 }).not.toBe(first);
    await expect.poll(() => page.textContent('#event-time'), { timeout: 15_000 }).not.toBe(firstTime);
    for (const id of ['throughput-chart', 'status-chart', 'map-chart'])
      expect((await page.locator(`#${id}`).boundingBox())?.width ?? 0, id).toBeGreaterThan(0);
    await page.close();

    expect(await exited(), output).toBe(0);
    // The stream made over HTTP got usage records of organisation 1001 only.
    expect(hook.records().length).toBeGreaterThan(0);
    for (const r of hook.records()) expect(r.organisation).toMatchObject({ id: 1001 });
    // The quota is in the demo's capture, where it happened, so a replay reproduces it.
    const { openCapture } = await import('../src/capture/reader.js');
    const capture = await openCapture(join(dir, 'capture.ndjson.gz'));
    const commands: unknown[] = [];
    for await (const r of capture.records) if (r.kind === 'command') commands.push(r.record);
    expect(commands).toEqual([
      expect.objectContaining({ type: 'QUOTA_ASSIGN', endpoint_id: 20000001, volume: '5' }),
    ]);
    // Replayed into a fresh data directory, the capture gives the demo's outputs exactly.
    const again = join(dir, 'replayed');
    expect((await cli('replay', join(dir, 'capture.ndjson.gz'), '--data-dir', again)).code).toBe(0);
    const diff = await cli('diff', join(dir, 'engine'), again);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    // And the token the demo printed ends with it.
    expect(existsSync(join(dir, 'api-token'))).toBe(false);
  }, 120_000);
});
