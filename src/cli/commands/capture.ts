import { captureFromLog, type LogCaptureSummary } from '../../capture/from-log.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInstant } from '../args.js';
import { formatCount, Progress } from '../progress.js';

export const CAPTURE_HELP = `Usage: data-streamer capture --from log --data-dir DIR --out FILE [--since T] [--until T] [--json]

Writes the raw records (engine commands included) that an engine took in, read back from
its data directory's input log, to a capture file: records whose event time is in
[--since, --until), in event-time order, with their original timestamps and bytes and the
reference data of DIR in the header. A replay of the file reproduces the same raw log.
Run it while no engine runs on DIR (the directory is used by one process at a time).

  --from log       read the embedded engine's log (--from kafka comes with distributed
                   mode, not available yet)
  --data-dir DIR   the engine's data directory (as given to data-streamer replay)
  --out FILE       capture to write: .ndjson, .ndjson.gz or .avro ('-' = NDJSON on stdout)
  --since T        first event time to include, ISO-8601 UTC (default: the log's start)
  --until T        event time to stop before, ISO-8601 UTC (default: the log's end)
  --json           print the summary as JSON
  --quiet          no progress line`;

export async function captureCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      from: { type: 'string' },
      'data-dir': { type: 'string' },
      out: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
    'capture',
  );
  if (values.help) {
    console.log(CAPTURE_HELP);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(
      `capture: unexpected argument "${positionals[0]}" (see data-streamer capture --help)`,
    );
  if (values.from === 'kafka')
    throw new UsageError(
      'capture: --from kafka comes with distributed mode, which is not available yet; use --from log --data-dir DIR',
    );
  if (values.from !== 'log')
    throw new UsageError(
      values.from === undefined
        ? 'capture: --from log is required (see data-streamer capture --help)'
        : `capture: --from must be log (or kafka, with distributed mode), got "${values.from}"`,
    );
  if (!values['data-dir']) throw new UsageError('capture: --data-dir DIR is required');
  if (!values.out) throw new UsageError('capture: --out FILE is required');
  if (values.out === '-' && values.json)
    throw new UsageError('capture: --json cannot share stdout with --out -');
  const since = values.since === undefined ? undefined : parseInstant(values.since, '--since');
  const until = values.until === undefined ? undefined : parseInstant(values.until, '--until');
  if (since !== undefined && until !== undefined && since >= until)
    throw new UsageError(`capture: --since (${values.since}) must be before --until (${values.until})`);

  const progress = new Progress(!values.quiet && !values.json && values.out !== '-');
  const summary = await captureFromLog({
    dataDir: values['data-dir'],
    out: values.out,
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    onProgress: (written, total) =>
      progress.update(() => `capture  ${formatCount(written)} of ${formatCount(total)} records written`),
  });
  progress.done();
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
    return 0;
  }
  // With the capture on stdout, the summary goes to stderr.
  const print = values.out === '-' ? console.error : console.log;
  print(describe(summary));
  return 0;
}

function describe(s: LogCaptureSummary): string {
  const kinds =
    Object.entries(s.by_kind)
      .map(([k, v]) => `${k} ${formatCount(v)}`)
      .join(', ') || 'none';
  const lines = [
    `Captured ${formatCount(s.records)} raw records from ${s.dataDir} (${s.partitions} partitions) to ${s.out}`,
    `  range             ${s.since ?? 'start of the log'} .. ${s.until ?? 'end of the log'}`,
    `  event times       ${s.first_event_time ?? '-'} .. ${s.last_event_time ?? '-'}`,
    `  records           ${kinds}`,
  ];
  if (s.normalised > 0)
    lines.push(
      `  normalised        ${formatCount(s.normalised)} lines not in canonical form, written canonically`,
    );
  if (s.not_captured_count > 0) {
    lines.push(
      `  NOT captured      ${formatCount(s.not_captured_count)} damaged lines the capture format cannot hold (listed in the header's source.not_captured_lines):`,
      ...s.not_captured
        .slice(0, 5)
        .map((n) => `    raw/${n.partition} offset ${n.offset}: ${n.code}: ${n.reason}`),
    );
  }
  return lines.join('\n');
}
