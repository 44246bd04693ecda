import { readFileSync } from 'node:fs';
import { kafkaLogOptions, loadConfig } from '../../config/index.js';
import { avroType } from '../../contracts/avro.js';
import type { EnforcementCommand } from '../../contracts/raw.js';
import { resolveKafkaOptions } from '../../log/kafka/options.js';
import { generateReferenceData, MAX_GENERATED_DEVICES } from '../../reference/generator.js';
import { loadReferenceData } from '../../reference/loader.js';
import type {
  KafkaProduceProgress,
  KafkaProduceSummary,
  KafkaSimulationOptions,
} from '../../simulator/kafka-producer.js';
import { runSimulation, type SimulationSummary } from '../../simulator/run.js';
import type { CoreSimulator, SimulatorStats } from '../../simulator/simulator.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseDuration, parseInstant, parseInteger, parseNumber } from '../args.js';
import { formatBar, formatCount, Progress } from '../progress.js';

export const SIMULATE_HELP = `Usage: data-streamer simulate --out FILE [options]
       data-streamer simulate --kafka BROKERS [--topic-prefix P] [options]
       data-streamer simulate --config FILE [options]

Runs the core simulator: a deterministic stream of raw signaling, data CDRs and SMS
records for a fleet, on a virtual clock, written to a capture file, or produced onto the
raw topic of a distributed engine on Kafka, whose enforcement commands it applies.

Options:
  --out FILE            capture to write: .ndjson, .ndjson.gz or .avro ('-' = NDJSON on stdout)
  --kafka BROKERS       produce to Kafka instead (host:port,...): the engine's raw topic,
                        partitioned and keyed by endpoint as the engine ingests, and read
                        the engine's enforcement commands as they come (topics from
                        data-streamer kafka init)
  --config FILE         produce to the Kafka of this configuration (mode distributed): its
                        brokers, TLS/SASL, topic prefix, partitions and reference data; the
                        options here override them
  --topic-prefix P      with --kafka: prefix of the engine's topic names (default ds.)
  --partitions N        with --kafka: fail unless the raw topic has N partitions
  --speed N|max         with --kafka: N seconds of virtual time per second of wall time
                        (default max: as fast as possible)
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

The same arguments always give a byte-identical capture. With --kafka they give the same
records as long as the engine sends no enforcement command.`;

/** Default prefix of the engine's topic names on Kafka. */
export const DEFAULT_TOPIC_PREFIX = 'ds.';

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
      kafka: { type: 'string' },
      config: { type: 'string' },
      'topic-prefix': { type: 'string' },
      partitions: { type: 'string' },
      speed: { type: 'string' },
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
  const toKafka = values.kafka !== undefined || values.config !== undefined;
  if (values.out && toKafka)
    throw new UsageError(`simulate: give either --out or --${values.kafka ? 'kafka' : 'config'}, not both`);
  if (!values.out && !toKafka)
    throw new UsageError(
      'simulate: --out FILE is required, or --kafka BROKERS or --config FILE (see data-streamer simulate --help)',
    );
  if (!toKafka)
    for (const flag of ['topic-prefix', 'partitions', 'speed'] as const)
      if (values[flag] !== undefined) throw new UsageError(`simulate: --${flag} needs --kafka`);
  if (values.reference && values.devices)
    throw new UsageError('simulate: give either --reference or --devices, not both');
  if (values.out === '-' && values.json)
    throw new UsageError('simulate: --json cannot share stdout with --out -');
  // Kafka, topic prefix, partitions and fleet of the engine: endpoints land where it expects them.
  const config = values.config ? loadConfig(values.config) : undefined;
  const seed = values.seed ?? '1';
  const referenceFile = values.reference ?? (values.devices ? undefined : config?.reference);
  const reference = referenceFile
    ? loadReferenceData(referenceFile)
    : generateReferenceData({
        devices: parseInteger(values.devices ?? '1000', '--devices', 1, MAX_GENERATED_DEVICES),
        seed,
      });
  const common = {
    reference,
    seed,
    start: parseInstant(values.start ?? DEFAULT_START, '--start'),
    durationMs: parseDuration(values.duration ?? '24h', '--duration'),
    ...(values.rate ? { rate: parseNumber(values.rate, '--rate', 1, 1e9) } : {}),
    ...(values.enforcement ? { enforcement: loadEnforcement(values.enforcement) } : {}),
    ...(values['late-cdr-rate']
      ? { lateCdrRate: parseNumber(values['late-cdr-rate'], '--late-cdr-rate', 0, 1) }
      : {}),
    ...(values['duplicate-cdr-rate']
      ? { duplicateCdrRate: parseNumber(values['duplicate-cdr-rate'], '--duplicate-cdr-rate', 0, 1) }
      : {}),
  };
  if (toKafka) {
    const brokers = values.kafka ? { brokers: parseBrokers(values.kafka) } : {};
    const partitions = values.partitions
      ? parseInteger(values.partitions, '--partitions', 1, 10_000)
      : config?.partitions;
    const summary = await runKafkaWithProgress({
      ...common,
      kafka: config
        ? { ...kafkaLogOptions(config), ...brokers }
        : { brokers: [], clientId: 'data-streamer-simulator', ...brokers },
      topicPrefix: values['topic-prefix'] ?? config?.kafka?.topicPrefix ?? DEFAULT_TOPIC_PREFIX,
      ...(partitions !== undefined ? { partitions } : {}),
      ...(values.speed && values.speed !== 'max'
        ? { speed: parseNumber(values.speed, '--speed', 0.001, 1_000_000_000) }
        : {}),
      quiet: Boolean(values.quiet),
    });
    if (values.json) console.log(JSON.stringify(summary, null, 2));
    else printKafkaSummary(summary);
    return 0;
  }
  const out = values.out as string;
  const summary = await runWithProgress({ ...common, out, quiet: Boolean(values.quiet) || out === '-' });
  if (values.json) console.log(JSON.stringify(summary, null, 2));
  else if (out !== '-') printSummary(summary);
  return 0;
}

/** `--kafka a:9092,b:9092` -> ['a:9092', 'b:9092'], each checked as the Kafka log checks it. */
function parseBrokers(text: string): string[] {
  const brokers = text
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  try {
    resolveKafkaOptions({ brokers });
  } catch (error) {
    throw new UsageError(
      `--kafka: ${(error as Error).message.replace(/^Kafka log: option brokers:? ?/, '')}`,
    );
  }
  return brokers;
}

/** Ctrl-C stops cleanly: a capture is closed with a trailer, Kafka appends under way finish. */
async function withSigint<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    return await run(abort.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function progressLine(
  what: string,
  sim: CoreSimulator,
  records: number,
  seconds: number,
  extra = '',
): string {
  const fraction = (sim.now - sim.start) / (sim.end - sim.start);
  const rate = records / Math.max(seconds, 1e-3);
  const eta = fraction > 0 ? (seconds / fraction) * (1 - fraction) : 0;
  return `${what} ${formatBar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}%  virtual ${new Date(sim.now).toISOString().slice(0, 16).replace('T', ' ')}  ${formatCount(records)} records  ${formatCount(rate)}/s${extra}  ETA ${eta.toFixed(0)}s`;
}

export async function runWithProgress(
  options: Parameters<typeof runSimulation>[0] & { quiet?: boolean },
): Promise<SimulationSummary> {
  const progress = new Progress(!options.quiet);
  const began = performance.now();
  try {
    return await withSigint((signal) =>
      runSimulation({
        ...options,
        signal,
        onProgress: (sim, final) =>
          progress.update(
            () => progressLine('simulate', sim, sim.stats.records, (performance.now() - began) / 1000),
            final,
          ),
      }),
    );
  } finally {
    progress.done();
  }
}

/** `simulate --kafka`, with the progress line on stderr. */
export async function runKafkaWithProgress(
  options: KafkaSimulationOptions & { quiet?: boolean },
): Promise<KafkaProduceSummary> {
  // kafkajs is loaded only when Kafka is used.
  const { runKafkaSimulation } = await import('../../simulator/kafka-producer.js');
  const progress = new Progress(!options.quiet);
  let last: CoreSimulator | undefined;
  const draw = (p: KafkaProduceProgress, sim: CoreSimulator, final: boolean) =>
    progress.update(
      () =>
        progressLine(
          `simulate -> ${options.topicPrefix}raw`,
          sim,
          p.records,
          p.elapsedMs / 1000,
          `  ${formatCount(p.commands)} commands`,
        ),
      final,
    );
  try {
    const summary = await withSigint((signal) =>
      runKafkaSimulation({
        ...options,
        signal,
        onStep: (p, sim) => {
          last = sim;
          draw(p, sim, false);
        },
      }),
    );
    if (last) draw(summary, last, true);
    return summary;
  } finally {
    progress.done();
  }
}

/** The lines both summaries share: what the core did. */
function statsLines(s: SimulatorStats): string[] {
  return [
    `  signaling         ${Object.entries(s.bySignaling)
      .map(([k, v]) => `${k} ${formatCount(v)}`)
      .join(', ')}`,
    `  data CDRs         ${formatCount(s.byKind.data_cdr ?? 0)}`,
    `  SMS               MO ${formatCount(s.sms.MO)}, MT ${formatCount(s.sms.MT)} (${formatCount(s.sms.undelivered)} undelivered)`,
    `  rejections        ${
      Object.entries(s.rejected)
        .map(([k, v]) => `${k} ${formatCount(v)}`)
        .join(', ') || 'none'
    }`,
    `  IMSI switches     ${formatCount(s.imsiSwitches)}`,
  ];
}

export function printKafkaSummary(s: KafkaProduceSummary): void {
  const lines = [
    `${s.completed ? 'Produced' : 'Stopped early; produced'} ${formatCount(s.acknowledged)} raw records for ${formatCount(s.devices)} devices to ${s.topic}`,
    `  partitions        ${s.byPartition.map((n, p) => `${p}: ${formatCount(n)}`).join(', ')}`,
    `  virtual time      ${s.start} .. ${s.end}`,
    ...statsLines(s.stats),
    `  enforcement       ${formatCount(s.commands)} commands from the engine, ${formatCount(s.stats.enforcementApplied)} applied${s.invalidCommands > 0 ? ` (${formatCount(s.invalidCommands)} invalid records skipped)` : ''}`,
    `  took              ${(s.elapsedMs / 1000).toFixed(2)} s (${formatCount(s.recordsPerSecond)} records/s)`,
  ];
  console.log(lines.join('\n'));
}

export function printSummary(s: SimulationSummary): void {
  const lines = [
    `${s.completed ? 'Wrote' : 'Stopped early; wrote'} ${formatCount(s.records)} raw records for ${formatCount(s.devices)} devices to ${s.out}`,
    `  virtual time      ${s.start} .. ${s.end}`,
    ...statsLines(s.stats),
    `  enforcement       ${formatCount(s.stats.enforcementApplied)} commands applied`,
    `  took              ${(s.elapsedMs / 1000).toFixed(2)} s (${formatCount(s.recordsPerSecond)} records/s)`,
  ];
  console.log(lines.join('\n'));
}
