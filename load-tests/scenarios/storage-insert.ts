/**
 * Benchmark scenario: usage records into a fresh embedded store (chdb), in batches, then
 * the exact cost sum from the table and from the daily rollup. Prints one JSON line.
 *   node dist/load-tests/scenarios/storage-insert.js [ROWS] [BATCH] [DATA_DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDecimal } from '../../src/core/decimal.js';
import { CURRENCIES, type EmnifyUsageRecord } from '../../src/core/output.js';
import { usageToRow } from '../../src/storage/convert.js';
import { openStore } from '../../src/storage/open.js';
import type { UsageRow } from '../../src/storage/rows.js';

const [rowsArg = '1000000', batchArg = '50000', dirArg] = process.argv.slice(2);
const total = Number(rowsArg);
const batchSize = Number(batchArg);
const dataDir = dirArg ?? mkdtempSync(join(tmpdir(), 'ds-bench-store-'));
const T0 = Date.UTC(2026, 0, 5);

/** A data record as the engine emits it: 10,000 endpoints in 50 organisations, 3 zones, one a second. */
function record(id: number): EmnifyUsageRecord {
  const endpoint = id % 10_000;
  const rx = 1_000 + ((id * 7_919) % 5_000_000);
  const tx = 200 + ((id * 104_729) % 500_000);
  const start = T0 + id * 1_000;
  return {
    id,
    traffic_type: { id: 5, description: 'Data' },
    start_timestamp: new Date(start).toISOString(),
    end_timestamp: new Date(start + 300_000).toISOString(),
    organisation: { id: 1 + (endpoint % 50), name: `Organisation ${1 + (endpoint % 50)}` },
    endpoint: {
      id: 20_000_000 + endpoint,
      name: `device-${endpoint}`,
      ip_address: `10.${(endpoint >> 8) & 255}.${endpoint & 255}.1`,
      tags: null,
      imei: '356938035643809',
      balance: null,
    },
    sim: {
      id: 3_000 + endpoint,
      iccid: '89883030000000000010',
      msisdn: null,
      production_date: '2025-01-01T00:00:00.000Z',
    },
    imsi_id: 30_000 + endpoint,
    imsi: `29505${String(endpoint).padStart(10, '0')}`,
    operator: {
      id: 5,
      name: 'Telekom Deutschland',
      mnc: '01',
      country: { id: 74, mcc: '262', name: 'Germany' },
    },
    tariff: { id: 1, name: 'EU Standard', ratezone: { id: 1 + (id % 3), name: `Zone ${1 + (id % 3)}` } },
    volume: { rx: mb(rx), tx: mb(tx), total: mb(rx + tx) },
    cost: `0.${String(219_726_563 + (id % 1_000_000)).padStart(10, '0')}`,
    currency: CURRENCIES.EUR,
    session_id: '5f1c0de0-0000-4000-8000-000000000001',
    rating: {
      tariff_version: 1,
      rate: '1.5',
      billable_bytes: rx + tx,
      inclusive: false,
      rx_bytes: rx,
      tx_bytes: tx,
    },
  };
}

/** Bytes as MB with 6 decimals; close enough for load (the engine's own rounding is in src/core/units.ts). */
function mb(bytes: number): string {
  return (bytes / 1_048_576).toFixed(6);
}

const store = await openStore({ kind: 'embedded', dataDir });
await store.migrate();
let expected = 0n;
let generateMs = 0;
let insertMs = 0;
for (let from = 0; from < total; from += batchSize) {
  const began = performance.now();
  const rows: UsageRow[] = [];
  for (let id = from; id < Math.min(from + batchSize, total); id++) {
    const row = usageToRow(record(id));
    expected += parseDecimal(row.cost);
    rows.push(row);
  }
  const built = performance.now();
  await store.insertUsage(rows, `bench:${from}-${from + rows.length - 1}`);
  generateMs += built - began;
  insertMs += performance.now() - built;
}

const timed = async (sql: string) => {
  const began = performance.now();
  const [row] = await store.query(sql);
  return { ms: performance.now() - began, value: String(row?.total) };
};
const base = await timed('SELECT toString(sum(cost)) AS total FROM usage_records');
const rollup = await timed('SELECT toString(sum(cost)) AS total FROM usage_daily');
const [sizes] = await store.query(
  "SELECT sum(bytes_on_disk) AS disk FROM system.parts WHERE active AND database = currentDatabase() AND table IN ('usage_records', 'usage_daily')",
);
await store.close();
if (!dirArg) rmSync(dataDir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    rows: total,
    batch: batchSize,
    insert_seconds: Number((insertMs / 1000).toFixed(2)),
    rows_per_second: Math.round(total / (insertMs / 1000)),
    build_rows_seconds: Number((generateMs / 1000).toFixed(2)),
    sum_cost_ms: Math.round(base.ms),
    sum_cost_rollup_ms: Math.round(rollup.ms),
    sums_exact: parseDecimal(base.value) === expected && parseDecimal(rollup.value) === expected,
    disk_mb: Math.round(Number(sizes?.disk ?? 0) / 2 ** 20),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
