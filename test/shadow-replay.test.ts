/**
 * Shadow replay (docs/shadow-replay.md) against a real ClickHouse HTTP interface (over
 * chDB): a "live" engine stores a capture there; `replay --shadow ORG=SHADOW --config`
 * (the built CLI, in a process of its own) replays ORG's traffic as SHADOW into the same
 * store. The live rows stay as they were, even after merges; SHADOW gets exactly ORG's
 * events and usage; a repeat adds nothing.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { routeOfLine } from '../src/engine/ingest.js';
import { StoreWriter } from '../src/engine/store-writer.js';
import { parseShadowMappings, ShadowFilter, shadowReference } from '../src/lab/shadow.js';
import { openEmbeddedLog } from '../src/log/index.js';
import { recordsFrom } from '../src/log/read.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { openStore, type Store } from '../src/storage/index.js';
import { captureWithQuotas, cli, T0 } from './fixtures.js';
import { type ClickHouseHttp, startClickHouseHttp } from './support/clickhouse-http.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-shadow-'));
const reference = generateReferenceData({ devices: 600, seed: 31, organisations: 3 });
const [ORG, OTHER] = reference.organisations.map((o) => o.id) as [number, number, number];
// A low cost limit: the organisation stage blocks ORG during the replay (an organisation-level event).
(reference.organisations[0] as { monthly_cost_limit?: string }).monthly_cost_limit = '0.05';
const SHADOW = 91001;
const capture = join(dir, 'capture.ndjson');
const config = join(dir, 'deployment.yaml');

/** The capture replayed with ORG shadowed as SHADOW into the deployment of `config`. */
const shadowReplay = (...args: string[]) =>
  cli('replay', capture, '--shadow', `${ORG}=${SHADOW}`, '--config', config, ...args);

/** The organisation of a capture line, routed as the ingestor routes it; undefined for none. */
const directory = new Directory(reference);
function organisationOf(line: string): number | undefined {
  const { partition, key } = routeOfLine(line, directory, Number.MAX_SAFE_INTEGER);
  return key === null ? undefined : directory.endpoint(partition).organisation_id;
}

let clickhouse: ClickHouseHttp | undefined;
let live: EmbeddedEngine | undefined;
let startFailure: Error | undefined;

beforeAll(async () => {
  await captureWithQuotas(capture, reference, { seed: 31, hours: 6, every: 9 });
  // Dead letters of the live run: a CDR of ORG and one of OTHER in an unknown network, and
  // two lines of no organisation (an unknown IMSI, garbage).
  const lines = readFileSync(capture, 'utf8').split('\n');
  const cdrOf = (org: number) =>
    lines.find((l) => l.startsWith('{"kind":"data_cdr"') && organisationOf(l) === org) as string;
  const unknownNetwork = (line: string, charging: number) =>
    line
      .replace(/"servingNodePLMNIdentifier":"\d+"/, '"servingNodePLMNIdentifier":"99999"')
      .replace(/"chargingID":\d+/, `"chargingID":${charging}`);
  lines.splice(
    lines.findIndex((l) => l.startsWith('{"kind":"trailer"')),
    0,
    unknownNetwork(cdrOf(ORG), 999_000_001),
    unknownNetwork(cdrOf(OTHER), 999_000_002),
    cdrOf(ORG).replace(/"servedIMSI":"\d{15}"/, '"servedIMSI":"001019999999999"'),
    'not a capture line',
  );
  writeFileSync(capture, lines.join('\n'));
  writeFileSync(join(dir, 'reference.json'), JSON.stringify(reference));
  try {
    clickhouse = await startClickHouseHttp({ dataDir: join(dir, 'clickhouse') });
  } catch (error) {
    startFailure = error as Error;
    return;
  }
  writeFileSync(
    config,
    [
      'mode: distributed',
      `dataDir: ${join(dir, 'live')}`,
      'partitions: 4',
      `reference: ${join(dir, 'reference.json')}`,
      'kafka:',
      '  brokers: [127.0.0.1:9]',
      'clickhouse:',
      `  url: ${clickhouse.url}`,
      '  database: data_streamer',
      '',
    ].join('\n'),
  );
  // The running deployment: an engine writing the same ClickHouse server.
  live = await EmbeddedEngine.open(
    {
      dataDir: join(dir, 'live'),
      partitions: 4,
      store: { kind: 'server', url: clickhouse.url, database: 'data_streamer' },
    },
    reference,
  );
  await live.replay(capture);
}, 300_000);

afterAll(async () => {
  await live?.close();
  await clickhouse?.close();
});

function liveEngine(): EmbeddedEngine {
  if (!live || !clickhouse)
    throw new Error(
      `the ClickHouse HTTP test server did not start: ${startFailure?.message ?? 'unknown'}; chDB must load (npm install)`,
    );
  return live;
}

/** Merges every part now: a row that a shadow row could replace is gone after this. */
async function optimize(): Promise<void> {
  for (const table of ['events', 'usage_records', 'usage_daily', 'dead_letters']) {
    const answer = await fetch(`${clickhouse?.url}/?database=data_streamer`, {
      method: 'POST',
      body: `OPTIMIZE TABLE ${table} FINAL`,
    });
    expect(answer.status, await answer.text()).toBe(200);
  }
}

type Row = Record<string, unknown>;

/** What the store holds, per organisation (usage, events, daily rollup) and per dead-letter source. */
async function totals(store: Store): Promise<{ usage: Row[]; events: Row[]; daily: Row[]; dead: Row[] }> {
  return {
    usage: await store.query(
      `SELECT toString(organisation_id) AS org, toString(currency) AS currency, toString(traffic_type) AS type,
        toString(count()) AS records, toString(sum(cost)) AS cost, toString(sum(volume_total)) AS mb,
        toString(sum(volume_bytes_total)) AS bytes, toString(uniqExact(endpoint_id)) AS endpoints
       FROM usage_records GROUP BY org, currency, type ORDER BY org, currency, type`,
    ),
    events: await store.query(
      `SELECT toString(organisation_id) AS org, toString(event_type) AS type, toString(count()) AS n
       FROM events GROUP BY org, type ORDER BY org, type`,
    ),
    daily: await store.query(
      `SELECT toString(organisation_id) AS org, toString(day) AS day, toString(currency) AS currency,
        toString(sum(records)) AS records, toString(sum(cost)) AS cost, toString(sum(volume_total)) AS mb
       FROM usage_daily GROUP BY org, day, currency ORDER BY org, day, currency`,
    ),
    dead: await store.query(
      `SELECT toString(source) AS source, toString(reason_code) AS reason, toString(count()) AS n, toString(sum(id)) AS ids
       FROM dead_letters GROUP BY source, reason ORDER BY source, reason`,
    ),
  };
}

const of = (rows: Row[], org: number) =>
  rows.filter((r) => r.org === String(org)).map(({ org: _, ...rest }) => rest);
const without = (rows: Row[], org: number) => rows.filter((r) => r.org !== String(org));

/** The insert tokens the HTTP server saw, from request `from` on. */
function tokens(from: number): string[] {
  return (clickhouse?.requests ?? [])
    .slice(from)
    .map((r) => /insert_deduplication_token = '([^']*)'/.exec(r.params.query ?? '')?.[1])
    .filter((t): t is string => t !== undefined && t !== '');
}

interface ShadowJson {
  data_dir: string;
  records_in: number;
  skipped: { records: number; by_organisation: Record<string, number>; without_organisation: number };
  dead_letters: Record<string, number>;
  usage_records: { data: number; sms: number };
  cost: Record<string, string>;
  ingested_now: number;
}

describe('replay --shadow ORG=SHADOW --config FILE', () => {
  let before: Awaited<ReturnType<typeof totals>>;
  let first: ShadowJson;
  let firstTokens: string[];
  const shadowDir = join(dir, 'shadow');

  it('adds SHADOW with exactly the events and usage of ORG, and changes nothing of the live data', async () => {
    const store = liveEngine().store;
    await optimize();
    before = await totals(store);
    expect(of(before.usage, ORG).length).toBeGreaterThan(0);
    expect(of(before.usage, OTHER).length).toBeGreaterThan(0);
    expect(of(before.events, ORG)).toContainEqual({ type: '12', n: '1' });

    const requests = clickhouse?.requests.length ?? 0;
    const run = await shadowReplay('--data-dir', shadowDir, '--json');
    expect(run.code, run.stderr).toBe(0);
    first = JSON.parse(run.stdout) as ShadowJson;
    firstTokens = tokens(requests);
    expect(firstTokens.length).toBeGreaterThan(0);
    for (const token of firstTokens)
      expect(token).toMatch(new RegExp(`^shadow:${ORG}=${SHADOW}:[0-9a-f]{12}:`));

    // The filter's count: every line of the capture is either replayed or skipped.
    const lines = readFileSync(capture, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('{"kind":"header"') && !l.startsWith('{"kind":"trailer"'));
    const ownLines = lines.filter((l) => organisationOf(l) === ORG).length;
    expect(first.records_in).toBe(ownLines);
    expect(first.skipped.without_organisation).toBe(2);
    expect(first.skipped.records).toBe(lines.length - ownLines);
    expect(Object.keys(first.skipped.by_organisation).sort()).toEqual(
      reference.organisations
        .map((o) => String(o.id))
        .filter((id) => id !== String(ORG))
        .sort(),
    );

    await optimize();
    const after = await totals(store);
    // The live organisations: as they were, after every merge.
    expect(without(after.usage, SHADOW)).toEqual(before.usage);
    expect(without(after.events, SHADOW)).toEqual(before.events);
    expect(without(after.daily, SHADOW)).toEqual(before.daily);
    expect(after.dead.filter((r) => r.source === 'raw')).toEqual(before.dead);
    // The shadow: ORG's records, to the last digit of cost and volume.
    expect(of(after.usage, SHADOW)).toEqual(of(before.usage, ORG));
    expect(of(after.events, SHADOW)).toEqual(of(before.events, ORG));
    expect(of(after.daily, SHADOW)).toEqual(of(before.daily, ORG));
    // Nothing else was added.
    expect(new Set(after.usage.map((r) => r.org))).toEqual(
      new Set([...before.usage.map((r) => r.org), String(SHADOW)]),
    );
    expect(new Set(after.events.map((r) => r.org))).toEqual(
      new Set([...before.events.map((r) => r.org), String(SHADOW)]),
    );
    // The shadow's organisation name, everywhere.
    const name = `${reference.organisations[0]?.name} (shadow)`;
    for (const table of ['usage_records', 'events'])
      expect(
        await store.query(
          `SELECT DISTINCT JSONExtractString(json, 'organisation', 'name') AS name FROM ${table} WHERE organisation_id = ${SHADOW}`,
        ),
      ).toEqual([{ name }]);
    // The summary agrees with the store.
    const records = of(after.usage, SHADOW).reduce((n, r) => n + Number(r.records), 0);
    expect(first.usage_records.data + first.usage_records.sms).toBe(records);

    // Dead letters: the ones of ORG's records, once more under the shadow's source.
    const expected: Record<string, number> = {};
    const deadLetters = liveEngine().outputTopic('dead-letters');
    for (let p = 0; p < deadLetters.partitions; p++)
      for await (const record of recordsFrom(deadLetters, p, 0)) {
        const letter = JSON.parse(record.value.toString('utf8')) as { reason_code: string; payload: string };
        if (organisationOf(letter.payload) === ORG)
          expected[letter.reason_code] = (expected[letter.reason_code] ?? 0) + 1;
      }
    const shadowDead = Object.fromEntries(
      after.dead.filter((r) => r.source === `shadow:${SHADOW}:raw`).map((r) => [r.reason, Number(r.n)]),
    );
    expect(expected).toMatchObject({ UNKNOWN_NETWORK: 1 });
    expect(shadowDead).toEqual(expected);
    expect(first.dead_letters).toEqual(expected);
    expect(after.dead.every((r) => r.source === 'raw' || r.source === `shadow:${SHADOW}:raw`)).toBe(true);
  }, 300_000);

  it('run again adds nothing, in the same data dir and in a fresh one (same tokens, dropped by ClickHouse)', async () => {
    const store = liveEngine().store;
    const stored = await totals(store);
    // The text summary this time.
    const again = await shadowReplay('--data-dir', shadowDir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/\(0 records new, /);
    expect(again.stdout).toContain(
      `${ORG} ${reference.organisations[0]?.name} -> ${SHADOW} ${reference.organisations[0]?.name} (shadow)`,
    );
    expect(again.stdout).toMatch(
      new RegExp(
        `skipped +${first.skipped.records.toLocaleString('en-US')}: other organisations .*; no organisation 2`,
      ),
    );
    expect(await totals(store)).toEqual(stored);

    const requests = clickhouse?.requests.length ?? 0;
    const fresh = await shadowReplay('--json');
    expect(fresh.code, fresh.stderr).toBe(0);
    const result = JSON.parse(fresh.stdout) as ShadowJson;
    expect(result.data_dir).not.toBe(shadowDir);
    expect(fresh.stderr).toContain(result.data_dir);
    expect(result.cost).toEqual(first.cost);
    expect(tokens(requests).sort()).toEqual([...firstTokens].sort());
    // The rollup sums every insert it sees: a repeat that got through would double it.
    expect(await totals(store)).toEqual(stored);
  }, 300_000);

  it('refuses arguments that cannot work, naming the problem, before writing anything', async () => {
    liveEngine();
    const embedded = join(dir, 'embedded.yaml');
    writeFileSync(embedded, `mode: embedded\ndataDir: ${join(dir, 'live')}\n`);
    const requests = clickhouse?.requests.length ?? 0;
    const cases: [string[], RegExp][] = [
      [['--shadow', `999=${SHADOW + 1}`, '--config', config], /organisation 999 is not in the capture/],
      [
        ['--shadow', `${ORG}=${OTHER}`, '--config', config],
        new RegExp(`${OTHER} is already an organisation`),
      ],
      [
        ['--shadow', `${ORG}=91002,${ORG}=91003`, '--config', config],
        new RegExp(`organisation ${ORG} is mapped twice`),
      ],
      [['--shadow', `${ORG}=91002,${OTHER}=91002`, '--config', config], /shadow id 91002 is given twice/],
      [['--shadow', `${ORG}:91002`, '--config', config], /is not ORG=SHADOW/],
      [['--shadow', `${ORG}=`, '--config', config], /is not ORG=SHADOW/],
      [['--shadow', `${ORG}=0`, '--config', config], /is not ORG=SHADOW/],
      [['--shadow', `${ORG}=91002`], /--shadow needs --config FILE/],
      [['--shadow', `${ORG}=91002`, '--config', embedded], /mode embedded: its store is the chDB/],
      [
        ['--shadow', `${ORG}=91002`, '--config', config, '--data-dir', join(dir, 'live')],
        /the deployment's own dataDir/,
      ],
      [['--shadow', `${ORG}=91002`, '--config', config, '--tariff', capture], /leave out --diff, --tariff/],
      // 91001 holds the shadow of ORG: no other organisation's.
      [
        ['--shadow', `${OTHER}=${SHADOW}`, '--config', config, '--data-dir', join(dir, 'other')],
        new RegExp(
          `organisation ${SHADOW} already has usage records .* not a shadow of organisation ${OTHER}`,
        ),
      ],
    ];
    for (const [args, message] of cases) {
      const run = await cli('replay', capture, ...args);
      expect(run.code, `${args.join(' ')}: ${run.stdout}`).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
    expect(tokens(requests)).toEqual([]);
  }, 120_000);
});

describe('the pieces', () => {
  it('the shadow reference moves ORG and its endpoints to SHADOW and keeps every endpoint index', () => {
    const shadow = shadowReference(reference, parseShadowMappings(`${ORG}=${SHADOW}`));
    expect(shadow.organisations.map((o) => o.id)).toEqual(
      reference.organisations.map((o) => (o.id === ORG ? SHADOW : o.id)),
    );
    const [a, b] = [new Directory(reference), new Directory(shadow)];
    expect(b.endpointCount).toBe(a.endpointCount);
    for (let i = 0; i < a.endpointCount; i += 7) {
      expect(b.endpointId(i)).toBe(a.endpointId(i));
      const owner = a.endpoint(i).organisation_id;
      expect(b.endpoint(i).organisation_id).toBe(owner === ORG ? SHADOW : owner);
    }
    const filter = new ShadowFilter(a, parseShadowMappings(`${ORG}=${SHADOW}`));
    expect(filter.keep('{"kind":"command","record":{"endpoint_id":123456789}}')).toBe(false);
    expect(filter.skipped).toEqual({ records: 1, by_organisation: {}, without_organisation: 1 });
  });

  it('a shadow writer stores only whole aligned ranges until the input is complete, with prefixed tokens and sources', async () => {
    liveEngine();
    const store = await openStore({
      kind: 'server',
      url: clickhouse?.url as string,
      database: 'shadow_writer',
    });
    await store.migrate();
    const letter = (offset: number) => ({
      key: null,
      timestamp: T0,
      value: Buffer.from(
        JSON.stringify({
          id: offset * 64,
          timestamp: T0,
          stage: 'validate',
          reason_code: 'NOT_JSON',
          reason: 'test',
          source: 'raw',
          partition: 0,
          offset,
          record_kind: null,
          payload: `line ${offset}`,
        }),
      ),
    });
    /** Stores 37 dead letters appended in `steps`, draining after each; returns the tokens, in order. */
    async function run(
      name: string,
      steps: number[],
      shadow: boolean,
    ): Promise<{ drained: number[]; tokens: string[] }> {
      const log = await openEmbeddedLog({
        dir: join(dir, name, 'log'),
        retentionMs: Number.POSITIVE_INFINITY,
      });
      const topic = await log.topic('dead-letters', 1);
      let complete = false;
      const writer = new StoreWriter(
        log,
        [{ topic, kind: 'dead-letters' }],
        store,
        join(dir, name, 'intents'),
        undefined,
        10,
        shadow
          ? { tokenPrefix: 'shadow:t:', sourcePrefix: `shadow:${SHADOW}`, complete: () => complete }
          : undefined,
      );
      const from = clickhouse?.requests.length ?? 0;
      const drained: number[] = [];
      let offset = 0;
      for (const n of steps) {
        await topic.append(
          0,
          Array.from({ length: n }, () => letter(offset++)),
        );
        drained.push(await writer.drain());
      }
      complete = true;
      drained.push(await writer.drain());
      await log.close();
      return { drained, tokens: tokens(from) };
    }
    const a = await run('writer-a', [25, 12], true);
    expect(a.drained).toEqual([20, 10, 7]);
    expect(a.tokens).toEqual([
      'shadow:t:dead-letters:p0:0-10',
      'shadow:t:dead-letters:p0:10-20',
      'shadow:t:dead-letters:p0:20-30',
      'shadow:t:dead-letters:p0:30-37',
    ]);
    const b = await run('writer-b', [37], true);
    expect(b.drained).toEqual([30, 7]);
    expect(b.tokens).toEqual(a.tokens);
    expect(
      await store.query(
        'SELECT toString(source) AS source, toString(count()) AS n FROM dead_letters GROUP BY source',
      ),
    ).toEqual([{ source: `shadow:${SHADOW}:raw`, n: '37' }]);
    // Without the option: as before, whatever the input has, in batch-size steps.
    const plain = await run('writer-plain', [25], false);
    expect(plain.drained).toEqual([25, 0]);
    expect(plain.tokens).toEqual(['dead-letters:p0:0-10', 'dead-letters:p0:10-20', 'dead-letters:p0:20-25']);
    await store.close();
  }, 60_000);
});
