/**
 * Benchmark scenario: the core simulator writing a capture file. Run by load-tests/run.ts
 * in a child process; prints one JSON line with its measurements.
 *   node dist/load-tests/scenarios/simulate.js DEVICES DURATION_H OUT
 */
import { rmSync } from 'node:fs';
import { Directory } from '../../src/reference/directory.js';
import { generateReferenceData } from '../../src/reference/generator.js';
import { runSimulation } from '../../src/simulator/run.js';
import { CoreSimulator } from '../../src/simulator/simulator.js';

const [devicesArg = '100000', hoursArg = '6', out = '/dev/null'] = process.argv.slice(2);
const devices = Number(devicesArg);
const durationMs = Number(hoursArg) * 3_600_000;
const start = Date.UTC(2026, 0, 5);

let peakHeap = 0;
const sample = () => {
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
};
const sampler = setInterval(sample, 50);

const reference = generateReferenceData({ devices, seed: 'bench' });
// Memory of the fleet itself: the simulator's state after set-up, before any record.
const before = process.memoryUsage();
const probe = new CoreSimulator({ directory: new Directory(reference), seed: 'bench', start, durationMs });
const after = process.memoryUsage();
const fleetBytes = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
void probe;

const began = process.cpuUsage();
const summary = await runSimulation({ reference, seed: 'bench', start, durationMs, out });
const cpu = process.cpuUsage(began);
sample();
clearInterval(sampler);
if (out !== '/dev/null') rmSync(out, { force: true });

console.log(
  JSON.stringify({
    devices,
    virtual_hours: Number(hoursArg),
    out,
    records: summary.records,
    seconds: summary.elapsedMs / 1000,
    records_per_second: Math.round(summary.recordsPerSecond),
    cpu_seconds: (cpu.user + cpu.system) / 1e6,
    fleet_state_mb: Math.round(fleetBytes / 2 ** 20),
    peak_heap_mb: Math.round(peakHeap / 2 ** 20),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
