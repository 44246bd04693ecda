/**
 * Benchmark runner: `npm run bench [scenario]`. Each scenario runs in its own Node process
 * pinned to one core (taskset) with the heap capped, prints its numbers, and is compared
 * with load-tests/baselines/<scenario>.json (a drop of more than 20% is flagged).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';

interface Scenario {
  description: string;
  script: string;
  args: string[];
  /** --max-old-space-size of the child, MB: the memory goal of the scenario. */
  heapLimitMb: number;
  /** Higher is better for these numbers; they are compared with the baseline. */
  compare: string[];
  /** Runs on every core instead of core 0 (the engine, its ClickHouse threads and a receiver process together). */
  unpinned?: boolean;
}

const tmp = tmpdir();
const SCENARIOS: Record<string, Scenario> = {
  'simulate-ndjson': {
    description: '100k devices, 6 virtual hours, NDJSON file',
    script: 'simulate.js',
    args: ['100000', '6', join(tmp, 'bench.ndjson')],
    heapLimitMb: 1024,
    compare: ['records_per_second'],
  },
  'simulate-gzip': {
    description: '100k devices, 6 virtual hours, NDJSON.gz file',
    script: 'simulate.js',
    args: ['100000', '6', join(tmp, 'bench.ndjson.gz')],
    heapLimitMb: 1024,
    compare: ['records_per_second'],
  },
  'simulate-avro': {
    description: '100k devices, 6 virtual hours, Avro container file (deflate)',
    script: 'simulate.js',
    args: ['100000', '6', join(tmp, 'bench.avro')],
    heapLimitMb: 1024,
    compare: ['records_per_second'],
  },
  'simulate-1m': {
    description: '1M devices in a 1 GB heap, 1 virtual hour, Avro file',
    script: 'simulate.js',
    args: ['1000000', '1', join(tmp, 'bench-1m.avro')],
    heapLimitMb: 1024,
    compare: ['records_per_second'],
  },
  'log-append': {
    description: 'embedded log: 1M records of 300 bytes in batches of 1000, per fsync policy, then read back',
    script: 'log-append.js',
    args: [],
    heapLimitMb: 1024,
    compare: ['interval_append_rps', 'interval_read_rps'],
  },
  'storage-insert': {
    description: 'embedded ClickHouse (chDB): 1M usage rows in batches of 50k, then exact cost sums',
    script: 'storage-insert.js',
    args: [],
    heapLimitMb: 2048,
    compare: ['rows_per_second'],
  },
  'replay-engine': {
    description: '20k devices, 6 virtual hours, replayed through the embedded engine (log, fold, snapshots)',
    script: 'replay.js',
    args: ['20000', '6'],
    heapLimitMb: 2048,
    compare: ['records_per_second'],
    unpinned: true,
  },
  'replay-1m': {
    description:
      '1M endpoints in the reference data, 15 virtual minutes, replayed through the engine (the 2 GB RSS goal)',
    script: 'replay.js',
    args: ['1000000', '0.25'],
    heapLimitMb: 2048,
    compare: ['records_per_second'],
    unpinned: true,
  },
  streams: {
    description:
      '5k devices, 6 virtual hours: webhook streams (batches of 3000) drain a backlog, then run beside the engine fed 20,000 raw records/s',
    script: 'streams.js',
    args: ['5000', '6', '20000'],
    heapLimitMb: 2048,
    compare: ['backlog_records_per_second', 'live_delivered_per_second'],
    unpinned: true,
  },
};

function pinned(): string[] {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return ['taskset', '-c', '0'];
  } catch {
    return [];
  }
}

function main(): number {
  const wanted = process.argv[2];
  if (wanted && !SCENARIOS[wanted]) {
    console.error(`unknown scenario "${wanted}"; scenarios: ${Object.keys(SCENARIOS).join(', ')}`);
    return 2;
  }
  const names = wanted ? [wanted] : Object.keys(SCENARIOS);
  const pin = pinned();
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; ${pin.length ? 'pinned to core 0' : 'not pinned (no taskset)'}`,
  );
  let regressions = 0;
  for (const name of names) {
    const scenario = SCENARIOS[name] as Scenario;
    const script = join(packageRoot(), 'dist', 'load-tests', 'scenarios', scenario.script);
    const command = [
      ...(scenario.unpinned ? [] : pin),
      process.execPath,
      `--max-old-space-size=${scenario.heapLimitMb}`,
      script,
      ...scenario.args,
    ];
    const child = spawnSync(command[0] as string, command.slice(1), {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (child.status !== 0) {
      console.log(`${name}: FAILED (exit ${child.status}${child.signal ? `, ${child.signal}` : ''})`);
      regressions++;
      continue;
    }
    const result = JSON.parse(child.stdout.trim().split('\n').pop() as string) as Record<string, number>;
    console.log(`\n${name}: ${scenario.description}`);
    for (const [key, value] of Object.entries(result)) console.log(`  ${key.padEnd(20)} ${value}`);
    const baselineFile = join(packageRoot(), 'load-tests', 'baselines', `${name}.json`);
    if (existsSync(baselineFile)) {
      const baseline = JSON.parse(readFileSync(baselineFile, 'utf8')) as Record<string, number>;
      for (const key of scenario.compare) {
        const base = baseline[key];
        const now = result[key];
        if (base === undefined || now === undefined) continue;
        const change = (now - base) / base;
        const flag = change < -0.2 ? '  <-- REGRESSION (more than 20% below baseline)' : '';
        if (flag) regressions++;
        console.log(`  vs baseline ${key}: ${base} -> ${now} (${(change * 100).toFixed(1)}%)${flag}`);
      }
    }
  }
  return regressions > 0 ? 1 : 0;
}

process.exitCode = main();
