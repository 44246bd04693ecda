import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DIFF_HELP, diffCommand } from '../src/cli/commands/diff.js';
import { divideHalfUp, formatDecimal, parseDecimal } from '../src/core/decimal.js';
import { EmbeddedEngine } from '../src/engine/engine.js';
import {
  type DiffRecord,
  type DiffReport,
  diffDataDirs,
  diffRecords,
  formatDifference,
  parseExactJson,
  recordChanges,
} from '../src/lab/diff.js';
import { generateReferenceData } from '../src/reference/generator.js';
import type { ReferenceData } from '../src/reference/types.js';
import { referenceSha256, runSimulation } from '../src/simulator/run.js';
import { DataStreamerError, UsageError } from '../src/util/errors.js';
import { allOutputs } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-diff-'));
const A = join(dir, 'a');
const A2 = join(dir, 'a-again');
const TARIFF = join(dir, 'tariff');
const DROPPED = join(dir, 'dropped');

/** Reference data without organisation cost limits: a tariff change then changes costs and nothing else. */
function reference(): ReferenceData {
  const data = generateReferenceData({ devices: 40, seed: 7 });
  for (const organisation of data.organisations)
    delete (organisation as { monthly_cost_limit?: string }).monthly_cost_limit;
  return data;
}

/** A capture file from its lines, with a header for `data` (no trailer: replay reads up to the end). */
function writeCapture(path: string, header: Record<string, unknown>, data: ReferenceData, lines: string[]) {
  const head = { ...header, reference_sha256: referenceSha256(data), reference: data };
  writeFileSync(path, `${[JSON.stringify(head), ...lines].join('\n')}\n`);
}

async function replay(capture: string, dataDir: string, data: ReferenceData) {
  const engine = await EmbeddedEngine.open({ dataDir }, data);
  try {
    await engine.replay(capture);
    return await allOutputs(engine);
  } finally {
    await engine.close();
  }
}

interface Usage {
  id: number;
  traffic_type: { id: number };
  tariff: { id: number; ratezone: { id: number } };
  cost: number;
  rating: { rate: string; billable_bytes: number; inclusive: boolean };
}

let outputs: Record<string, string[]>;
let zone: { tariff: number; ratezone: number; old: string; new: string };
let droppedIds: Set<string>;

/** Runs the CLI command in-process and returns its exit code and what it printed. */
async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.join(' '));
  });
  try {
    return { code: await diffCommand(argv), out: lines.join('\n') };
  } finally {
    log.mockRestore();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

beforeAll(async () => {
  const data = reference();
  const capture = join(dir, 'base.ndjson');
  await runSimulation({
    reference: data,
    seed: 7,
    start: Date.UTC(2026, 0, 5),
    durationMs: 8 * 3_600_000,
    out: capture,
  });
  const text = readFileSync(capture, 'utf8').split('\n');
  const header = JSON.parse(text[0] as string) as Record<string, unknown>;
  const lines = text.slice(1).filter((l) => l !== '' && !l.startsWith('{"kind":"trailer"'));

  outputs = await replay(capture, A, data);
  await replay(capture, A2, data);

  // The zone with the most paid data records at its plain rate (no inclusive volume): its rate doubles.
  const tally = new Map<string, number>();
  for (const u of (outputs.usage ?? []).map((l) => JSON.parse(l) as Usage)) {
    const rz = data.tariffs
      .find((t) => t.id === u.tariff.id)
      ?.ratezones.find((z) => z.id === u.tariff.ratezone.id);
    if (u.traffic_type.id !== 5 || u.rating.inclusive || !rz || rz.inclusive_volume) continue;
    const key = `${u.tariff.id}/${u.tariff.ratezone.id}/${u.rating.rate}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  const [best] = [...tally].sort((x, y) => y[1] - x[1]);
  const [tariffId, zoneId, rate] = (best?.[0] ?? '').split('/');
  const changed = structuredClone(data);
  const ratezone = changed.tariffs
    .find((t) => t.id === Number(tariffId))
    ?.ratezones.find((z) => z.id === Number(zoneId));
  if (!ratezone || ratezone.inclusive_volume || ratezone.rates.data_per_mb !== rate)
    throw new Error(`no plain-rate zone found: ${best?.[0]}`);
  const doubled = formatDecimal(parseDecimal(rate as string) * 2n);
  ratezone.rates.data_per_mb = doubled;
  zone = { tariff: Number(tariffId), ratezone: Number(zoneId), old: rate as string, new: doubled };
  const tariffCapture = join(dir, 'tariff.ndjson');
  writeCapture(tariffCapture, header, changed, lines);
  await replay(tariffCapture, TARIFF, changed);

  // The last three lines dropped: what they gave in A is missing, nothing else moves.
  const droppedCapture = join(dir, 'dropped.ndjson');
  writeCapture(droppedCapture, header, data, lines.slice(0, -3));
  await replay(droppedCapture, DROPPED, data);
  // Output ids are (partition x 2^37 + input offset) x 64 + n: the inputs of A's raw log
  // that are the dropped lines give the ids of their outputs.
  const dropped = new Set(lines.slice(-3));
  const inputs = new Set<number>();
  const engine = await EmbeddedEngine.open({ dataDir: A });
  try {
    for (let p = 0; p < engine.raw.partitions; p++)
      for (const record of await engine.raw.read(p, 0, 1_000_000, 2 ** 30))
        if (dropped.has(record.value.toString('utf8'))) inputs.add(p * 2 ** 37 + record.offset);
  } finally {
    await engine.close();
  }
  expect(inputs.size).toBe(3);
  droppedIds = new Set();
  for (const topic of ['events', 'usage', 'enforcement', 'dead-letters'])
    for (const line of outputs[topic] ?? []) {
      const id = (JSON.parse(line) as { id: number }).id;
      if (inputs.has(Math.floor(id / 64))) droppedIds.add(`${topic} ${id}`);
    }
  expect(droppedIds.size).toBeGreaterThan(0);
}, 120_000);

describe('data-streamer diff A B', () => {
  it('finds nothing between two replays of the same capture, and exits 0', async () => {
    const report = await diffDataDirs(A, A2);
    expect(report.identical).toBe(true);
    expect(report.total_differences).toBe(0);
    expect(report.differences).toEqual([]);
    for (const t of report.topics) {
      const n = outputs[t.topic]?.length;
      expect(t, t.topic).toEqual({
        topic: t.topic,
        a: n,
        b: n,
        identical: n,
        changed: 0,
        missing: 0,
        extra: 0,
      });
    }
    expect(report.topics.find((t) => t.topic === 'usage')?.a).toBeGreaterThan(1000);
    // A directory against itself, too (its log is opened once).
    expect((await diffDataDirs(A, A)).identical).toBe(true);
    const { code, out } = await cli(A, A2);
    expect(code).toBe(0);
    expect(out).toContain('identical: every record of every output topic is the same in A and B');
  });

  it('a doubled tariff rate: exactly the paid usage records of that zone changed, in cost and rating.rate, to the exact new cost', async () => {
    const report = await diffDataDirs(A, TARIFF, { limit: 1_000_000 });
    const expected = new Map<string, { cost: string; old: string }>();
    for (const line of outputs.usage ?? []) {
      const u = JSON.parse(line) as Usage;
      if (u.tariff.id !== zone.tariff || u.tariff.ratezone.id !== zone.ratezone || u.rating.rate !== zone.old)
        continue;
      const cost = formatDecimal(
        divideHalfUp(BigInt(u.rating.billable_bytes) * parseDecimal(zone.new), 1_048_576n),
      );
      expected.set(String(u.id), { cost, old: /"cost":([^,]+)/.exec(line)?.[1] as string });
    }
    expect(expected.size).toBeGreaterThan(20);
    for (const t of report.topics) {
      const n = outputs[t.topic]?.length ?? 0;
      const changed = t.topic === 'usage' ? expected.size : 0;
      expect(t, t.topic).toEqual({
        topic: t.topic,
        a: n,
        b: n,
        identical: n - changed,
        changed,
        missing: 0,
        extra: 0,
      });
    }
    expect(report.differences).toHaveLength(expected.size);
    for (const d of report.differences) {
      const want = expected.get(d.key);
      expect(d.kind === 'changed' && d.topic === 'usage' && want, d.key).toBeTruthy();
      if (d.kind !== 'changed' || !want) continue;
      expect(d.fields).toEqual([
        { path: 'cost', old: want.old, new: want.cost },
        { path: 'rating.rate', old: JSON.stringify(zone.old), new: JSON.stringify(zone.new) },
      ]);
    }
    // The terminal report: a summary line per topic and the first 20 differences, one per line.
    const { code, out } = await cli(A, TARIFF);
    expect(code).toBe(1);
    const first = report.differences[0];
    if (first?.kind !== 'changed') throw new Error('expected a changed record first');
    expect(out).toContain(
      `usage ${first.key}: cost ${first.fields[0]?.old} -> ${first.fields[0]?.new}; rating.rate "${zone.old}" -> "${zone.new}"`,
    );
    expect(out).toMatch(
      new RegExp(`^usage +[\\d,]+ +[\\d,]+ +[\\d,]+ +${expected.size.toLocaleString('en-US')} +0 +0$`, 'm'),
    );
    expect(out).toContain(`${expected.size.toLocaleString('en-US')} differences; the first 20:`);
    expect(out.split('\n').filter((l) => l.startsWith('  usage '))).toHaveLength(20);
  });

  it('three dropped lines: what they gave is missing (and extra the other way round), nothing else differs', async () => {
    const report = await diffDataDirs(A, DROPPED, { limit: 1_000 });
    const missing = report.differences.filter((d) => d.kind === 'missing').map((d) => `${d.topic} ${d.key}`);
    expect(new Set(missing)).toEqual(droppedIds);
    expect(report.total_differences).toBe(droppedIds.size);
    for (const t of report.topics) {
      const gone = [...droppedIds].filter((k) => k.startsWith(`${t.topic} `)).length;
      expect(t, t.topic).toMatchObject({ changed: 0, extra: 0, missing: gone, b: t.a - gone });
    }
    const back = await diffDataDirs(DROPPED, A, { limit: 1_000 });
    expect(new Set(back.differences.map((d) => `${d.kind} ${d.topic} ${d.key}`))).toEqual(
      new Set([...droppedIds].map((k) => `extra ${k}`)),
    );
    const { code, out } = await cli(DROPPED, A, '--json');
    expect(code).toBe(1);
    const json = JSON.parse(out) as DiffReport;
    expect(json.identical).toBe(false);
    expect(json.total_differences).toBe(droppedIds.size);
    const extra = json.differences.find((d) => d.kind === 'extra');
    expect(extra && formatDifference(extra)).toMatch(
      /^\w[\w-]* \d+: extra \(in B at \d+:\d+, not in A\): \{"id":/,
    );
  });

  it('takes --limit, --topic and --json, and names the flag or directory that is wrong', async () => {
    expect(await cli('--help')).toEqual({ code: 0, out: DIFF_HELP });
    expect(DIFF_HELP).toMatch(/Exit code: 0 when A and B hold the same records, 1 when they differ/);
    const summaryOnly = await cli(A, TARIFF, '--limit', '0');
    expect(summaryOnly.code).toBe(1);
    expect(summaryOnly.out).not.toContain('  usage ');
    const usageOnly = JSON.parse((await cli(A, TARIFF, '--topic', 'usage', '--json', '--limit', '3')).out);
    expect(usageOnly.topics.map((t: { topic: string }) => t.topic)).toEqual(['usage']);
    expect(usageOnly.differences).toHaveLength(3);
    const two = JSON.parse(
      (await cli(A, DROPPED, '--topic', 'events', '--topic', 'dead-letters', '--json')).out,
    );
    expect(two.topics.map((t: { topic: string }) => t.topic)).toEqual(['events', 'dead-letters']);
    expect((await cli(A, TARIFF, '--topic', 'events')).code).toBe(0);

    const usage = async (argv: string[], message: RegExp) => {
      const error = await diffCommand(argv).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    };
    await usage([], /give two data directories, A and B \(got 0/);
    await usage([A], /give two data directories, A and B \(got 1/);
    await usage([A, A2, TARIFF], /got 3/);
    await usage([A, A2, '--limit=-1'], /--limit: must be from 0/);
    await usage([A, A2, '--limit', 'many'], /--limit: "many" is not an integer/);
    await usage([A, A2, '--topic', 'raw'], /--topic: "raw" is not an output topic/);
    await usage([A, A2, '--colour'], /diff: Unknown option '--colour'/);

    const failure = async (a: string, b: string) =>
      diffDataDirs(a, b).then(
        () => undefined,
        (e: unknown) => e as DataStreamerError,
      );
    const nowhere = join(dir, 'nowhere');
    expect(await failure(A, nowhere)).toMatchObject({
      code: 'DIFF_DATA_DIR_NOT_FOUND',
      message: `diff: B (${nowhere}) does not exist`,
    });
    const plain = join(dir, 'plain-folder');
    mkdirSync(plain);
    const notData = await failure(plain, A);
    expect(notData).toBeInstanceOf(DataStreamerError);
    expect(notData).toMatchObject({ code: 'DIFF_NOT_A_DATA_DIR' });
    expect(notData?.message).toContain(`A (${plain}) is not an engine data directory`);
    // A's log was closed when B could not be opened: A opens again.
    expect((await diffDataDirs(A, A2)).identical).toBe(true);
  });
});

describe('record comparison', () => {
  const records = (...values: string[]): AsyncIterable<DiffRecord> =>
    (async function* () {
      let offset = 0;
      for (const value of values) yield { partition: 0, offset: offset++, value: Buffer.from(value) };
    })();

  it('compares numbers by their digits, fields by path, arrays by index', () => {
    expect(recordChanges('{"id":1,"cost":0.10}', '{"id":1,"cost":0.1}')).toEqual([
      { path: 'cost', old: '0.10', new: '0.1' },
    ]);
    // Digits a float would lose are kept.
    expect(
      recordChanges('{"a":12345678901234567890.1234567891}', '{"a":12345678901234567890.1234567892}'),
    ).toEqual([
      { path: 'a', old: '12345678901234567890.1234567891', new: '12345678901234567890.1234567892' },
    ]);
    expect(
      recordChanges(
        '{"id":1,"x":{"tapcode":[{"id":1},{"id":2}],"gone":true},"odd key":1}',
        '{"id":1,"x":{"tapcode":[{"id":1},{"id":3},{"id":4}]},"odd key":2,"new":null}',
      ),
    ).toEqual([
      { path: 'x.tapcode[1].id', old: '2', new: '3' },
      { path: 'x.tapcode[2]', new: '{"id":4}' },
      { path: 'x.gone', old: 'true' },
      { path: '["odd key"]', old: '1', new: '2' },
      { path: 'new', new: 'null' },
    ]);
    // Same fields and values in another order: the bytes differ, so the record does.
    expect(recordChanges('{"a":1,"b":2}', '{"b":2,"a":1}')).toEqual([
      { path: '', old: '{"a":1,"b":2}', new: '{"b":2,"a":1}' },
    ]);
    expect(recordChanges('not json', '{"a":1}')).toEqual([{ path: '', old: 'not json', new: '{"a":1}' }]);
    expect(() => parseExactJson('{"a":1,}')).toThrow(SyntaxError);
    expect(() => parseExactJson('{"a":01}')).toThrow(SyntaxError);
    expect(parseExactJson(' ["\\u00e9\\"", -1.5e3, true, false, null, {}] ')).toEqual([
      'é"',
      expect.objectContaining({ text: '-1.5e3' }),
      true,
      false,
      null,
      {},
    ]);
  });

  it('matches by id across shifts, by command_id, or by position', async () => {
    const { summary, differences } = await diffRecords(
      'events',
      records('{"id":1,"v":1}', '{"id":2,"v":1}', '{"id":3,"v":1}', '{"id":4,"v":1}'),
      records('{"id":1,"v":1}', '{"id":9,"v":1}', '{"id":2,"v":1}', '{"id":4,"v":2}', '{"id":3,"v":1}'),
      10,
    );
    expect(summary).toEqual({ topic: 'events', a: 4, b: 5, identical: 3, changed: 1, missing: 0, extra: 1 });
    expect(differences.map((d) => [d.kind, d.key])).toEqual([
      ['extra', '9'],
      ['changed', '4'],
    ]);
    const commands = await diffRecords(
      'enforcement',
      records('{"command_id":"enf-1","action":"BLOCK"}', '{"command_id":"enf-2","action":"BLOCK"}'),
      records('{"command_id":"enf-2","action":"UNBLOCK"}'),
      10,
    );
    expect(
      commands.differences.map((d) => (d.kind === 'changed' ? [d.key, d.fields] : [d.kind, d.key])),
    ).toEqual([
      ['missing', 'enf-1'],
      ['enf-2', [{ path: 'action', old: '"BLOCK"', new: '"UNBLOCK"' }]],
    ]);
    const positions = await diffRecords(
      'dead-letters',
      records('{"a":1}', '{"a":2}'),
      records('{"a":1}'),
      10,
    );
    expect(positions.differences).toEqual([
      {
        topic: 'dead-letters',
        kind: 'missing',
        key: '@0:1',
        a: { partition: 0, offset: 1 },
        value: '{"a":2}',
      },
    ]);
  });
});
