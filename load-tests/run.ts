/**
 * Benchmark runner: `npm run bench [-- [scenario] [--quick] [--all]]`. Each scenario runs in
 * its own Node process pinned to one core (taskset) with the heap capped, prints its
 * numbers, and is compared with load-tests/baselines/<scenario>.json: a number more than
 * 20% worse than its baseline is flagged, whichever way is better for it (throughput
 * higher, latency and memory lower).
 *   (no scenario)  every scenario but the long ones (12 to 14 minutes on 2 cores)
 *   --all          the long ones too (replay-1m alone takes about 10 minutes)
 *   --quick        only the live scenarios, with shorter inputs; not compared (a smoke run)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';

/** A number compared with its baseline, and which way is better for it. */
interface Compared {
  key: string;
  better: 'higher' | 'lower';
  /**
   * Differences smaller than this (in the number's unit) are never flagged: a latency of a
   * few ms that doubles is timer noise, not a regression.
   */
  slack?: number;
}
const higher = (key: string): Compared => ({ key, better: 'higher' });
const lower = (key: string, slack = 0): Compared => ({ key, better: 'lower', slack });

interface Scenario {
  description: string;
  script: string;
  args: string[];
  /** Arguments of a --quick run; scenarios without them are left out of it. */
  quickArgs?: string[];
  /** Takes minutes: only run by name or with --all. */
  long?: boolean;
  /** --max-old-space-size of the child, MB: the memory goal of the scenario. */
  heapLimitMb: number;
  /** The numbers compared with the baseline. */
  compare: Compared[];
  /** Runs on every core instead of core 0 (the engine, its ClickHouse threads and a receiver process together). */
  unpinned?: boolean;
  /** More Node flags for the child. */
  nodeFlags?: string[];
}

/** More than this much worse than the baseline is a regression. */
const TOLERANCE = 0.2;

const tmp = tmpdir();
const SCENARIOS: Record<string, Scenario> = {
  'simulate-ndjson': {
    description: '100k devices, 6 virtual hours, NDJSON file',
    script: 'simulate.js',
    args: ['100000', '6', join(tmp, 'bench.ndjson')],
    heapLimitMb: 1024,
    compare: [higher('records_per_second'), lower('peak_rss_mb')],
  },
  'simulate-gzip': {
    description: '100k devices, 6 virtual hours, NDJSON.gz file',
    script: 'simulate.js',
    args: ['100000', '6', join(tmp, 'bench.ndjson.gz')],
    heapLimitMb: 1024,
    compare: [higher('records_per_second'), lower('peak_rss_mb')],
  },
  'simulate-avro': {
    description: '100k devices, 6 virtual hours, Avro container file (deflate)',
    script: 'simulate.js',
    args: ['100000', '6', join(tmp, 'bench.avro')],
    heapLimitMb: 1024,
    compare: [higher('records_per_second'), lower('peak_rss_mb')],
  },
  'simulate-1m': {
    description: '1M devices in a 1 GB heap, 1 virtual hour, Avro file',
    script: 'simulate.js',
    args: ['1000000', '1', join(tmp, 'bench-1m.avro')],
    long: true,
    heapLimitMb: 1024,
    compare: [higher('records_per_second'), lower('peak_rss_mb')],
  },
  'log-append': {
    description: 'embedded log: 1M records of 300 bytes in batches of 1000, per fsync policy, then read back',
    script: 'log-append.js',
    args: [],
    heapLimitMb: 1024,
    compare: [higher('interval_append_rps'), higher('interval_read_rps')],
  },
  'storage-insert': {
    description: 'embedded ClickHouse (chDB): 1M usage rows in batches of 50k, then exact cost sums',
    script: 'storage-insert.js',
    args: [],
    heapLimitMb: 2048,
    compare: [higher('rows_per_second')],
  },
  'repeat-window': {
    description:
      'the repeat windows: 10M bearers (60M CDRs) in the CDR window, 10M ids in a signaling window; memory and time per check',
    script: 'repeat-window.js',
    args: ['10000000'],
    heapLimitMb: 1024,
    nodeFlags: ['--expose-gc'],
    compare: [
      lower('bytes_per_bearer'),
      lower('new_ns_per_cdr', 20),
      lower('repeat_ns_per_cdr', 20),
      lower('bytes_per_id'),
      lower('new_ns_per_id', 20),
    ],
  },
  'replay-engine': {
    description: '20k devices, 6 virtual hours, replayed through the embedded engine (log, fold, snapshots)',
    script: 'replay.js',
    args: ['20000', '6'],
    heapLimitMb: 2048,
    compare: [higher('records_per_second'), lower('peak_rss_mb')],
    unpinned: true,
  },
  'replay-1m': {
    description:
      '1M endpoints in the reference data, 15 virtual minutes, replayed through the engine (the 2 GB RSS goal)',
    script: 'replay.js',
    args: ['1000000', '0.25'],
    long: true,
    heapLimitMb: 2048,
    compare: [higher('records_per_second'), lower('peak_rss_mb')],
    unpinned: true,
  },
  streams: {
    description:
      '20k devices, 6 virtual hours: a usage and an events stream per organisation (80) drain a backlog to a webhook (batches of 3000), the same streams to S3 (moto_server), then follow the backlog output appended at 20,000 records/s with no engine beside them, then run beside the engine fed 20,000 raw records/s',
    script: 'streams.js',
    args: ['20000', '6', '20000'],
    heapLimitMb: 2048,
    compare: [
      higher('backlog_records_per_second'),
      higher('s3_records_per_second'),
      higher('live_delivered_per_second'),
      lower('live_p99_ms', 100),
      lower('lanes_alone_p99_warm_ms', 50),
    ],
    unpinned: true,
  },
  steady: {
    description:
      '20k devices: the simulator feeds the engine 5,000 raw records/s for 60 s, one webhook events stream; latency per stage',
    script: 'steady.js',
    args: ['20000', '5000', '60'],
    quickArgs: ['20000', '5000', '20'],
    heapLimitMb: 2048,
    compare: [
      higher('raw_per_second'),
      lower('ingest_processed_p99_ms', 100),
      lower('processed_stored_p99_ms', 500),
      lower('processed_delivered_p99_ms', 100),
      lower('end_to_end_p99_ms', 100),
      lower('cpu_us_per_raw'),
      lower('peak_rss_mb'),
    ],
    unpinned: true,
  },
  burst: {
    description:
      'as steady at 2,000 raw records/s, with 10 s at 20,000/s after 20 s: backlog peak and time to drain',
    script: 'burst.js',
    args: ['20000', '2000', '20', '60'],
    quickArgs: ['20000', '2000', '10', '30'],
    heapLimitMb: 2048,
    compare: [
      lower('backlog_peak'),
      lower('drain_seconds', 2),
      lower('latency_recovered_seconds', 2),
      lower('processed_p99_after_ms', 100),
      lower('end_to_end_p99_before_ms', 100),
      lower('peak_rss_mb'),
    ],
    unpinned: true,
  },
  'many-streams': {
    description:
      '50 webhook streams (10 organisations, mixed filters) beside the engine fed 3,000 raw records/s for 40 s',
    script: 'many-streams.js',
    args: ['20000', '3000', '40'],
    quickArgs: ['20000', '3000', '15'],
    heapLimitMb: 2048,
    compare: [
      higher('delivered_per_second'),
      lower('stream_p99_median_ms', 100),
      lower('stream_p99_max_ms', 100),
      higher('stream_completeness_min'),
      lower('starved_streams', 0.5),
      lower('peak_rss_mb'),
    ],
    unpinned: true,
  },
  'failing-sink': {
    description:
      '10 healthy webhook streams alone and beside one whose receiver answers 503 then hangs; 3,000 raw records/s, 30 s per run',
    script: 'failing-sink.js',
    args: ['20000', '3000', '30'],
    quickArgs: ['20000', '3000', '20'],
    heapLimitMb: 2048,
    compare: [
      higher('beside_failing_delivered_per_second'),
      lower('beside_failing_p99_ms', 100),
      higher('throughput_ratio'),
      lower('p99_ratio'),
      higher('failing_in_error'),
    ],
    unpinned: true,
  },
};

/** How a number compares with its baseline: better, worse or the same, and whether it is a regression. */
function judge(c: Compared, base: number, now: number): { verdict: string; regression: boolean } {
  const worse = c.better === 'higher' ? base - now : now - base;
  const verdict = worse > 0 ? 'worse' : worse < 0 ? 'better' : 'same';
  return { verdict, regression: worse > (c.slack ?? 0) && worse > TOLERANCE * Math.abs(base) };
}

function pinned(): string[] {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return ['taskset', '-c', '0'];
  } catch {
    return [];
  }
}

function main(): number {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const all = args.includes('--all');
  const wanted = args.find((a) => !a.startsWith('--'));
  const unknownFlag = args.find((a) => a.startsWith('--') && a !== '--quick' && a !== '--all');
  if (unknownFlag || (wanted && !SCENARIOS[wanted])) {
    console.error(
      `${unknownFlag ? `unknown option "${unknownFlag}"` : `unknown scenario "${wanted}"`}; usage: npm run bench -- [scenario] [--quick] [--all]; scenarios: ${Object.keys(SCENARIOS).join(', ')}`,
    );
    return 2;
  }
  const names = wanted
    ? [wanted]
    : Object.keys(SCENARIOS).filter((name) => {
        const s = SCENARIOS[name] as Scenario;
        return quick ? s.quickArgs !== undefined : all || !s.long;
      });
  const pin = pinned();
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; ${pin.length ? 'pinned to core 0' : 'not pinned (no taskset)'}`,
  );
  let regressions = 0;
  const began = performance.now();
  for (const name of names) {
    const scenario = SCENARIOS[name] as Scenario;
    const scenarioArgs = quick && scenario.quickArgs ? scenario.quickArgs : scenario.args;
    const started = performance.now();
    const script = join(packageRoot(), 'dist', 'load-tests', 'scenarios', scenario.script);
    const command = [
      ...(scenario.unpinned ? [] : pin),
      process.execPath,
      `--max-old-space-size=${scenario.heapLimitMb}`,
      // As the CLI runs (its shebang, npm start, the image): docs/engine.md "Node flags".
      '--max-semi-space-size=32',
      ...(scenario.nodeFlags ?? []),
      script,
      ...scenarioArgs,
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
    const seconds = Math.round((performance.now() - started) / 1000);
    console.log(`\n${name}: ${scenario.description}${quick ? ' (quick)' : ''}, ${seconds} s`);
    for (const [key, value] of Object.entries(result)) console.log(`  ${key.padEnd(32)} ${value}`);
    const baselineFile = join(packageRoot(), 'load-tests', 'baselines', `${name}.json`);
    if (quick) console.log('  (quick run: shorter input, not compared with the baseline)');
    else if (!existsSync(baselineFile)) console.log(`  (no baseline: load-tests/baselines/${name}.json)`);
    else {
      const baseline = JSON.parse(readFileSync(baselineFile, 'utf8')) as Record<string, number>;
      for (const c of scenario.compare) {
        const base = baseline[c.key];
        const now = result[c.key];
        if (base === undefined || now === undefined) continue;
        const { verdict, regression } = judge(c, base, now);
        const change =
          base === 0
            ? ''
            : `${now >= base ? '+' : ''}${(((now - base) / Math.abs(base)) * 100).toFixed(1)}%, `;
        const flag = regression ? `  <-- REGRESSION (more than ${TOLERANCE * 100}% worse)` : '';
        if (regression) regressions++;
        console.log(
          `  vs baseline ${c.key}: ${base} -> ${now} (${change}${verdict}; ${c.better} is better)${flag}`,
        );
      }
    }
  }
  console.log(
    `\n${names.length} scenario(s) in ${Math.round((performance.now() - began) / 1000)} s; ${regressions} regression(s)`,
  );
  return regressions > 0 ? 1 : 0;
}

process.exitCode = main();
