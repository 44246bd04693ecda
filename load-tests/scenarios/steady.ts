/**
 * Benchmark scenario: the simulator feeds the embedded engine at a fixed raw-record rate,
 * with one webhook data stream (the first organisation's events) to a receiver in another
 * process. Prints one JSON line: the rate achieved, p50/p99 per stage (live-harness.ts
 * says what each stage times), CPU seconds and peak RSS of the engine's process.
 *   node dist/load-tests/scenarios/steady.js [DEVICES] [RATE] [SECONDS]
 */
import { percentiles, runLive, Schedule, stageNumbers, WARM_UP_S } from './live-harness.js';

const [devicesArg = '20000', rateArg = '5000', secondsArg = '60'] = process.argv.slice(2);
const rate = Number(rateArg);
const schedule = new Schedule([{ seconds: Number(secondsArg), rate }]);
const result = await runLive({
  devices: Number(devicesArg),
  organisations: 4,
  schedule,
  streams: [{ key: 'events-1001', organisationId: 1001, type: 2 }],
});
const stream = result.streams[0];
const backlog = result.backlog.filter((b) => b.t >= WARM_UP_S).map((b) => b.records);

console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    rate,
    seconds: schedule.seconds,
    raw_records: result.rawRecords,
    raw_per_second: Math.round(result.rawRecords / result.foldSeconds),
    fold_seconds: result.foldSeconds,
    finished_seconds: result.processedSeconds,
    delivered_records: stream?.delivered ?? 0,
    expected_records: stream?.expected ?? 0,
    // While the input ran: at a fixed rate this is the stream's share of the output, if it keeps up.
    delivered_per_second: Math.round((stream?.deliveredInFeed ?? 0) / schedule.seconds),
    ...stageNumbers(result),
    stream_p99_ms: percentiles(stream?.latency ?? [], (s) => s.due >= WARM_UP_S).p99,
    backlog_max: Math.max(0, ...backlog),
    cpu_seconds: Math.round(result.cpuSeconds * 10) / 10,
    cpu_us_per_raw: Math.round((result.cpuSeconds * 1e6) / result.rawRecords),
    peak_rss_mb: result.peakRssMb,
  }),
);
