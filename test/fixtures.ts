import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RawRecord } from '../src/contracts/raw.js';
import { Directory } from '../src/reference/directory.js';
import type { Endpoint, ReferenceData, Sim } from '../src/reference/types.js';
import { CoreSimulator, type SimulatorOptions } from '../src/simulator/simulator.js';
import { packageRoot } from '../src/util/paths.js';

/** The built CLI (npm test builds it first). */
export const CLI = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

/** 2026-01-05T00:00:00Z, a Monday. */
export const T0 = Date.UTC(2026, 0, 5);
export const HOUR = 3_600_000;

/** A small seeded generator for tests: next(n) gives 0..n-1, the same sequence for the same seed. */
export function seeded(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
}

function sim(id: number, imsis: string[], regions: (string[] | undefined)[] = []): Sim {
  return {
    id,
    iccid: `${`8988303000000000${id}`.slice(0, 19)}0`,
    msisdn: `4236639200000${id}`.slice(0, 15),
    production_date: '2025-01-01T00:00:00Z',
    imsis: imsis.map((imsi, k) => ({
      id: id * 10 + k,
      imsi,
      import_date: '2025-01-01T00:00:00Z',
      ...(regions[k] ? { preferred_regions: regions[k] as never } : {}),
    })),
  };
}

function endpoint(id: number, simId: number, fields: Partial<Endpoint>): Endpoint {
  return {
    id,
    name: `device-${id}`,
    imei: '356938035643809',
    ip_address: `10.0.0.${id % 250}`,
    tags: null,
    status: 'Enabled',
    organisation_id: 1,
    sim_id: simId,
    service_profile_id: 1,
    tariff_profile_id: 1,
    ...fields,
  };
}

/**
 * A small hand-written world: Germany and Austria in zone 1, AT&T (US) in zone 2,
 * T-Mobile (US) in zone 3; tariff profile 2 covers only zone 1, profile 3 zones 1 and 2.
 */
export function smallWorld(): ReferenceData {
  return {
    format: 'data-streamer/reference-data',
    version: 1,
    countries: [
      {
        id: 74,
        name: 'Germany',
        iso_code: 'de',
        mcc: '262',
        country_code: '49',
        region: 'europe',
        utc_offset_hours: 1,
      },
      {
        id: 14,
        name: 'Austria',
        iso_code: 'at',
        mcc: '232',
        country_code: '43',
        region: 'europe',
        utc_offset_hours: 1,
      },
      {
        id: 226,
        name: 'United States',
        iso_code: 'us',
        mcc: '310',
        country_code: '1',
        region: 'north_america',
        utc_offset_hours: -6,
      },
    ],
    operators: [
      { id: 1, name: 'Telekom', country_id: 74, mncs: ['01', '06'], tapcode: 'DEUD1' },
      { id: 2, name: 'Vodafone', country_id: 74, mncs: ['02'], tapcode: 'DEUD2' },
      { id: 3, name: 'A1', country_id: 14, mncs: ['01'], tapcode: 'AUTPT' },
      { id: 4, name: 'AT&T', country_id: 226, mncs: ['410'], tapcode: 'USACG' },
      { id: 5, name: 'T-Mobile', country_id: 226, mncs: ['260'], tapcode: 'USAW6' },
    ],
    tariffs: [
      {
        id: 555,
        version: 1,
        name: 'Test EUR',
        currency: 'EUR',
        data_blocksize_bytes: 1024,
        default_sms_mt_rate: '0.01',
        ratezones: [
          { id: 11, name: 'Zone 1', operator_ids: [1, 2, 3], rates: { data_per_mb: '0.10', sms_mo: '0.07' } },
          { id: 12, name: 'Zone 2', operator_ids: [4], rates: { data_per_mb: '0.25', sms_mo: '0.10' } },
          { id: 13, name: 'Zone 3', operator_ids: [5], rates: { data_per_mb: '1.00', sms_mo: '0.30' } },
        ],
      },
    ],
    tariff_profiles: [
      { id: 1, name: 'Everywhere', tariff_id: 555, ratezone_ids: [11, 12, 13] },
      { id: 2, name: 'Europe only', tariff_id: 555, ratezone_ids: [11] },
      { id: 3, name: 'Europe and AT&T', tariff_id: 555, ratezone_ids: [11, 12] },
    ],
    service_profiles: [
      { id: 1, name: 'All services', services: { data: true, sms_mo: true, sms_mt: true } },
      { id: 2, name: 'No SMS MO', services: { data: true, sms_mo: false, sms_mt: true } },
    ],
    organisations: [{ id: 1, name: 'Test Org', currency: 'EUR', monthly_cost_limit: '1000' }],
    sims: [
      sim(101, ['295050000000101']),
      sim(
        102,
        ['901430000000102', '295050000000102', '234500000000102'],
        [undefined, ['europe'], ['north_america', 'latin_america']],
      ),
      sim(103, ['295050000000103']),
      sim(104, ['295050000000104']),
      sim(105, ['295050000000105']),
      sim(106, ['295050000000106']),
    ],
    endpoints: [
      endpoint(1, 101, { deployment: { countries: ['de'], mobility: 'static', profile: 'meter' } }),
      endpoint(2, 102, {
        deployment: { countries: ['de', 'at', 'us'], mobility: 'international', profile: 'tracker' },
      }),
      endpoint(3, 103, { deployment: { countries: ['de'], mobility: 'national', profile: 'gateway' } }),
      endpoint(4, 104, {
        tariff_profile_id: 3,
        deployment: { countries: ['us'], mobility: 'static', profile: 'tracker' },
      }),
      endpoint(5, 105, {
        tariff_profile_id: 2,
        deployment: { countries: ['us'], mobility: 'static', profile: 'tracker' },
      }),
      endpoint(6, 106, {
        service_profile_id: 2,
        deployment: { countries: ['de'], mobility: 'static', profile: 'tracker' },
      }),
    ],
  };
}

export function simulator(
  reference: ReferenceData,
  overrides: Partial<SimulatorOptions> = {},
): CoreSimulator {
  return new CoreSimulator({
    directory: new Directory(reference),
    seed: 1,
    start: T0,
    durationMs: 24 * HOUR,
    ...overrides,
  });
}

/** Runs a simulator to its end and returns every record. */
export function runAll(sim: CoreSimulator): RawRecord[] {
  const out: RawRecord[] = [];
  while (sim.generate(out, 10_000)) {
    // keep going
  }
  return out;
}

export function imsiOf(raw: RawRecord): string {
  switch (raw.kind) {
    case 'data_cdr':
      return raw.record.servedIMSI;
    case 'command':
      return '';
    default:
      return raw.record.imsi;
  }
}

/**
 * A capture of simulated traffic with quota commands mixed in: a 1 MB data quota (50%
 * threshold, block when used up) for every `every`-th endpoint, one hour in.
 */
/** A 1 MB data quota (threshold 50%, blocking, 30 days) assigned at T0 + 1 h. */
export function quotaAssign(index: number, endpointId: number): RawRecord {
  return {
    kind: 'command',
    record: {
      command_id: `quota-${index}`,
      timestamp: T0 + HOUR,
      type: 'QUOTA_ASSIGN',
      endpoint_id: endpointId,
      service: 'DATA',
      volume: '1',
      expiry_date: T0 + 30 * 24 * HOUR,
      threshold_percentage: 50,
      action_on_exhaustion: 'BLOCK',
      peak_throughput: null,
      auto_refill: false,
      issued_by: 'test',
    },
  };
}

export async function captureWithQuotas(
  path: string,
  reference: ReferenceData,
  options: { seed: number; hours: number; every: number },
): Promise<void> {
  const { CaptureWriter } = await import('../src/capture/writer.js');
  const { referenceSha256 } = await import('../src/simulator/run.js');
  const sim = simulator(reference, {
    seed: options.seed,
    durationMs: options.hours * HOUR,
    duplicateCdrRate: 0.01,
  });
  const records = runAll(sim);
  const dir = new Directory(reference);
  const commands: RawRecord[] = [];
  for (let index = 0; index < dir.endpointCount; index += options.every)
    commands.push(quotaAssign(index, dir.endpointId(index)));
  const at = records.findIndex(
    (r) => (r.kind === 'data_cdr' ? r.record.timeOfLastUsage : r.record.timestamp) >= T0 + HOUR,
  );
  records.splice(at < 0 ? records.length : at, 0, ...commands);
  const writer = CaptureWriter.open(path, {
    format: 'data-streamer/capture',
    version: 1,
    created_by: 'test',
    source: { kind: 'test' },
    start: new Date(T0).toISOString(),
    end: new Date(T0 + options.hours * HOUR).toISOString(),
    reference_sha256: referenceSha256(reference),
    reference,
  });
  await writer.write(records);
  await writer.close();
}

/** Every output topic of an engine, as the text of its records. */
export async function allOutputs(
  engine: import('../src/engine/engine.js').EmbeddedEngine,
): Promise<Record<string, string[]>> {
  const { OUTPUT_TOPICS } = await import('../src/engine/processor.js');
  const { ORGANISATION_TOPICS } = await import('../src/engine/organisation-runner.js');
  const { topicValues } = await import('../src/engine/topic-values.js');
  const all: Record<string, string[]> = {};
  for (const topic of [...OUTPUT_TOPICS, ...ORGANISATION_TOPICS]) {
    const lines: string[] = [];
    for await (const value of topicValues(engine.outputTopic(topic))) lines.push(value);
    all[topic] = lines;
  }
  return all;
}

/** The outputs of a data dir, opened and closed again. */
export async function outputsOf(dataDir: string): Promise<Record<string, string[]>> {
  const { EmbeddedEngine } = await import('../src/engine/engine.js');
  const engine = await EmbeddedEngine.open({ dataDir });
  try {
    return await allOutputs(engine);
  } finally {
    await engine.close();
  }
}

/** A simulated capture of `reference` (from T0) replayed into a fresh engine at DIR/engine; the caller closes it. */
export async function replayedEngine(
  dir: string,
  reference: ReferenceData,
  options: { seed: number; hours: number },
): Promise<import('../src/engine/engine.js').EmbeddedEngine> {
  const { runSimulation } = await import('../src/simulator/run.js');
  const { EmbeddedEngine } = await import('../src/engine/engine.js');
  const capture = join(dir, 'capture.ndjson');
  await runSimulation({
    reference,
    seed: options.seed,
    start: T0,
    durationMs: options.hours * HOUR,
    out: capture,
  });
  const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'engine') }, reference);
  await engine.replay(capture);
  return engine;
}

/** The built CLI, run to its end: exit code and output. */
export async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // No DATA_STREAMER_* of the shell running the tests changes the configuration under test.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('DATA_STREAMER_')),
  );
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env,
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A webhook receiver on a real socket; `failNext` makes it answer the next requests with a status. */
export class Receiver {
  readonly requests: { headers: IncomingMessage['headers']; body: unknown }[] = [];
  failNext = 0;
  failStatus = 503;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.failNext > 0) {
          this.failNext--;
          res.writeHead(this.failStatus).end();
          return;
        }
        this.requests.push({
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        res.writeHead(200).end();
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  }

  /** Every record received, batches unpacked. */
  records(): { id: number; [k: string]: unknown }[] {
    return this.requests.flatMap((r) => (Array.isArray(r.body) ? r.body : [r.body]));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server?.close(() => resolve()));
  }
}

/**
 * A value as it comes back (in its snapshot form T) from a snapshot file written in steps,
 * and from one written as a single JSON text (before the steps format), in that order.
 */
export async function throughSnapshots<T>(value: unknown): Promise<[T, T]> {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { deserialise, readSnapshot, serialise, writeSnapshot } = await import('../src/engine/snapshot.js');
  const file = join(mkdtempSync(join(tmpdir(), 'ds-snapshot-')), 'partition-0.json');
  await writeSnapshot(file, value);
  return [(await readSnapshot<T>(file)) as T, deserialise<T>(serialise(value))];
}
