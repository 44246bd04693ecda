/**
 * Benchmark scenario: the embedded log appending RECORDS records of ~300 bytes in batches of
 * 1000, once with each fsync policy, then reading them all back in reads of 1000. Runs
 * standalone or from load-tests/run.ts; prints one JSON line with its measurements.
 *   node dist/load-tests/scenarios/log-append.js [RECORDS] [DIR]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FsyncPolicy, openEmbeddedLog } from '../../src/log/index.js';
import type { AppendRecord } from '../../src/log/types.js';

const [recordsArg = '1000000', parent = tmpdir()] = process.argv.slice(2);
const records = Number(recordsArg);
const BATCH = 1000;
const VALUE_BYTES = 285; // + a 15-character key: 300 bytes of record, 334 on disk
const start = Date.UTC(2026, 0, 5);

let peakHeap = 0;
const sample = () => {
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
};
const sampler = setInterval(sample, 50);

// Values are slices of one random pool: incompressible, and no allocation per record.
const pool = randomBytes(1 << 20);
function batchAt(first: number, count: number): AppendRecord[] {
  return Array.from({ length: count }, (_, k) => {
    const i = first + k;
    const at = (i * 7919) % (pool.length - VALUE_BYTES);
    return {
      key: `2950${String(i % 100_000).padStart(11, '0')}`,
      value: pool.subarray(at, at + VALUE_BYTES),
      timestamp: start + i,
    };
  });
}

const perSecond = (n: number, ms: number) => Math.round((n / ms) * 1000);

async function run(fsync: FsyncPolicy): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(parent, `bench-log-${fsync}-`));
  try {
    const log = await openEmbeddedLog({ dir, fsync, retentionMs: Number.POSITIVE_INFINITY });
    const topic = await log.topic('bench', 1);
    let began = performance.now();
    for (let first = 0; first < records; first += BATCH)
      await topic.append(0, batchAt(first, Math.min(BATCH, records - first)));
    const appendMs = performance.now() - began;

    began = performance.now();
    let read = 0;
    let bytes = 0;
    while (read < records) {
      const got = await topic.read(0, read, BATCH);
      for (const r of got) bytes += r.value.length;
      read += got.length;
    }
    const readMs = performance.now() - began;
    if (bytes !== records * VALUE_BYTES) throw new Error(`read back ${bytes} value bytes`);
    await log.close();
    sample();
    return {
      [`${fsync}_append_rps`]: perSecond(records, appendMs),
      [`${fsync}_read_rps`]: perSecond(records, readMs),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Record<string, number> = {};
for (const policy of ['always', 'interval', 'never'] as const) Object.assign(results, await run(policy));
clearInterval(sampler);

console.log(
  JSON.stringify({
    records,
    record_bytes: VALUE_BYTES + 15,
    batch: BATCH,
    ...results,
    peak_heap_mb: Math.round(peakHeap / 2 ** 20),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
