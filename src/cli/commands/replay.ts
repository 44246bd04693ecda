import { openCapture } from '../../capture/reader.js';
import { EmbeddedEngine } from '../../engine/engine.js';
import { summarise } from '../../engine/summary.js';
import { settleStreams, streamsOf } from '../../streams/beside-engine.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger, parseNumber } from '../args.js';
import { formatCount, Progress } from '../progress.js';

export const REPLAY_HELP = `Usage: data-streamer replay CAPTURE --data-dir DIR [--speed max|N] [--partitions N] [--json]

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
  --json             print the summary as JSON`;

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      'data-dir': { type: 'string' },
      partitions: { type: 'string' },
      speed: { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
    'replay',
  );
  if (values.help) {
    console.log(REPLAY_HELP);
    return 0;
  }
  const file = positionals[0];
  if (!file) throw new UsageError('replay: give the capture file to replay');
  if (!values['data-dir']) throw new UsageError('replay: --data-dir DIR is required');
  const speed =
    values.speed === undefined || values.speed === 'max'
      ? undefined
      : parseNumber(values.speed, '--speed', 0.001, 1_000_000);
  const capture = await openCapture(file);
  const engine = await EmbeddedEngine.open(
    {
      dataDir: values['data-dir'],
      ...(values.partitions ? { partitions: parseInteger(values.partitions, '--partitions', 1, 512) } : {}),
    },
    capture.header.reference,
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
          return `replay  ${formatCount(p.processed)} records processed  ${formatCount(p.processed / Math.max(seconds, 1e-3))}/s`;
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
    const list = (m: Record<string, number | string>) =>
      Object.entries(m)
        .map(([k, v]) => `${k}: ${typeof v === 'number' ? formatCount(v) : v}`)
        .join(', ') || 'none';
    console.log(
      [
        `Replayed ${file} into ${values['data-dir']} (${formatCount(result.ingested)} records new, ${formatCount(result.processed)} processed in ${seconds.toFixed(2)} s, ${formatCount(summary.records_per_second)}/s)`,
        `  records in        ${formatCount(summary.records_in)}`,
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
