import { accessSync, constants, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { replayIntoTopic } from '../../capture/into-kafka.js';
import { openCapture } from '../../capture/reader.js';
import { kafkaLogOptions, loadConfig, storeOptions } from '../../config/index.js';
import { redactUrl } from '../../config/load.js';
import { MAX_LEAP_MS } from '../../core/fold.js';
import { EmbeddedEngine } from '../../engine/engine.js';
import { summarise } from '../../engine/summary.js';
import { parseShadowMappings, type ShadowMapping, shadowReplay } from '../../lab/shadow.js';
import { alternativeReference, whatIf } from '../../lab/whatif.js';
import { formatWhatIf, whatIfJson, writeWhatIfReport } from '../../lab/whatif-report.js';
import { openKafkaLog } from '../../log/kafka/log.js';
import { Directory } from '../../reference/directory.js';
import { loadReferenceData } from '../../reference/loader.js';
import { referenceSha256 } from '../../simulator/run.js';
import { settleStreams, streamsOf } from '../../streams/beside-engine.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger, parseNumber } from '../args.js';
import { formatBar, formatCount, Progress } from '../progress.js';

export const REPLAY_HELP = `Usage: data-streamer replay CAPTURE --data-dir DIR [--tariff FILE] [--speed max|N] [--partitions N] [--retention-hours H] [--json]
       data-streamer replay CAPTURE --tariff FILE --diff [--report DIR] [--partitions N] [--json]
       data-streamer replay CAPTURE --config FILE [--speed max|N]
       data-streamer replay CAPTURE --shadow ORG=SHADOW[,ORG=SHADOW...] --config FILE [--data-dir DIR] [--speed max|N] [--json]

Runs a capture through the embedded engine to completion: the raw records go onto the
durable input log, each partition is folded into connectivity events and rated usage
records, and the state is snapshotted. Prints a summary: records in, dead letters by
reason, events by type, usage records and cost totals per currency (exact).

Resumable: killed half-way, run it again with the same DIR and it carries on; a finished
replay run again adds nothing. The data streams of DIR (data-streamer streams) deliver
while it runs.
  --data-dir DIR     where the engine keeps its log, snapshots and reference data
  --speed max|N      max (default): as fast as possible; N: N times the capture's own pace
                     (1 = original pace, 60 = an hour of traffic a minute)
  --partitions N     partitions of a new data dir (default 4)
  --retention-hours H
                     the log keeps records H hours after they were written (default 168, 7 days),
                     and always what the engine has not yet snapshotted, stored or merged
  --json             print the summary (or the what-if report) as JSON
  --tariff FILE      rate with the tariffs of FILE ({ "tariffs": [ ... ] }, JSON or YAML, in the
                     reference-data shape) in place of the capture's tariffs with the same ids
  --diff             what-if: replay the capture twice, with its own tariffs and with --tariff,
                     into temporary data dirs, and report volume, old cost, new cost and delta
                     per organisation, endpoint and ratezone (docs/what-if.md); no --data-dir
  --report DIR       with --diff: also write DIR/whatif.csv and DIR/whatif.html, and keep the
                     two temporary data dirs (their paths are printed)
  --config FILE      into Kafka: put the capture's records onto the raw topic of a running
                     distributed deployment (configuration of mode distributed, docs/distributed.md),
                     partitioned by its reference data; its replicas process them; no --data-dir
  --shadow ORG=SHADOW,...
                     with --config: replay the traffic of organisation ORG as a new organisation
                     SHADOW (named "<name> (shadow)") into the ClickHouse server of the running
                     deployment of FILE, beside its live data, which stays as it is; other
                     organisations' records are skipped (docs/shadow-replay.md). The shadow run's
                     log and state go to --data-dir DIR (default: a new temporary dir, printed);
                     run again with the same DIR to resume`;

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      'data-dir': { type: 'string' },
      partitions: { type: 'string' },
      'retention-hours': { type: 'string' },
      speed: { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
      tariff: { type: 'string' },
      diff: { type: 'boolean' },
      report: { type: 'string' },
      config: { type: 'string' },
      shadow: { type: 'string' },
    },
    'replay',
  );
  if (values.help) {
    console.log(REPLAY_HELP);
    return 0;
  }
  const file = positionals[0];
  if (!file) throw new UsageError('replay: give the capture file to replay');
  const partitions = values.partitions ? parseInteger(values.partitions, '--partitions', 1, 512) : undefined;
  if (values.report !== undefined && !values.diff) throw new UsageError('replay: --report DIR needs --diff');
  if (values.shadow !== undefined) {
    if (values.diff || values.tariff || partitions)
      throw new UsageError(
        "replay: --shadow replays with the capture's tariffs and the deployment's partitions; leave out --diff, --tariff and --partitions",
      );
    const mappings = parseShadowMappings(values.shadow);
    if (values.config === undefined)
      throw new UsageError(
        'replay: --shadow needs --config FILE, the configuration of the running deployment whose ClickHouse server gets the shadow organisations',
      );
    return shadowRun(file, mappings, values.config, {
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      ...(values.speed !== undefined && values.speed !== 'max'
        ? { speed: parseNumber(values.speed, '--speed', 0.001, 1_000_000) }
        : {}),
      json: Boolean(values.json),
      quiet: Boolean(values.quiet),
    });
  }
  if (values.diff) {
    if (!values.tariff)
      throw new UsageError('replay: --diff needs --tariff FILE (the tariffs to compare with)');
    if (values['data-dir'])
      throw new UsageError('replay: --diff replays into two temporary data dirs; leave out --data-dir');
    if (values.speed !== undefined) throw new UsageError('replay: --speed is not used with --diff');
    if (values.report !== undefined) {
      // Before the replays, not after them.
      try {
        mkdirSync(values.report, { recursive: true });
        accessSync(values.report, constants.W_OK);
      } catch (error) {
        throw new UsageError(
          `replay: --report ${values.report} is not a writable directory (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        );
      }
    }
    return whatIfRun(file, values.tariff, {
      ...(partitions ? { partitions } : {}),
      ...(values.report !== undefined ? { report: values.report } : {}),
      json: Boolean(values.json),
      quiet: Boolean(values.quiet),
    });
  }
  const speed =
    values.speed === undefined || values.speed === 'max'
      ? undefined
      : parseNumber(values.speed, '--speed', 0.001, 1_000_000);
  if (values.config !== undefined) {
    if (values['data-dir'] || values.tariff)
      throw new UsageError('replay: --config replays into Kafka; leave out --data-dir and --tariff');
    return intoKafka(file, values.config, speed, Boolean(values.quiet));
  }
  if (!values['data-dir']) throw new UsageError('replay: --data-dir DIR is required');
  const capture = await openCapture(file);
  const start = Date.parse(capture.header.start);
  const end = Date.parse(capture.header.end);
  const reference = values.tariff
    ? alternativeReference(values.tariff, capture.header.reference).reference
    : capture.header.reference;
  const retentionHours = values['retention-hours'];
  const engine = await EmbeddedEngine.open(
    {
      dataDir: values['data-dir'],
      ...(partitions ? { partitions } : {}),
      ...(retentionHours === undefined
        ? {}
        : { retentionMs: Math.round(parseNumber(retentionHours, '--retention-hours', 0, 1e6) * 3_600_000) }),
    },
    reference,
  );
  // Data streams of this data dir deliver while the replay runs.
  const streams = streamsOf(engine, values['data-dir']);
  await streams.start();
  const progress = new Progress(!values.quiet && !values.json);
  const began = performance.now();
  try {
    const result = await engine.replay(
      file,
      (p) =>
        progress.update(() => {
          const seconds = (performance.now() - began) / 1000;
          const rate = `${formatCount(p.processed / Math.max(seconds, 1e-3))}/s`;
          if (p.virtualTime === null) return `replay  ${formatCount(p.processed)} records  ${rate}`;
          // How far through the capture's virtual time range, and the time left at this pace.
          const fraction = Math.min(1, Math.max(0, (p.virtualTime - start) / Math.max(end - start, 1)));
          const eta = fraction > 0 ? (seconds * (1 - fraction)) / fraction : Number.NaN;
          const virtual = new Date(p.virtualTime).toISOString().slice(0, 19).replace('T', ' ');
          return `replay ${formatBar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}%  virtual ${virtual}  ${formatCount(p.processed)} records  ${rate}  ETA ${Number.isFinite(eta) ? `${Math.round(eta)} s` : '?'}`;
        }),
      speed === undefined ? {} : { speed },
    );
    progress.done();
    const seconds = (performance.now() - began) / 1000;
    const summary = {
      ...(await summarise(engine)),
      ingested_now: result.ingested,
      seconds,
      records_per_second: Math.round(result.processed / Math.max(seconds, 1e-3)),
    };
    const streamLines = await settleStreams(streams, 30_000);
    if (values.json) {
      console.log(JSON.stringify(summary, null, 2));
      return 0;
    }
    console.log(
      [
        `Replayed ${file}${values.tariff ? ` with the tariffs of ${values.tariff}` : ''} into ${values['data-dir']} (${formatCount(result.ingested)} records new, ${formatCount(result.processed)} processed in ${seconds.toFixed(2)} s, ${formatCount(summary.records_per_second)}/s)`,
        `  records in        ${formatCount(summary.records_in)}`,
        ...heldLine(summary),
        `  dead letters      ${list(summary.dead_letters)}`,
        `  repeats skipped   ${formatCount(summary.duplicates_skipped)}`,
        `  events            ${list(summary.events)}`,
        `  usage records     data ${formatCount(summary.usage_records.data)}, SMS ${formatCount(summary.usage_records.sms)}`,
        `  cost              ${list(summary.cost)}`,
        `  enforcement       ${formatCount(summary.enforcement_commands)} commands for the core`,
        ...(streamLines.length > 0 ? ['  data streams', ...streamLines] : []),
      ].join('\n'),
    );
    return 0;
  } finally {
    await streams.close();
    await engine.close();
  }
}

/** `replay CAPTURE --tariff FILE --diff`: the what-if report. */
async function whatIfRun(
  file: string,
  tariffFile: string,
  options: { partitions?: number; report?: string; json: boolean; quiet: boolean },
): Promise<number> {
  const progress = new Progress(!options.quiet && !options.json);
  const began = performance.now();
  const result = await whatIf({
    capture: file,
    tariffFile,
    ...(options.partitions ? { partitions: options.partitions } : {}),
    keep: options.report !== undefined,
    onProgress: (run, p) =>
      progress.update(() => {
        const seconds = (performance.now() - began) / 1000;
        return `what-if  ${run === 'old' ? '1/2 capture tariffs' : '2/2 alternative tariffs'}  ${formatCount(p.processed)} records processed  ${seconds.toFixed(0)} s`;
      }),
  });
  progress.done();
  const files = options.report !== undefined ? writeWhatIfReport(options.report, result) : undefined;
  if (options.json) {
    console.log(JSON.stringify({ ...whatIfJson(result), ...(files ? { report: files } : {}) }, null, 2));
    return 0;
  }
  console.log(formatWhatIf(result));
  if (files) console.log(`\nReport: ${files.csv}, ${files.html}`);
  if (result.kept)
    console.log(
      `Data dirs kept (--report): ${result.kept.old} (capture tariffs), ${result.kept.new} (alternative); remove them when done`,
    );
  return 0;
}

/** `replay CAPTURE --config FILE`: the capture onto the raw topic of a distributed deployment. */
async function intoKafka(
  file: string,
  configFile: string,
  speed: number | undefined,
  quiet: boolean,
): Promise<number> {
  const config = loadConfig(configFile);
  if (config.mode !== 'distributed' || !config.kafka || !config.reference)
    throw new UsageError(
      `replay: --config ${configFile} is mode ${config.mode}; replaying into Kafka needs mode distributed`,
    );
  const reference = loadReferenceData(config.reference);
  const capture = await openCapture(file);
  if (referenceSha256(capture.header.reference) !== referenceSha256(reference))
    console.error(
      `replay: the capture was made with other reference data than ${config.reference}: the replicas resolve its IMSIs with theirs (unknown ones are dead-lettered)`,
    );
  const log = await openKafkaLog(kafkaLogOptions(config));
  const progress = new Progress(!quiet);
  const began = performance.now();
  try {
    const name = `${config.kafka.topicPrefix}raw`;
    const raw = await log.topic(name, config.partitions);
    const result = await replayIntoTopic(file, raw, new Directory(reference), {
      ...(speed === undefined ? {} : { speed }),
      onProgress: (p) =>
        progress.update(
          () =>
            `replay -> ${name}  ${formatCount(p.lines)} records  virtual ${p.virtualTime === null ? '-' : new Date(p.virtualTime).toISOString().slice(0, 19).replace('T', ' ')}  ${formatCount(p.lines / Math.max((performance.now() - began) / 1000, 1e-3))}/s`,
        ),
    });
    progress.done();
    console.log(
      `Replayed ${formatCount(result.lines)} records of ${file} onto ${name} in ${((performance.now() - began) / 1000).toFixed(1)} s; the replicas of group ${config.kafka.consumerGroup} process them.`,
    );
    return 0;
  } finally {
    await log.close();
  }
}

/** `replay CAPTURE --shadow ORG=SHADOW --config FILE`: shadow organisations in a running deployment's store. */
async function shadowRun(
  file: string,
  mappings: ShadowMapping[],
  configFile: string,
  options: { dataDir?: string; speed?: number; json: boolean; quiet: boolean },
): Promise<number> {
  const config = loadConfig(configFile);
  const store = storeOptions(config);
  if (store.kind !== 'server' || !config.clickhouse)
    throw new UsageError(
      `replay: --shadow writes into the ClickHouse server of a running deployment, but --config ${configFile} is mode ${config.mode}: its store is the chDB inside the engine's data dir (${join(config.dataDir, 'clickhouse')}), which no second process can open while the engine runs. Give the configuration of a distributed deployment (mode distributed, clickhouse.url)`,
    );
  if (options.dataDir !== undefined && resolve(options.dataDir) === resolve(config.dataDir))
    throw new UsageError(
      `replay: --data-dir ${options.dataDir} is the deployment's own dataDir; the shadow run needs a directory of its own`,
    );
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'data-streamer-shadow-'));
  if (options.dataDir === undefined)
    console.error(
      `replay: the shadow run's data dir is ${dataDir} (--data-dir ${dataDir} resumes or repeats it)`,
    );
  const storeName = `ClickHouse ${redactUrl(config.clickhouse.url)} database ${config.clickhouse.database}`;
  const progress = new Progress(!options.quiet && !options.json);
  const began = performance.now();
  const result = await shadowReplay({
    capture: file,
    mappings,
    store,
    storeName,
    dataDir,
    partitions: config.partitions,
    ...(options.speed === undefined ? {} : { speed: options.speed }),
    onProgress: (p) =>
      progress.update(() => {
        const seconds = (performance.now() - began) / 1000;
        const virtual =
          p.virtualTime === null ? '-' : new Date(p.virtualTime).toISOString().slice(0, 19).replace('T', ' ');
        return `shadow replay  virtual ${virtual}  ${formatCount(p.processed)} records  ${formatCount(p.skipped)} skipped  ${formatCount(p.processed / Math.max(seconds, 1e-3))}/s`;
      }),
  });
  progress.done();
  const seconds = (performance.now() - began) / 1000;
  const { summary, skipped } = result;
  if (options.json) {
    const { records_in, ...outputs } = summary;
    console.log(
      JSON.stringify(
        {
          capture: file,
          store: { url: redactUrl(config.clickhouse.url), database: config.clickhouse.database },
          data_dir: dataDir,
          organisations: result.organisations,
          records_in,
          skipped,
          ...outputs,
          ingested_now: result.progress.ingested,
          seconds,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  console.log(
    [
      `Replayed ${file} as shadow organisations into ${storeName} (${formatCount(result.progress.ingested)} records new, ${formatCount(result.progress.processed)} processed in ${seconds.toFixed(2)} s)`,
      ...result.organisations.map(
        (o) => `  shadow            ${o.id} ${o.name} -> ${o.shadow.id} ${o.shadow.name}`,
      ),
      `  data dir          ${dataDir}`,
      `  records in        ${formatCount(summary.records_in)}`,
      ...heldLine(summary),
      `  skipped           ${formatCount(skipped.records)}: other organisations ${list(skipped.by_organisation)}; no organisation ${formatCount(skipped.without_organisation)}`,
      `  dead letters      ${list(summary.dead_letters)}`,
      `  repeats skipped   ${formatCount(summary.duplicates_skipped)}`,
      `  events            ${list(summary.events)}`,
      `  usage records     data ${formatCount(summary.usage_records.data)}, SMS ${formatCount(summary.usage_records.sms)}`,
      `  cost              ${list(summary.cost)}`,
      `  enforcement       ${formatCount(summary.enforcement_commands)} commands, kept in the data dir (a shadow has no core)`,
    ].join('\n'),
  );
  return 0;
}

/** `key: value, ...` of a summary's counts (numbers grouped), or none. */
function list(counts: Record<string, number | string>): string {
  return (
    Object.entries(counts)
      .map(([k, v]) => `${k}: ${typeof v === 'number' ? formatCount(v) : v}`)
      .join(', ') || 'none'
  );
}

/** Records the clock guard still holds (docs/engine.md): in, but waiting for later records. */
function heldLine(summary: { held_back?: number }): string[] {
  return summary.held_back
    ? [
        `  held back         ${formatCount(summary.held_back)} (more than ${MAX_LEAP_MS / 86_400_000} days ahead; decided by the next records)`,
      ]
    : [];
}
