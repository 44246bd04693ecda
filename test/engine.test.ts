import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaptureWriter } from '../src/capture/writer.js';
import type { EngineCommand, RawRecord } from '../src/contracts/raw.js';
import { formatDecimal, parseDecimal } from '../src/core/decimal.js';
import { usageFromJson } from '../src/core/output.js';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { runLive } from '../src/engine/live.js';
import { summarise } from '../src/engine/summary.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { runSimulation, simulationHeader } from '../src/simulator/run.js';
import { CoreSimulator } from '../src/simulator/simulator.js';
import { openStore } from '../src/storage/index.js';
import { allOutputs, quotaAssign, replayedEngine, T0 } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-engine-'));
const reference = generateReferenceData({ devices: 300, seed: 21 });
// A low cost limit, so that the organisation stage blocks one organisation during the replay.
(reference.organisations[0] as { monthly_cost_limit?: string }).monthly_cost_limit = '2';
const capture = join(dir, 'capture.ndjson');

describe('embedded engine', () => {
  it('replays a capture into the same outputs in two fresh data dirs, and adds nothing when run again', async () => {
    await runSimulation({
      reference,
      seed: 21,
      start: Date.UTC(2026, 0, 5),
      durationMs: 12 * 3_600_000,
      out: capture,
      duplicateCdrRate: 0.01,
    });
    const a = await EmbeddedEngine.open({ dataDir: join(dir, 'a') }, reference);
    const progress = await a.replay(capture);
    expect(progress.ingested).toBeGreaterThan(5000);
    expect(progress.processed).toBe(progress.ingested);
    const first = await allOutputs(a);
    expect(first.usage?.length).toBeGreaterThan(1000);
    expect(first.events?.length).toBeGreaterThan(1000);
    const blocked = (first['organisation-events'] ?? []).map((e) => JSON.parse(e));
    expect(blocked.map((e) => [e.event_type.id, e.organisation.id, e.endpoint])).toEqual([
      [12, reference.organisations[0]?.id, null],
    ]);
    const endpoints = reference.fleets
      ?.filter((f) => f.organisation_id === reference.organisations[0]?.id)
      .reduce((n, f) => n + f.count, 0);
    expect(first['organisation-enforcement']?.length).toBe(endpoints);
    const again = await a.replay(capture);
    expect(again.ingested).toBe(0);
    expect(await allOutputs(a)).toEqual(first);
    await a.close();

    const b = await EmbeddedEngine.open({ dataDir: join(dir, 'b'), batchSize: 777 }, reference);
    await b.replay(capture);
    expect(await allOutputs(b)).toEqual(first);
    await b.close();

    // ClickHouse holds every usage record once, identical in both stores, and costs add up exactly.
    let exact = 0n;
    for (const line of first.usage ?? []) exact += parseDecimal(usageFromJson(line).cost);
    const tables: string[][] = [];
    for (const name of ['a', 'b']) {
      const store = await openStore({ kind: 'embedded', dataDir: join(dir, name, 'clickhouse') });
      const usage = await store.query('SELECT * FROM usage_records ORDER BY id', 'TSV');
      const events = await store.query('SELECT * FROM events ORDER BY id', 'TSV');
      const [totals] = await store.query(
        'SELECT count() AS n, uniqExact(id) AS ids, toString(sum(cost)) AS cost FROM usage_records',
      );
      const [rollup] = await store.query(
        'SELECT toString(sum(cost)) AS cost, sum(records) AS records FROM usage_daily',
      );
      await store.close();
      expect(totals).toEqual({
        n: String(first.usage?.length),
        ids: String(first.usage?.length),
        cost: formatDecimal(exact),
      });
      expect(rollup).toEqual({ cost: formatDecimal(exact), records: String(first.usage?.length) });
      tables.push([usage, events]);
    }
    expect(tables[1]).toEqual(tables[0]);
  });
});

describe('paced replay (--speed)', () => {
  it('feeds records at N times their own pace, with the same outputs as at full speed', async () => {
    const small = generateReferenceData({ devices: 60, seed: 4 });
    const path = join(dir, 'paced.ndjson');
    await runSimulation({
      reference: small,
      seed: 4,
      start: Date.UTC(2026, 0, 5),
      durationMs: 2 * 3_600_000,
      out: path,
    });
    const fast = await EmbeddedEngine.open({ dataDir: join(dir, 'paced-max') }, small);
    await fast.replay(path);
    const expected = await allOutputs(fast);
    await fast.close();
    const paced = await EmbeddedEngine.open({ dataDir: join(dir, 'paced-3600') }, small);
    const began = performance.now();
    // Two virtual hours at 3600x: about two seconds, and never sooner than the capture's span allows.
    await paced.replay(path, undefined, { speed: 3600 });
    const seconds = (performance.now() - began) / 1000;
    const lines = readFileSync(path, 'utf8').split('\n');
    const times = lines
      .map((l) => Number(/"(?:timeOfLastUsage|timestamp)":(\d+)/.exec(l)?.[1]))
      .filter((t) => t > 0);
    expect(seconds).toBeGreaterThanOrEqual((Math.max(...times) - Math.min(...times)) / 3600 / 1000 - 0.06);
    expect(await allOutputs(paced)).toEqual(expected);
    await paced.close();
  });
});

describe('live loop (npm start)', () => {
  it("hands the engine's enforcement commands to the core, whose blocked devices are then rejected; its capture replays to the same outputs", async () => {
    const options = { seed: 21, start: Date.UTC(2026, 0, 5), durationMs: 12 * 3_600_000 };
    const sim = new CoreSimulator({ directory: new Directory(reference), ...options });
    const path = join(dir, 'live.ndjson');
    const capture = CaptureWriter.open(
      path,
      simulationHeader(reference, sim, { ...options, enforcement: 'from the engine' }),
    );
    const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'live') }, reference);
    const live = await runLive({ sim, engine, stepMs: 15 * 60_000, capture });
    const outputs = await allOutputs(engine);
    await engine.close();

    // The organisation over its cost limit: one BLOCK per endpoint, all applied by the core.
    const blocks = (outputs['organisation-enforcement'] ?? []).map((c) => JSON.parse(c));
    expect(blocks.length).toBeGreaterThan(0);
    expect(new Set(blocks.map((c) => c.action))).toEqual(new Set(['BLOCK']));
    expect(live.commands).toBe(blocks.length + (outputs.enforcement?.length ?? 0));
    expect(sim.stats.enforcementApplied).toBe(live.commands);
    // The same core without the engine's commands rejects fewer attempts as not allowed.
    const open = new CoreSimulator({ directory: new Directory(reference), ...options });
    const sink: RawRecord[] = [];
    while (open.generate(sink, 100_000)) sink.length = 0;
    const notAllowed = (s: CoreSimulator) =>
      Object.entries(s.stats.rejected)
        .filter(([k]) => k.endsWith(':SERVICE_NOT_ALLOWED'))
        .reduce((n, [, v]) => n + v, 0);
    expect(notAllowed(sim)).toBeGreaterThan(notAllowed(open));

    // The capture holds what the core sent: replayed, it gives the same outputs.
    const replayed = await EmbeddedEngine.open({ dataDir: join(dir, 'live-replay') }, reference);
    expect((await replayed.replay(path)).processed).toBe(live.processed);
    expect(await allOutputs(replayed)).toEqual(outputs);
    await replayed.close();
  });
});

describe('bad input through the engine', () => {
  it('dead-letters truncated lines, wrong types, unknown IMSIs and garbage with reasons; the records around them are processed', async () => {
    const clean = join(dir, 'clean.ndjson');
    await runSimulation({
      reference,
      seed: 5,
      start: Date.UTC(2026, 0, 5),
      durationMs: 3 * 3_600_000,
      out: clean,
    });
    const lines = readFileSync(clean, 'utf8').split('\n');
    const cdr = lines.find((l) => l.includes('"kind":"data_cdr"')) as string;
    const bad = [
      cdr.slice(0, 60), // truncated
      cdr.replace(/"dataVolumeUplink":\d+/, '"dataVolumeUplink":"lots"'), // wrong type
      cdr.replace(/"servedIMSI":"\d+"/, '"servedIMSI":"001019999999999"'), // unknown IMSI
      '\u0000\u00ff\u0013garbage\u0001', // garbage bytes
      '{"kind":"fax","record":{}}', // unknown kind
      cdr.replace(/"timeOfLastUsage":\d+/, `"timeOfLastUsage":${Date.UTC(2099, 0, 1)}`), // a wrong clock
    ];
    const dirty = join(dir, 'dirty.ndjson');
    // Last of all, a wrong clock no record follows: held back, in the summary.
    const last = cdr.replace(/"timeOfLastUsage":\d+/, `"timeOfLastUsage":${Date.UTC(2098, 0, 1)}`);
    const mixed = [...lines.slice(0, 200), ...bad, ...lines.slice(200).filter((l) => l !== ''), last];
    writeFileSync(dirty, mixed.join('\n'));

    const results: Record<string, unknown>[][] = [];
    for (const [name, file] of [
      ['clean-run', clean],
      ['dirty-run', dirty],
    ] as const) {
      const engine = await EmbeddedEngine.open({ dataDir: join(dir, name) }, reference);
      await engine.replay(file);
      const store = engine.store;
      results.push([
        ...(await store.query('SELECT count() AS n, toString(sum(cost)) AS cost FROM usage_records')),
        ...(await store.query(
          'SELECT groupArray(reason_code) AS codes FROM (SELECT reason_code FROM dead_letters ORDER BY reason_code)',
        )),
      ]);
      expect((await summarise(engine)).held_back).toBe(name === 'dirty-run' ? 1 : undefined);
      if (name === 'dirty-run') {
        const reasons = await store.query(
          'SELECT reason_code, reason, record_kind FROM dead_letters ORDER BY reason_code, reason',
        );
        expect(reasons.map((r) => r.reason_code)).toEqual([
          'FUTURE_TIMESTAMP',
          'MALFORMED_JSON',
          'MALFORMED_JSON',
          'SCHEMA_MISMATCH',
          'UNKNOWN_IMSI',
          'UNKNOWN_KIND',
        ]);
        expect(String(reasons.find((r) => r.reason_code === 'SCHEMA_MISMATCH')?.reason)).toContain(
          'invalid dataVolumeUplink (got "lots")',
        );
        expect(String(reasons.find((r) => r.reason_code === 'UNKNOWN_IMSI')?.reason)).toBe(
          'IMSI 001019999999999 belongs to no SIM in the reference data',
        );
        // Rejected while a later record was applied, it keeps its own position and text.
        const [future] = await store.query(
          "SELECT record_kind, payload, partition, offset FROM dead_letters WHERE reason_code = 'FUTURE_TIMESTAMP'",
        );
        expect(future?.record_kind).toBe('data_cdr');
        expect(String(future?.payload)).toContain(`"timeOfLastUsage":${Date.UTC(2099, 0, 1)}`);
        const [held] = await engine.log
          .topic('raw', 4)
          .then((raw) => raw.read(Number(future?.partition), Number(future?.offset), 1));
        expect(held?.value.toString('utf8')).toContain(`"timeOfLastUsage":${Date.UTC(2099, 0, 1)}`);
      }
      await engine.close();
    }
    // Same usage and cost as without the bad lines (the unknown IMSI's record is a copy of a valid one).
    expect(results[1]?.[0]).toEqual(results[0]?.[0]);
    expect(results[0]?.[1]).toEqual({ codes: [] });
  });
});

describe('commands from outside (the API)', () => {
  it('are processed by an engine reopened over its data, stamped in its own timeline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ds-engine-submit-'));
    const reference = generateReferenceData({ devices: 60, seed: 31 });
    const first = await replayedEngine(dir, reference, { seed: 31, hours: 2 });
    const lastEvent = first.eventClock();
    await first.close();
    expect(lastEvent).toBeGreaterThan(T0);

    const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'engine') });
    try {
      // The fold's clock is back from the snapshots: a command joins the engine's timeline, not today's.
      expect(engine.eventClock()).toBe(lastEvent);
      const endpoint = engine.directory.endpointId(0);
      await engine.submit([
        {
          ...quotaAssign(0, endpoint).record,
          command_id: 'api-reopened',
          timestamp: lastEvent as number,
        } as EngineCommand,
      ]);
      expect(engine.quotaOf(endpoint, 'DATA')?.quota).toMatchObject({
        status: 'ACTIVE',
        remaining: 1048576n,
      });
      // A command the fold refuses comes back with its reason (and is on the dead-letter topic).
      const other = engine.directory.endpointId(1);
      const refused = await engine.submit([
        {
          ...quotaAssign(1, other).record,
          command_id: 'api-top-up',
          type: 'QUOTA_TOP_UP',
          timestamp: lastEvent as number,
        } as EngineCommand,
      ]);
      expect(refused).toEqual([
        { command_id: 'api-top-up', reason: expect.stringContaining('has no DATA quota to top up') },
      ]);
    } finally {
      await engine.close();
    }
  }, 60_000);
});

describe('a live engine', () => {
  it('does not let a usage partition with nothing in it hold up the organisation cost limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ds-engine-idle-'));
    // One device: its records all go to partition 0 of 4, the other three never get usage.
    const one = generateReferenceData({ devices: 1, seed: 41 });
    for (const organisation of one.organisations)
      (organisation as { monthly_cost_limit?: string }).monthly_cost_limit = '0.000001';
    const capture = join(dir, 'capture.ndjson');
    await runSimulation({ reference: one, seed: 41, start: T0, durationMs: 6 * 3_600_000, out: capture });
    const lines = readFileSync(capture, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{"kind":"') && !/^\{"kind":"(header|trailer)"/.test(line));
    const blocks = async (engine: EmbeddedEngine) =>
      ((await allOutputs(engine))['organisation-events'] ?? []).map((e) => JSON.parse(e).event_type.id);

    // Waiting for every partition, as a replay does: nothing, however long it runs.
    const waiting = await EmbeddedEngine.open({ dataDir: join(dir, 'waiting') }, one);
    await waiting.ingest(lines);
    await waiting.process();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await waiting.process();
    expect(await blocks(waiting)).toEqual([]);
    // Until the end of the input: then the organisation is blocked.
    await waiting.finish();
    expect(await blocks(waiting)).toEqual([12]);
    await waiting.close();

    // Live: once the empty partitions have had nothing for 50 ms, the merge goes on without them.
    const live = await EmbeddedEngine.open({ dataDir: join(dir, 'live'), organisationIdleMs: 50 }, one);
    await live.ingest(lines);
    await live.process();
    expect(await blocks(live)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await live.process();
    expect(await blocks(live)).toEqual([12]);
    await live.close();
  });
});
