import { readFileSync } from 'node:fs';
import { avroType } from '../../contracts/avro.js';
import type { EnforcementCommand } from '../../contracts/raw.js';
import { generateReferenceData, MAX_GENERATED_DEVICES } from '../../reference/generator.js';
import { loadReferenceData } from '../../reference/loader.js';
import { runSimulation, type SimulationSummary } from '../../simulator/run.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseDuration, parseInstant, parseInteger, parseNumber } from '../args.js';
import { formatBar, formatCount, Progress } from '../progress.js';

export const SIMULATE_HELP = `Usage: data-streamer simulate --out FILE [options]

Runs the core simulator: a deterministic stream of raw signaling, data CDRs and SMS
records for a fleet, on a virtual clock, written to a capture file.

Options:
  --out FILE            capture to write: .ndjson, .ndjson.gz or .avro ('-' = NDJSON on stdout)
  --devices N           generate a fleet of N devices (default 1000)
  --reference FILE      use this reference data (JSON or YAML) instead of generating one
  --seed S              seed of the fleet and of the traffic (default 1)
  --duration D          virtual time to simulate, e.g. 90m, 6h, 7d (default 24h)
  --start T             virtual start, ISO-8601 UTC (default 2026-01-05T00:00:00Z)
  --rate R              pace output at R records per second of wall-clock time
  --enforcement FILE    NDJSON of enforcement commands (block, throttle, unblock,
                        disconnect) the core applies at their timestamps
  --late-cdr-rate P     share of final CDRs delivered after Delete PDP Context (default 0.01)
  --duplicate-cdr-rate P  share of sessions whose final CDR is delivered twice (default 0.002)
  --json                print the summary as JSON on stdout
  --quiet               no progress line
  -h, --help            this help

The same arguments always give a byte-identical capture.`;

export const DEFAULT_START = '2026-01-05T00:00:00Z';

/** Reads enforcement commands, one JSON object per line, validated against the contract. */
export function loadEnforcement(file: string): EnforcementCommand[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--enforcement: cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`);
  }
  const type = avroType('enforcement-command');
  const commands: EnforcementCommand[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new UsageError(`--enforcement: ${file} line ${i + 1} is not valid JSON`);
    }
    const problems: string[] = [];
    type.isValid(value, { errorHook: (path) => problems.push(path.join('.') || '(record)') });
    if (problems.length > 0)
      throw new UsageError(
        `--enforcement: ${file} line ${i + 1}: invalid field(s) ${problems.join(', ')} (see schemas/avro/enforcement-command.avsc)`,
      );
    commands.push(value as EnforcementCommand);
  });
  return commands;
}

export async function simulateCommand(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      out: { type: 'string' },
      devices: { type: 'string' },
      reference: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      start: { type: 'string' },
      rate: { type: 'string' },
      enforcement: { type: 'string' },
      'late-cdr-rate': { type: 'string' },
      'duplicate-cdr-rate': { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
    'simulate',
  );
  if (values.help) {
    console.log(SIMULATE_HELP);
    return 0;
  }
  if (!values.out)
    throw new UsageError('simulate: --out FILE is required (see data-streamer simulate --help)');
  if (values.reference && values.devices)
    throw new UsageError('simulate: give either --reference or --devices, not both');
  if (values.out === '-' && values.json)
    throw new UsageError('simulate: --json cannot share stdout with --out -');
  const seed = values.seed ?? '1';
  const reference = values.reference
    ? loadReferenceData(values.reference)
    : generateReferenceData({
        devices: parseInteger(values.devices ?? '1000', '--devices', 1, MAX_GENERATED_DEVICES),
        seed,
      });
  const summary = await runWithProgress({
    reference,
    seed,
    start: parseInstant(values.start ?? DEFAULT_START, '--start'),
    durationMs: parseDuration(values.duration ?? '24h', '--duration'),
    out: values.out,
    ...(values.rate ? { rate: parseNumber(values.rate, '--rate', 1, 1e9) } : {}),
    ...(values.enforcement ? { enforcement: loadEnforcement(values.enforcement) } : {}),
    ...(values['late-cdr-rate']
      ? { lateCdrRate: parseNumber(values['late-cdr-rate'], '--late-cdr-rate', 0, 1) }
      : {}),
    ...(values['duplicate-cdr-rate']
      ? { duplicateCdrRate: parseNumber(values['duplicate-cdr-rate'], '--duplicate-cdr-rate', 0, 1) }
      : {}),
    quiet: Boolean(values.quiet) || values.out === '-',
  });
  if (values.json) console.log(JSON.stringify(summary, null, 2));
  else if (values.out !== '-') printSummary(summary);
  return 0;
}

export async function runWithProgress(
  options: Parameters<typeof runSimulation>[0] & { quiet?: boolean },
): Promise<SimulationSummary> {
  const progress = new Progress(!options.quiet);
  const abort = new AbortController();
  // Ctrl-C stops cleanly: the capture is closed with a trailer and stays readable.
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  const began = performance.now();
  try {
    return await runSimulation({
      ...options,
      signal: abort.signal,
      onProgress: (sim, final) =>
        progress.update(() => {
          const fraction = (sim.now - sim.start) / (sim.end - sim.start);
          const seconds = (performance.now() - began) / 1000;
          const rate = sim.stats.records / Math.max(seconds, 1e-3);
          const eta = fraction > 0 ? (seconds / fraction) * (1 - fraction) : 0;
          return `simulate ${formatBar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}%  virtual ${new Date(sim.now).toISOString().slice(0, 16).replace('T', ' ')}  ${formatCount(sim.stats.records)} records  ${formatCount(rate)}/s  ETA ${eta.toFixed(0)}s`;
        }, final),
    });
  } finally {
    progress.done();
    process.removeListener('SIGINT', onSigint);
  }
}

export function printSummary(s: SimulationSummary): void {
  const lines = [
    `${s.completed ? 'Wrote' : 'Stopped early; wrote'} ${formatCount(s.records)} raw records for ${formatCount(s.devices)} devices to ${s.out}`,
    `  virtual time      ${s.start} .. ${s.end}`,
    `  signaling         ${Object.entries(s.stats.bySignaling)
      .map(([k, v]) => `${k} ${formatCount(v)}`)
      .join(', ')}`,
    `  data CDRs         ${formatCount(s.stats.byKind.data_cdr ?? 0)}`,
    `  SMS               MO ${formatCount(s.stats.sms.MO)}, MT ${formatCount(s.stats.sms.MT)} (${formatCount(s.stats.sms.undelivered)} undelivered)`,
    `  rejections        ${
      Object.entries(s.stats.rejected)
        .map(([k, v]) => `${k} ${formatCount(v)}`)
        .join(', ') || 'none'
    }`,
    `  IMSI switches     ${formatCount(s.stats.imsiSwitches)}`,
    `  enforcement       ${formatCount(s.stats.enforcementApplied)} commands applied`,
    `  took              ${(s.elapsedMs / 1000).toFixed(2)} s (${formatCount(s.recordsPerSecond)} records/s)`,
  ];
  console.log(lines.join('\n'));
}
