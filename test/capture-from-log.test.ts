import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { CaptureHeader } from '../src/capture/format.js';
import { captureFromLog } from '../src/capture/from-log.js';
import { captureLine } from '../src/capture/ndjson.js';
import { openCapture } from '../src/capture/reader.js';
import { CaptureWriter } from '../src/capture/writer.js';
import { captureCommand } from '../src/cli/commands/capture.js';
import type { RawRecord } from '../src/contracts/raw.js';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { Ingestor, lineTime } from '../src/engine/ingest.js';
import type { Topic } from '../src/log/types.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { runSimulation } from '../src/simulator/run.js';
import { DataStreamerError, UsageError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';
import { allOutputs, HOUR, outputsOf, quotaAssign, T0 } from './fixtures.js';

const CLI = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'ds-capture-log-'));
const reference = generateReferenceData({ devices: 300, seed: 43 });
const directory = new Directory(reference);
const PARTITIONS = 4;

/** The record lines of an NDJSON capture file (.gz too), header and trailer left out. */
function recordLines(file: string): string[] {
  const bytes = readFileSync(file);
  const text = (file.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
  const lines = text.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines[0]?.startsWith('{"kind":"header"')).toBe(true);
  expect(lines.at(-1)?.startsWith('{"kind":"trailer"')).toBe(true);
  return lines.slice(1, -1);
}

async function partitionOf(): Promise<(line: string) => number> {
  // Ingest's own partitioning (only `partitions` and `endOffset` of the topic are used to open it).
  const stub = { partitions: PARTITIONS, endOffset: async () => 0 } as unknown as Topic;
  const ingestor = await Ingestor.open(stub, directory);
  return (line) => ingestor.partitionOf(line);
}

/** The expected capture order: each partition's lines in log order, merged by time, ties by partition. */
function mergeByTime(lines: string[], partition: (line: string) => number): string[] {
  const queues: string[][] = Array.from({ length: PARTITIONS }, () => []);
  for (const line of lines) queues[partition(line)]?.push(line);
  const out: string[] = [];
  const at = queues.map(() => 0);
  for (;;) {
    let best = -1;
    for (let p = 0; p < PARTITIONS; p++) {
      const line = queues[p]?.[at[p] as number];
      if (line === undefined) continue;
      const bestLine = best < 0 ? undefined : queues[best]?.[at[best] as number];
      if (bestLine === undefined || (lineTime(line) ?? 0) < (lineTime(bestLine) ?? 0)) best = p;
    }
    if (best < 0) return out;
    out.push(queues[best]?.[at[best] as number] as string);
    at[best] = (at[best] as number) + 1;
  }
}

/** A simulated capture, plus quota commands, a record that breaks its contract and one of an unknown IMSI. */
async function originalCapture(file: string): Promise<{ header: CaptureHeader; lines: string[] }> {
  const simulated = join(dir, 'simulated.ndjson');
  await runSimulation({
    reference,
    seed: 43,
    start: T0,
    durationMs: 4 * HOUR,
    out: simulated,
    duplicateCdrRate: 0.02,
  });
  const capture = await openCapture(simulated);
  const records: RawRecord[] = [];
  for await (const raw of capture.records) records.push(raw);
  const at = (time: number) =>
    records.findIndex((r) => (r.kind === 'data_cdr' ? r.record.timeOfLastUsage : r.record.timestamp) >= time);
  const commands: RawRecord[] = [];
  for (let index = 0; index < directory.endpointCount; index += 25)
    commands.push(quotaAssign(index, directory.endpointId(index)));
  records.splice(at(T0 + HOUR), 0, ...commands);
  // Damaged input the engine dead-letters: an unknown signaling type (SCHEMA_MISMATCH) and an
  // unknown IMSI (UNKNOWN_IMSI). Both are lines the capture format can hold as they are.
  const signaling = records.find((r) => r.kind === 'signaling' && r.record.timestamp > T0 + 2 * HOUR);
  const cdr = records.find((r) => r.kind === 'data_cdr' && r.record.timeOfLastUsage > T0 + 3 * HOUR);
  if (signaling?.kind !== 'signaling' || cdr?.kind !== 'data_cdr') throw new Error('no records to copy');
  const bad = {
    kind: 'signaling',
    record: { ...signaling.record, record_id: 'damaged-1', type: 'NO_SUCH_TYPE' },
  } as unknown as RawRecord;
  records.splice(records.indexOf(signaling) + 1, 0, bad);
  records.splice(records.indexOf(cdr) + 1, 0, {
    kind: 'data_cdr',
    record: { ...cdr.record, servedIMSI: '999990000000001', chargingID: 424242 },
  });
  const writer = CaptureWriter.open(file, capture.header);
  await writer.write(records);
  await writer.close();
  return { header: capture.header, lines: records.map(captureLine) };
}

let original: { header: CaptureHeader; lines: string[] };
const DIR = join(dir, 'dir');
const DIR2 = join(dir, 'dir2');
const F2 = join(dir, 'f2.ndjson');

describe('capture --from log', () => {
  it('captures the whole log: the original records, replayed into identical outputs, captured again byte for byte', async () => {
    const capture = join(dir, 'original.ndjson');
    original = await originalCapture(capture);
    expect(original.lines.length).toBeGreaterThan(2000);

    const engine = await EmbeddedEngine.open(
      { dataDir: DIR, partitions: PARTITIONS },
      original.header.reference,
    );
    await engine.replay(capture);
    const expected = await allOutputs(engine);
    await engine.close();
    const reasons = (expected['dead-letters'] ?? []).map((d) => JSON.parse(d).reason_code);
    expect(reasons).toContain('SCHEMA_MISMATCH');
    expect(reasons).toContain('UNKNOWN_IMSI');
    expect((expected.events ?? []).some((e) => JSON.parse(e).event_type.id === 56)).toBe(true);

    expect(await captureCommand(['--from', 'log', '--data-dir', DIR, '--out', F2, '--quiet'])).toBe(0);
    const f2 = recordLines(F2);
    // The original capture is not strictly in event-time order (the simulator emits a
    // device's step a few seconds ahead; the damaged lines were put next to their copies),
    // so F2 holds the same lines in another order: the same multiset...
    expect(f2.length).toBe(original.lines.length);
    expect([...f2].sort()).toEqual([...original.lines].sort());
    expect(f2).not.toEqual(original.lines);
    // ...in exactly the order of the time merge of the raw partitions, each partition's own
    // order kept, which is why a replay of F2 rebuilds the same raw log.
    const partition = await partitionOf();
    expect(f2).toEqual(mergeByTime(original.lines, partition));
    for (let p = 0; p < PARTITIONS; p++)
      expect(f2.filter((l) => partition(l) === p)).toEqual(original.lines.filter((l) => partition(l) === p));

    const header = (await openCapture(F2)).header;
    expect(header.reference).toEqual(reference);
    expect(header.created_by).toMatch(/^data-streamer \S+ capture$/);
    expect(header.source).toMatchObject({
      kind: 'log',
      topic: 'raw',
      partitions: PARTITIONS,
      since: null,
      until: null,
      not_captured: 0,
      normalised: 0,
    });
    const times = original.lines.map((l) => lineTime(l) as number);
    expect(header.start).toBe(new Date(Math.min(...times)).toISOString());
    expect(header.end).toBe(new Date(Math.max(...times) + 1).toISOString());

    // Replay F2 into a fresh directory: the same outputs, record for record.
    const engine2 = await EmbeddedEngine.open({ dataDir: DIR2, partitions: PARTITIONS }, header.reference);
    await engine2.replay(F2);
    expect(await allOutputs(engine2)).toEqual(expected);
    // While an engine has the directory, capture refuses it.
    await expect(captureFromLog({ dataDir: DIR2, out: join(dir, 'locked.ndjson') })).rejects.toMatchObject({
      code: 'DATA_DIR_LOCKED',
      message: expect.stringContaining(DIR2),
    });
    await engine2.close();

    // Captured again from the second directory: the same file, byte for byte.
    const f3 = join(dir, 'f3.ndjson');
    const summary = await captureFromLog({ dataDir: DIR2, out: f3 });
    expect(summary.records).toBe(f2.length);
    // (Buffer.equals: toEqual on buffers of megabytes takes half a minute.)
    expect(readFileSync(f3).equals(readFileSync(F2))).toBe(true);
    // The outputs of DIR were left as they were.
    expect(await outputsOf(DIR)).toEqual(expected);

    // inspect verifies the written capture (trailer and checksum).
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it)`);
    const inspected = JSON.parse(
      execFileSync(process.execPath, [CLI, 'inspect', F2, '--json'], { encoding: 'utf8' }),
    );
    expect(inspected).toMatchObject({ verified: true, records: f2.length });
  }, 60_000);

  it('captures a time range [since, until) exactly', async () => {
    const f2 = recordLines(F2);
    const cases: [number | undefined, number | undefined][] = [
      [T0 + HOUR, T0 + 2 * HOUR + 30 * 60_000],
      [T0 + 3 * HOUR, undefined],
      [undefined, T0 + HOUR],
      [T0 + 10 * HOUR, T0 + 11 * HOUR],
    ];
    for (const [since, until] of cases) {
      const out = join(dir, `range-${since}-${until}.ndjson`);
      const summary = await captureFromLog({
        dataDir: DIR,
        out,
        ...(since === undefined ? {} : { since }),
        ...(until === undefined ? {} : { until }),
      });
      const want = f2.filter((l) => {
        const t = lineTime(l) as number;
        return (since === undefined || t >= since) && (until === undefined || t < until);
      });
      expect(recordLines(out)).toEqual(want);
      expect(summary.records).toBe(want.length);
      const header = (await openCapture(out)).header;
      if (since !== undefined) expect(header.start).toBe(new Date(since).toISOString());
      if (until !== undefined) expect(header.end).toBe(new Date(until).toISOString());
    }
    // The boundaries: a record exactly at --since is in, one exactly at --until is out.
    const command = f2.find((l) => l.startsWith('{"kind":"command"')) as string;
    const at = lineTime(command) as number;
    const inside = join(dir, 'at-since.ndjson');
    await captureFromLog({ dataDir: DIR, out: inside, since: at, until: at + 1 });
    expect(recordLines(inside)).toContain(command);
    const outside = join(dir, 'at-until.ndjson');
    await captureFromLog({ dataDir: DIR, out: outside, since: at - 1, until: at });
    expect(recordLines(outside)).not.toContain(command);
    // Through the CLI, with ISO-8601 times.
    const cli = join(dir, 'cli-range.ndjson');
    await captureCommand([
      '--from',
      'log',
      '--data-dir',
      DIR,
      '--since',
      '2026-01-05T01:00:00Z',
      '--until',
      '2026-01-05T02:30:00Z',
      '--out',
      cli,
      '--quiet',
    ]);
    const api = readFileSync(join(dir, `range-${T0 + HOUR}-${T0 + 2 * HOUR + 30 * 60_000}.ndjson`));
    expect(readFileSync(cli).equals(api)).toBe(true);
  }, 30_000);

  it('writes NDJSON.gz and Avro captures', async () => {
    const f2 = recordLines(F2);
    const gz = join(dir, 'f2.ndjson.gz');
    await captureFromLog({ dataDir: DIR, out: gz });
    expect(recordLines(gz)).toEqual(f2);
    const lines: string[] = [];
    const read = await openCapture(gz);
    for await (const raw of read.records) lines.push(captureLine(raw));
    expect(lines).toEqual(f2);

    // Avro holds only records that match their contract: the damaged signaling line is left
    // out and said so; everything else is there, in the same order.
    const avro = join(dir, 'f2.avro');
    const summary = await captureFromLog({ dataDir: DIR, out: avro });
    expect(summary.not_captured_count).toBe(1);
    expect(summary.not_captured[0]).toMatchObject({ code: 'NOT_AVRO_ENCODABLE' });
    expect(summary.not_captured[0]?.reason).toContain('type');
    const capture = await openCapture(avro);
    expect(capture.header.source).toMatchObject({ not_captured: 1 });
    const avroLines: string[] = [];
    for await (const raw of capture.records) avroLines.push(captureLine(raw));
    expect(avroLines).toEqual(f2.filter((l) => !l.includes('"record_id":"damaged-1"')));
  }, 30_000);

  it('leaves out, and lists, raw lines that are not records at all', async () => {
    const dataDir = join(dir, 'garbage');
    const engine = await EmbeddedEngine.open({ dataDir, partitions: PARTITIONS }, reference);
    const good = recordLines(F2).slice(0, 50);
    await engine.ingest([...good.slice(0, 20), '{"kind":"signaling","record":{"imsi":', ...good.slice(20)]);
    await engine.close();
    const out = join(dir, 'garbage.ndjson');
    const summary = await captureFromLog({ dataDir, out });
    expect(summary.records).toBe(50);
    expect(summary.not_captured_count).toBe(1);
    expect(summary.not_captured[0]).toMatchObject({ partition: 0, timestamp: 0, code: 'MALFORMED_JSON' });
    expect([...recordLines(out)].sort()).toEqual([...good].sort());
  }, 30_000);

  it('names the flag or the directory that is wrong', async () => {
    const run = (...argv: string[]) => captureCommand([...argv, '--quiet']);
    const out = join(dir, 'x.ndjson');
    await expect(run('--from', 'kafka', '--data-dir', DIR, '--out', out)).rejects.toThrow(
      /--from kafka comes with distributed mode/,
    );
    await expect(run('--from', 'kafka', '--data-dir', DIR, '--out', out)).rejects.toBeInstanceOf(UsageError);
    await expect(run('--data-dir', DIR, '--out', out)).rejects.toThrow(/--from log is required/);
    await expect(run('--from', 'file', '--data-dir', DIR, '--out', out)).rejects.toThrow(
      /--from must be log/,
    );
    await expect(run('--from', 'log', '--out', out)).rejects.toThrow(/--data-dir DIR is required/);
    await expect(run('--from', 'log', '--data-dir', DIR)).rejects.toThrow(/--out FILE is required/);
    await expect(
      run('--from', 'log', '--data-dir', DIR, '--out', out, '--since', 'yesterday'),
    ).rejects.toThrow(/--since: "yesterday" is not an ISO-8601 UTC time/);
    await expect(
      run('--from', 'log', '--data-dir', DIR, '--out', out, '--until', '2026-01-05T25:00:00Z'),
    ).rejects.toThrow(/--until/);
    await expect(
      run(
        '--from',
        'log',
        '--data-dir',
        DIR,
        '--out',
        out,
        '--since',
        '2026-01-05T02:00:00Z',
        '--until',
        '2026-01-05T01:00:00Z',
      ),
    ).rejects.toThrow(/--since \(2026-01-05T02:00:00Z\) must be before --until/);
    await expect(run('--from', 'log', '--data-dir', DIR, '--out', out, '--bogus')).rejects.toThrow(/--bogus/);
    await expect(run('--from', 'log', '--data-dir', DIR, '--out', '-', '--json')).rejects.toThrow(/--json/);

    const missing = join(dir, 'no-such-dir');
    const error = await run('--from', 'log', '--data-dir', missing, '--out', out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataStreamerError);
    expect(error).toMatchObject({
      code: 'DATA_DIR_NOT_FOUND',
      message: `data directory ${missing} does not exist`,
    });
    const empty = join(dir, 'empty-dir');
    mkdirSync(empty);
    await expect(captureFromLog({ dataDir: empty, out })).rejects.toMatchObject({
      code: 'DATA_DIR_EMPTY',
      message: expect.stringContaining(`${empty} holds no engine data`),
    });
    // Nothing was created in it.
    expect(existsSync(join(empty, 'log'))).toBe(false);
    writeFileSync(join(dir, 'a-file'), 'x');
    await expect(captureFromLog({ dataDir: join(dir, 'a-file'), out })).rejects.toMatchObject({
      code: 'DATA_DIR_NOT_FOUND',
    });
    await expect(
      captureFromLog({ dataDir: DIR, out: join(dir, 'no-such-folder', 'x.ndjson') }),
    ).rejects.toMatchObject({
      code: 'OUTPUT_NOT_WRITABLE',
      message: expect.stringContaining('no-such-folder'),
    });
  }, 30_000);
});
