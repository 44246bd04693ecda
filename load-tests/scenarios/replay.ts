/**
 * Benchmark scenario: a simulated capture replayed through the embedded engine (raw log,
 * fold, output log, snapshots). Prints one JSON line.
 *   node dist/load-tests/scenarios/replay.js DEVICES DURATION_H
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedEngine } from '../../src/engine/engine.js';
import { generateReferenceData } from '../../src/reference/generator.js';
import { runSimulation } from '../../src/simulator/run.js';

const [devicesArg = '20000', hoursArg = '6'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'bench-replay-'));
const reference = generateReferenceData({ devices: Number(devicesArg), seed: 'bench' });
const capture = join(dir, 'capture.ndjson');
await runSimulation({
  reference,
  seed: 'bench',
  start: Date.UTC(2026, 0, 5),
  durationMs: Number(hoursArg) * 3_600_000,
  out: capture,
});

const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'data') }, reference);
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
