import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCapture } from '../src/capture/reader.js';
import type { RawRecord } from '../src/contracts/raw.js';
import { CLI, cli } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-cli-'));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function readAll(file: string): Promise<RawRecord[]> {
  const capture = await openCapture(file);
  const out: RawRecord[] = [];
  for await (const r of capture.records) out.push(r);
  return out;
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it)`);
});

describe('data-streamer simulate', () => {
  const out = join(dir, 'c.ndjson.gz');
  const again = join(dir, 'c2.ndjson.gz');

  it('writes a capture with every record kind, byte-identical on a second run', async () => {
    const args = ['simulate', '--devices', '1000', '--duration', '6h', '--seed', '7', '--quiet'];
    const first = await cli(...args, '--out', out);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Wrote [\d,]+ raw records for 1,000 devices/);
    const second = await cli(...args, '--out', again);
    expect(second.code).toBe(0);
    expect(sha256(again)).toBe(sha256(out));

    const records = await readAll(out);
    const kinds = new Set<string>();
    for (const r of records) {
      if (r.kind === 'signaling')
        kinds.add(`${r.record.type}:${r.record.result}${r.record.cause ? `:${r.record.cause}` : ''}`);
      else if (r.kind === 'data_cdr') kinds.add(`CDR:${r.record.causeForRecClosing}`);
      else if (r.kind === 'sms') kinds.add(`SMS:${r.record.direction}`);
    }
    for (const kind of [
      'UPDATE_LOCATION:ACCEPTED',
      'UPDATE_GPRS_LOCATION:ACCEPTED',
      'CREATE_PDP_CONTEXT:ACCEPTED',
      'DELETE_PDP_CONTEXT:ACCEPTED:NORMAL_RELEASE',
      'PURGE_LOCATION:ACCEPTED:INACTIVITY',
      'PURGE_GPRS_LOCATION:ACCEPTED:INACTIVITY',
      'PURGE_LOCATION:ACCEPTED:IMSI_SWITCH',
      'UPDATE_LOCATION:REJECTED:ROAMING_NOT_ALLOWED',
      'UPDATE_LOCATION:REJECTED:AUTHENTICATION_FAILURE',
      'CREATE_PDP_CONTEXT:REJECTED:USER_AUTHENTICATION_FAILED',
      'CREATE_PDP_CONTEXT:REJECTED:NO_RESOURCES',
      'CDR:17',
      'CDR:0',
      'SMS:MO',
      'SMS:MT',
    ]) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it('writes the same records as Avro and as plain NDJSON, with the reference data inside', async () => {
    const avro = join(dir, 'c.avro');
    const plain = join(dir, 'c.ndjson');
    const args = ['simulate', '--devices', '200', '--duration', '2h', '--seed', '3', '--quiet'];
    expect((await cli(...args, '--out', avro)).code).toBe(0);
    expect((await cli(...args, '--out', plain)).code).toBe(0);
    expect(await readAll(avro)).toEqual(await readAll(plain));
    const capture = await openCapture(avro);
    expect(capture.header.reference.fleets?.reduce((n, f) => n + f.count, 0)).toBe(200);
    const again = join(dir, 'c2.avro');
    await cli(...args, '--out', again);
    expect(sha256(again)).toBe(sha256(avro));
  });

  it('streams NDJSON to stdout with --out -', async () => {
    const { code, stdout } = await cli('simulate', '--devices', '20', '--duration', '1h', '--out', '-');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(JSON.parse(lines[0] as string).kind).toBe('header');
    expect(JSON.parse(lines[lines.length - 1] as string).kind).toBe('trailer');
  });

  it('uses a reference file and applies enforcement commands from a file', async () => {
    const ref = join(dir, 'ref.yaml');
    expect((await cli('reference', 'generate', '--devices', '50', '--seed', '4', '--out', ref)).code).toBe(0);
    const capture = join(dir, 'enf.ndjson');
    const block = {
      command_id: 'b1',
      timestamp: Date.UTC(2026, 0, 5, 1),
      action: 'BLOCK',
      scope: 'ALL',
      endpoint_id: 20_000_001,
      imsis: [],
      peak_throughput: null,
      reason: 'test',
      cause_event_id: null,
    };
    const commands = join(dir, 'enf.ndjson.in');
    writeFileSync(commands, `${JSON.stringify(block)}\n`);
    const result = await cli(
      'simulate',
      '--reference',
      ref,
      '--duration',
      '6h',
      '--enforcement',
      commands,
      '--out',
      capture,
      '--json',
      '--quiet',
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).stats.enforcementApplied).toBe(1);
  });

  it('prints live progress on stderr', async () => {
    const { stderr } = await cli(
      'simulate',
      '--devices',
      '100',
      '--duration',
      '2h',
      '--out',
      join(dir, 'p.ndjson'),
    );
    expect(stderr).toMatch(/simulate \[#+\]\s+100%\s+virtual 2026-01-05 0\d:\d\d\s+[\d,]+ records/);
  });

  it('paces output with --rate', async () => {
    const began = Date.now();
    const { stdout } = await cli(
      'simulate',
      '--devices',
      '20',
      '--duration',
      '2h',
      '--rate',
      '300',
      '--out',
      join(dir, 'r.ndjson'),
      '--json',
      '--quiet',
    );
    const records = JSON.parse(stdout).records as number;
    expect(records).toBeGreaterThan(100);
    expect(Date.now() - began).toBeGreaterThanOrEqual((records / 300) * 1000 * 0.9);
  });
});

describe('data-streamer inspect', () => {
  it('summarises a capture and finds a truncated one', async () => {
    const file = join(dir, 'i.ndjson');
    await cli('simulate', '--devices', '50', '--duration', '3h', '--out', file, '--quiet');
    const ok = await cli('inspect', file, '--json');
    expect(ok.code).toBe(0);
    const summary = JSON.parse(ok.stdout);
    expect(summary.verified).toBe(true);
    expect(summary.records).toBeGreaterThan(100);
    expect(summary.signaling.UPDATE_LOCATION).toBeGreaterThan(0);

    const text = readFileSync(file, 'utf8').split('\n');
    const cut = join(dir, 'cut.ndjson');
    writeFileSync(cut, text.slice(0, 40).join('\n'));
    const bad = await cli('inspect', cut);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cut\.ndjson: ends after line 40 without a trailer; 39 records were read/);

    const tampered = join(dir, 'tampered.ndjson');
    writeFileSync(
      tampered,
      text.map((l, k) => (k === 5 ? l.replace(/"timestamp":\d/, '"timestamp":9') : l)).join('\n'),
    );
    expect((await cli('inspect', tampered)).stderr).toMatch(/checksum of the record lines does not match/);

    const garbage = join(dir, 'garbage.ndjson');
    writeFileSync(garbage, text.map((l, k) => (k === 7 ? '{"kind":"sig' : l)).join('\n'));
    expect((await cli('inspect', garbage)).stderr).toMatch(/garbage\.ndjson: line 8 is not valid JSON/);
  });

  it('refuses an Avro capture cut inside its header, and a header whose reference data was changed', async () => {
    const avro = join(dir, 'h.avro');
    await cli('simulate', '--devices', '30', '--duration', '1h', '--out', avro, '--quiet');
    const cut = join(dir, 'h-cut.avro');
    writeFileSync(cut, readFileSync(avro).subarray(0, 3000));
    expect((await cli('inspect', cut)).stderr).toMatch(/h-cut\.avro: ends inside its Avro header/);
    const plain = join(dir, 'h.ndjson');
    await cli('simulate', '--devices', '30', '--duration', '1h', '--out', plain, '--quiet');
    const edited = join(dir, 'h-edited.ndjson');
    writeFileSync(edited, readFileSync(plain, 'utf8').replace('"name":"Germany"', '"name":"Germania"'));
    expect((await cli('inspect', edited)).stderr).toMatch(
      /the reference data in the header does not match its sha256/,
    );
  });

  it('reads gzip captures and can write the reference data back out', async () => {
    const file = join(dir, 'g.ndjson.gz');
    await cli('simulate', '--devices', '30', '--duration', '1h', '--out', file, '--quiet');
    expect(gunzipSync(readFileSync(file)).toString('utf8').startsWith('{"kind":"header"')).toBe(true);
    const ref = join(dir, 'back.json');
    const { code, stdout } = await cli('inspect', file, '--sample', '2', '--reference-out', ref);
    expect(code).toBe(0);
    expect(
      stdout
        .split('\n')
        .slice(0, 2)
        .map((l) => JSON.parse(l).kind),
    ).toEqual(['signaling', 'signaling']);
    expect((await cli('reference', 'validate', ref)).code).toBe(0);
  });
});

describe('bad input gets a clear message and a non-zero exit', () => {
  it.each([
    [['simulate', '--devcies', '10', '--out', 'x'], 2, /simulate: Unknown option '--devcies'/],
    [['simulate', '--devices', '10'], 2, /--out FILE is required/],
    [['simulate', '--devices', 'ten', '--out', 'x'], 2, /--devices: "ten" is not an integer/],
    [['simulate', '--duration', '6 hours', '--out', 'x'], 2, /--duration: "6 hours" is not a duration/],
    [
      ['simulate', '--start', 'yesterday', '--out', 'x'],
      2,
      /--start: "yesterday" is not an ISO-8601 UTC time/,
    ],
    [
      ['simulate', '--devices', '10', '--out', '/nonexistent/dir/c.ndjson'],
      1,
      /cannot write \/nonexistent\/dir\/c\.ndjson: its folder does not exist/,
    ],
    [
      ['simulate', '--reference', '/nonexistent.json', '--out', 'x'],
      1,
      /\/nonexistent\.json: 1 problem in reference data:\n {2}- cannot be read: ENOENT/,
    ],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['inspect', '/nonexistent.ndjson'], 1, /capture \/nonexistent\.ndjson does not exist/],
  ])('%j', async (args, code, message) => {
    const result = await cli(...(args as string[]));
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message as RegExp);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('lists every problem of a broken reference file with its path', async () => {
    const file = join(dir, 'broken.json');
    const result = await cli('reference', 'generate', '--devices', '5', '--out', file);
    expect(result.code).toBe(0);
    const data = JSON.parse(readFileSync(file, 'utf8'));
    data.tariffs[2].ratezones[0].rates.data_per_mb = 0.2;
    data.fleets[0].organisation_id = 9;
    writeFileSync(file, JSON.stringify(data));
    const check = await cli('reference', 'validate', file);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('tariffs[2].ratezones[0].rates.data_per_mb: must be a decimal string');
    expect(check.stderr).toContain('fleets[0].organisation_id: organisation 9 does not exist');
  });

  it('has --help for every command', async () => {
    for (const command of [[], ['demo'], ['simulate'], ['inspect'], ['reference']]) {
      const { code, stdout } = await cli(...command, '--help');
      expect(code).toBe(0);
      expect(stdout).toMatch(/Usage: data-streamer/);
    }
  });
});

describe('npm start (demo)', () => {
  it('generates a fleet, simulates a day and says where the data is', async () => {
    const dataDir = join(dir, 'demo');
    const { code, stdout } = await cli('demo', '--data-dir', dataDir, '--devices', '200', '--duration', '6h');
    expect(code).toBe(0);
    expect(stdout).toContain(`Capture:        ${join(dataDir, 'capture.ndjson.gz')}`);
    expect((await readAll(join(dataDir, 'capture.ndjson.gz'))).length).toBeGreaterThan(1000);
    // The built-in data stream delivered events to the demo's own webhook receiver.
    const received = /webhook\s+([\d,]+) events of .+ received at http:\/\/127\.0\.0\.1:\d+\/emnify/.exec(
      stdout,
    );
    expect(Number(received?.[1]?.replaceAll(',', ''))).toBeGreaterThan(0);
    expect(stdout).toMatch(
      /stream \w{8} "demo: events to a local webhook" \(organisation \d+, RestAPI\): Running, [\d,]+ records delivered, 0 behind/,
    );
  });
});

describe('data-streamer users', () => {
  const run = (input: string, ...args: string[]) =>
    spawnSync(process.execPath, [CLI, 'users', ...args], { input, encoding: 'utf8' });

  it('adds a user with the password from standard input, keeps only its hash, and removes it', () => {
    const data = join(dir, 'users');
    const common = ['--data-dir', data, '--organisation', '1001'];
    const added = run('a long passphrase\n', 'add', ...common, '--username', 'ops@example.com');
    expect(added.status, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ organisation_id: 1001, username: 'ops@example.com' });
    expect(readFileSync(join(data, 'api', 'users.json'), 'utf8')).not.toContain('a long passphrase');
    const taken = run('another long passphrase\n', 'add', ...common, '--username', 'ops@example.com');
    expect(taken.status).not.toBe(0);
    expect(taken.stderr).toContain('username: ops@example.com is taken');
    const short = run('short\n', 'add', ...common, '--username', 'x@example.com');
    expect(short.stderr).toContain('password: 12..512 characters');
    expect(JSON.parse(run('', 'list', ...common).stdout)).toHaveLength(1);
    expect(run('', 'remove', ...common, '--username', 'ops@example.com').status).toBe(0);
    expect(JSON.parse(run('', 'list', ...common).stdout)).toEqual([]);
  });
});
