import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../storage/index.js';
import { DataStreamerError, UsageError } from '../../util/errors.js';
import { parse } from '../args.js';

export const QUERY_HELP = `Usage: data-streamer query "<SQL>" --data-dir DIR [--format F]

Runs one SQL statement against the embedded ClickHouse of a data directory (the tables:
events, usage_records, usage_daily, dead_letters; see src/storage/README.md).
  --format F   a ClickHouse output format (default PrettyCompact; e.g. CSVWithNames,
               JSONEachRow, TSV)

Example:
  data-streamer query "SELECT currency, sum(cost) FROM usage_records GROUP BY currency" --data-dir data/demo/engine`;

export async function queryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { 'data-dir': { type: 'string' }, format: { type: 'string' } },
    'query',
  );
  if (values.help) {
    console.log(QUERY_HELP);
    return 0;
  }
  const sql = positionals[0];
  if (!sql) throw new UsageError('query: give the SQL statement to run, in quotes');
  if (!values['data-dir']) throw new UsageError('query: --data-dir DIR is required');
  const dir = join(values['data-dir'], 'clickhouse');
  if (!existsSync(dir))
    throw new DataStreamerError(
      'DATA_DIR_EMPTY',
      `${values['data-dir']} holds no ClickHouse data yet; replay a capture into it first`,
    );
  const store = await openStore({ kind: 'embedded', dataDir: dir });
  try {
    process.stdout.write(await store.query(sql, values.format ?? 'PrettyCompact'));
    return 0;
  } finally {
    await store.close();
  }
}
