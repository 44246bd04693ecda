/**
 * Benchmark scenario: a simulated capture replayed through the embedded engine (raw log,
 * fold, output log, snapshots, ClickHouse). The capture is simulated by the CLI in a
 * process of its own first, so the peak RSS printed is the engine's alone. Prints one
 * JSON line.
 *   node dist/load-tests/scenarios/replay.js DEVICES DURATION_H
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCapture } from '../../src/capture/reader.js';
import { EmbeddedEngine } from '../../src/engine/engine.js';

const [devicesArg = '20000', hoursArg = '6'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'bench-replay-'));
const capture = join(dir, 'capture.ndjson');
execFileSync(process.execPath, [
  join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js'),
  'simulate',
  '--devices',
  devicesArg,
  '--seed',
  'bench',
  '--duration',
  `${Math.round(Number(hoursArg) * 60)}m`,
  '--out',
  capture,
  '--quiet',
]);

const { header } = await openCapture(capture);
const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'data') }, header.reference);
const began = performance.now();
const cpu = process.cpuUsage();
const result = await engine.replay(capture);
const seconds = (performance.now() - began) / 1000;
const used = process.cpuUsage(cpu);
await engine.close();
rmSync(dir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    virtual_hours: Number(hoursArg),
    records: result.processed,
    seconds,
    records_per_second: Math.round(result.processed / seconds),
    cpu_seconds: (used.user + used.system) / 1e6,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
