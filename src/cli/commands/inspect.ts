import { openCapture } from '../../capture/reader.js';
import { eventTime } from '../../contracts/raw.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';
import { formatCount } from '../progress.js';
import { writeReferenceData } from './reference.js';

export const INSPECT_HELP = `Usage: data-streamer inspect CAPTURE [--sample N] [--reference-out FILE] [--json]

Reads a capture file (.ndjson, .ndjson.gz, .avro), verifies its trailer and checksum,
and prints what it holds: time range, records per kind and signaling type, rejections.
  --sample N            also print the first N records
  --reference-out FILE  write the reference data embedded in the capture to FILE
  --json                print the summary as JSON`;

export interface CaptureSummary {
  file: string;
  created_by: string;
  start: string;
  end: string;
  reference_sha256: string;
  records: number;
  by_kind: Record<string, number>;
  signaling: Record<string, number>;
  rejected: Record<string, number>;
  sms: Record<string, number>;
  first_event_time: string | null;
  last_event_time: string | null;
  verified: boolean;
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { sample: { type: 'string' }, 'reference-out': { type: 'string' }, json: { type: 'boolean' } },
    'inspect',
  );
  if (values.help) {
    console.log(INSPECT_HELP);
    return 0;
  }
  const file = positionals[0];
  if (!file) throw new UsageError('inspect: give the capture file to read');
  const sample = values.sample ? parseInteger(values.sample, '--sample', 0, 1_000_000) : 0;
  const capture = await openCapture(file);
  if (values['reference-out']) writeReferenceData(values['reference-out'], capture.header.reference);
  const summary: CaptureSummary = {
    file,
    created_by: capture.header.created_by,
    start: capture.header.start,
    end: capture.header.end,
    reference_sha256: capture.header.reference_sha256,
    records: 0,
    by_kind: {},
    signaling: {},
    rejected: {},
    sms: {},
    first_event_time: null,
    last_event_time: null,
    verified: false,
  };
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  const bump = (map: Record<string, number>, key: string) => {
    map[key] = (map[key] ?? 0) + 1;
  };
  for await (const raw of capture.records) {
    summary.records++;
    bump(summary.by_kind, raw.kind);
    if (summary.records <= sample) console.log(JSON.stringify(raw));
    const t = eventTime(raw);
    if (t < first) first = t;
    if (t > last) last = t;
    if (raw.kind === 'signaling') {
      bump(summary.signaling, raw.record.type);
      if (raw.record.result === 'REJECTED') bump(summary.rejected, `${raw.record.type}:${raw.record.cause}`);
    } else if (raw.kind === 'sms') {
      bump(summary.sms, `${raw.record.direction}${raw.record.delivered ? '' : ' undelivered'}`);
    }
  }
  summary.verified = true;
  if (summary.records > 0) {
    summary.first_event_time = new Date(first).toISOString();
    summary.last_event_time = new Date(last).toISOString();
  }
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
    return 0;
  }
  const list = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${formatCount(v)}`)
      .join(', ') || 'none';
  console.log(
    [
      `${file}: ${formatCount(summary.records)} records, ${/\.avro$/i.test(file) ? 'every Avro block read' : 'trailer and checksum verified'}`,
      `  written by        ${summary.created_by}`,
      `  virtual time      ${summary.start} .. ${summary.end}`,
      `  event times       ${summary.first_event_time ?? '-'} .. ${summary.last_event_time ?? '-'}`,
      `  records           ${list(summary.by_kind)}`,
      `  signaling         ${list(summary.signaling)}`,
      `  rejections        ${list(summary.rejected)}`,
      `  SMS               ${list(summary.sms)}`,
      `  reference data    sha256 ${summary.reference_sha256}`,
    ].join('\n'),
  );
  return 0;
}
