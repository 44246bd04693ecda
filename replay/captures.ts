/**
 * How the recorded regression captures in replay/captures/ were made. They are inputs
 * kept in the repository, not rebuilt by the tests: `node dist/replay/record.js --captures`
 * rebuilds them (byte-identical while the simulator and the reference generator do not
 * change), which is only needed when a capture itself must change. replay/README.md says
 * what each one holds and why.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { crc32, gzipSync } from 'node:zlib';
import type { CaptureHeader } from '../src/capture/format.js';
import { captureLine } from '../src/capture/ndjson.js';
import { CaptureWriter } from '../src/capture/writer.js';
import type { EngineCommand, RawRecord } from '../src/contracts/raw.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import type { ReferenceData } from '../src/reference/types.js';
import { referenceSha256, runSimulation } from '../src/simulator/run.js';
import { CoreSimulator } from '../src/simulator/simulator.js';

/** 2026-01-05T00:00:00Z, a Monday: the start of every capture. */
export const T0 = Date.UTC(2026, 0, 5);
const HOUR = 3_600_000;

export interface RegressionCapture {
  name: string;
  /** File name under replay/captures/. */
  file: string;
  /** Partitions of the data dir it is replayed into (the record ids depend on it). */
  partitions: number;
  /** Writes the capture to `path`. */
  build(path: string): Promise<void>;
}

function header(reference: ReferenceData, name: string, hours: number, source: object): CaptureHeader {
  return {
    format: 'data-streamer/capture',
    version: 1,
    created_by: `data-streamer replay/captures.ts ${name}`,
    source: { kind: 'regression', name, ...source },
    start: new Date(T0).toISOString(),
    end: new Date(T0 + hours * HOUR).toISOString(),
    reference_sha256: referenceSha256(reference),
    reference,
  };
}

function simulate(reference: ReferenceData, seed: number, hours: number, extra: object = {}): RawRecord[] {
  const sim = new CoreSimulator({
    directory: new Directory(reference),
    seed,
    start: T0,
    durationMs: hours * HOUR,
    ...extra,
  });
  const out: RawRecord[] = [];
  while (sim.generate(out, 10_000)) {
    // until the end of the run
  }
  return out;
}

const timeOf = (r: RawRecord) => (r.kind === 'data_cdr' ? r.record.timeOfLastUsage : r.record.timestamp);

/** Inserts records before the first one at or after their time (stable: same-time records keep their order). */
function insertAt(records: RawRecord[], extra: RawRecord[]): RawRecord[] {
  const out = [...records];
  for (const record of [...extra].sort((a, b) => timeOf(a) - timeOf(b))) {
    const at = out.findIndex((r) => r.kind !== 'command' && timeOf(r) >= timeOf(record));
    out.splice(at < 0 ? out.length : at, 0, record);
  }
  return out;
}

function command(
  fields: Partial<EngineCommand> & Pick<EngineCommand, 'command_id' | 'timestamp' | 'type' | 'endpoint_id'>,
): RawRecord {
  return {
    kind: 'command',
    record: {
      service: 'DATA',
      volume: null,
      expiry_date: null,
      threshold_percentage: null,
      action_on_exhaustion: null,
      peak_throughput: null,
      auto_refill: false,
      issued_by: 'replay/captures.ts',
      ...fields,
    },
  };
}

/** (1) A plain day of a small fleet, exactly as `data-streamer simulate` writes it. */
const plainDay: RegressionCapture = {
  name: 'plain-day',
  file: 'plain-day.ndjson.gz',
  partitions: 4,
  async build(path) {
    await runSimulation({
      reference: generateReferenceData({ devices: 40, seed: 101 }),
      seed: 101,
      start: T0,
      durationMs: 24 * HOUR,
      out: path,
    });
  },
};

/** The reference data of the quota capture: organisation 1001 with a 15 EUR monthly cost limit. */
export function quotaReference(): ReferenceData {
  const reference = generateReferenceData({ devices: 60, seed: 202 });
  (reference.organisations[0] as { monthly_cost_limit?: string }).monthly_cost_limit = '15';
  return reference;
}

/**
 * (2) Quotas and an organisation cost limit: 1 MB data quotas (50% threshold) for every
 * 3rd endpoint an hour in (spread over the 4 partitions), blocking (every 3rd: throttling)
 * when used up; top-ups of used-up quotas (and one of no quota), the delete of one, and an
 * SMS quota later; and a cost limit low enough that the organisation is blocked.
 */
const quotas: RegressionCapture = {
  name: 'quotas-cost-limit',
  file: 'quotas-cost-limit.ndjson.gz',
  partitions: 4,
  async build(path) {
    const reference = quotaReference();
    const hours = 10;
    const records = simulate(reference, 202, hours, { duplicateCdrRate: 0.01 });
    const dir = new Directory(reference);
    const commands: RawRecord[] = [];
    const assigned: number[] = [];
    for (let index = 0; index < dir.endpointCount; index += 3) {
      const endpoint = dir.endpointId(index);
      assigned.push(endpoint);
      const throttle = assigned.length % 3 === 0;
      commands.push(
        command({
          command_id: `quota-${endpoint}`,
          timestamp: T0 + HOUR,
          type: 'QUOTA_ASSIGN',
          endpoint_id: endpoint,
          volume: '1',
          expiry_date: T0 + 30 * 24 * HOUR,
          threshold_percentage: 50,
          action_on_exhaustion: throttle ? 'THROTTLE' : 'BLOCK',
          peak_throughput: throttle ? 64_000 : null,
        }),
      );
    }
    // Top-ups for three endpoints whose quota was used up by then (20000043 throttled, the
    // others blocked), one for an endpoint without a quota (a dead letter, INVALID_COMMAND),
    // and the delete of a used-up, throttled quota (endpoints found in the first recording).
    for (const endpoint of [20000037, 20000043, 20000055, 20000041])
      commands.push(
        command({
          command_id: `top-up-${endpoint}`,
          timestamp: T0 + 5 * HOUR,
          type: 'QUOTA_TOP_UP',
          endpoint_id: endpoint,
          volume: '2',
        }),
      );
    commands.push(
      command({
        command_id: 'delete-20000025',
        timestamp: T0 + 6 * HOUR,
        type: 'QUOTA_DELETE',
        endpoint_id: 20000025,
      }),
    );
    const sms = dir.endpointId(1);
    commands.push(
      command({
        command_id: `sms-quota-${sms}`,
        timestamp: T0 + 2 * HOUR,
        type: 'QUOTA_ASSIGN',
        endpoint_id: sms,
        service: 'SMS',
        volume: '1',
        expiry_date: T0 + 30 * 24 * HOUR,
        threshold_percentage: 50,
        action_on_exhaustion: 'BLOCK',
      }),
    );
    const writer = CaptureWriter.open(
      path,
      header(reference, 'quotas-cost-limit', hours, { seed: 202, devices: 60, duplicate_cdr_rate: 0.01 }),
    );
    await writer.write(insertAt(records, commands));
    await writer.close();
  },
};

/** The damaged lines of the malformed capture, each with what the engine should make of it. */
export function badLines(cdr: string, signaling: string): { line: string; expect: string }[] {
  return [
    { line: cdr.slice(0, 70), expect: 'MALFORMED_JSON (truncated line)' },
    { line: signaling.slice(0, Math.floor(signaling.length / 2)), expect: 'MALFORMED_JSON (truncated line)' },
    {
      line: cdr.replace(/"servedIMSI":"\d+"/, '"servedIMSI":"001019999999999"'),
      expect: 'UNKNOWN_IMSI',
    },
    {
      line: signaling.replace(/"imsi":"\d+"/, '"imsi":"001019999999998"'),
      expect: 'UNKNOWN_IMSI',
    },
    {
      line: cdr.replace(/"dataVolumeUplink":\d+/, '"dataVolumeUplink":"lots"'),
      expect: 'SCHEMA_MISMATCH (wrong type)',
    },
    { line: '\u0000\u00ff\u0013garbage\u0001', expect: 'MALFORMED_JSON (garbage)' },
    { line: '{"kind":"fax","record":{}}', expect: 'UNKNOWN_KIND' },
    { line: '[1,2,3]', expect: 'UNKNOWN_KIND (an array, not a record object)' },
  ];
}

/**
 * (3) Malformed input: a small fleet's traffic with late and repeated CDRs, and damaged
 * lines spread through it (truncated lines, unknown IMSIs, a wrong type, garbage, an
 * unknown kind). The trailer's count and checksum cover the lines as written, so
 * `inspect` reports the first damaged line and `replay` dead-letters each one.
 */
const malformed: RegressionCapture = {
  name: 'malformed',
  file: 'malformed.ndjson.gz',
  partitions: 4,
  async build(path) {
    const reference = generateReferenceData({ devices: 30, seed: 303 });
    const hours = 8;
    const records = simulate(reference, 303, hours, { lateCdrRate: 0.02, duplicateCdrRate: 0.02 });
    const lines = records.map(captureLine);
    const cdr = lines.find((l) => l.includes('"kind":"data_cdr"')) as string;
    const signaling = lines.find((l) => l.includes('"kind":"signaling"')) as string;
    const bad = badLines(cdr, signaling).map((b) => b.line);
    // Spread evenly, from line 100 on.
    const mixed: string[] = [];
    const every = Math.floor((lines.length - 100) / bad.length);
    lines.forEach((line, k) => {
      if (k >= 100 && (k - 100) % every === 0 && bad.length > 0) mixed.push(bad.shift() as string);
      mixed.push(line);
    });
    const body = Buffer.from(mixed.map((l) => `${l}\n`).join(''), 'utf8');
    const byKind: Record<string, number> = {};
    for (const r of records) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
    const trailer = {
      kind: 'trailer',
      records: mixed.length,
      by_kind: byKind,
      crc32: crc32(body).toString(16).padStart(8, '0'),
    };
    const text = `${JSON.stringify({
      kind: 'header',
      ...header(reference, 'malformed', hours, {
        seed: 303,
        devices: 30,
        late_cdr_rate: 0.02,
        duplicate_cdr_rate: 0.02,
      }),
    })}\n${body.toString('utf8')}${JSON.stringify(trailer)}\n`;
    writeFileSync(path, gzipSync(text, { level: 3 }));
  },
};

export const CAPTURES: readonly RegressionCapture[] = [plainDay, quotas, malformed];

/** SHA-256 of a file's bytes, hex. */
export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
