import {
  DEFAULT_DIFF_LIMIT,
  DIFF_TOPICS,
  type DiffTopic,
  diffDataDirs,
  formatDiffReport,
} from '../../lab/diff.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';

export const DIFF_HELP = `Usage: data-streamer diff A B [--limit N] [--topic NAME]... [--json]

Compares the outputs of two engine data directories record by record: for instance the
same capture replayed by two engine versions (data-streamer replay CAPTURE --data-dir A,
then with the other version into B). Every output topic is compared: ${DIFF_TOPICS.join(', ')}.

Records are matched by their id (command_id for enforcement commands; the position
partition:offset for a record with neither). Reported per topic: records in A and B,
identical, changed (same id, other content: the field paths with old -> new values),
missing (in A, not in B) and extra (in B, not in A); then the first N differences:
  usage 704: cost 0.088671875 -> 0.17734375; rating.rate "0.20" -> "0.40"
Numbers are compared as written (exactly), never as floats.

  --limit N       differences to list (default ${DEFAULT_DIFF_LIMIT}; all are counted); 0 for the summary only
  --topic NAME    compare only this topic (repeatable)
  --json          the report as JSON (old/new values are the fields' JSON texts)

Exit code: 0 when A and B hold the same records, 1 when they differ (or when A or B
cannot be read: the message says which), 2 for a command-line mistake.`;

export async function diffCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      limit: { type: 'string' },
      topic: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
    'diff',
  );
  if (values.help) {
    console.log(DIFF_HELP);
    return 0;
  }
  if (positionals.length !== 2)
    throw new UsageError(
      `diff: give two data directories, A and B (got ${positionals.length}; see data-streamer diff --help)`,
    );
  const [a, b] = positionals as [string, string];
  const limit =
    values.limit === undefined ? DEFAULT_DIFF_LIMIT : parseInteger(values.limit, '--limit', 0, 1_000_000);
  const topics = (values.topic ?? []).map((name) => {
    if (!(DIFF_TOPICS as readonly string[]).includes(name))
      throw new UsageError(`--topic: "${name}" is not an output topic; topics: ${DIFF_TOPICS.join(', ')}`);
    return name as DiffTopic;
  });
  const report = await diffDataDirs(a, b, { limit, ...(topics.length > 0 ? { topics } : {}) });
  console.log(values.json ? JSON.stringify(report, null, 2) : formatDiffReport(report));
  return report.identical ? 0 : 1;
}
