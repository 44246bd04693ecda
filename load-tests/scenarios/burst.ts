/**
 * Benchmark scenario: as steady, but the rate jumps to 10x for 10 s in the middle.
 * Prints one JSON line: the backlog's peak (raw records due but not processed), how long
 * after the burst the backlog and the latency took to come back to their steady level, and
 * p99 latencies before, during and after the burst (by when the raw record was due).
 *   node dist/load-tests/scenarios/burst.js [DEVICES] [RATE] [BEFORE_S] [AFTER_S]
 */
import { percentiles, runLive, type Sample, Schedule, stageNumbers, WARM_UP_S } from './live-harness.js';

const [devicesArg = '20000', rateArg = '2000', beforeArg = '20', afterArg = '40'] = process.argv.slice(2);
const rate = Number(rateArg);
const before = Number(beforeArg);
const BURST_S = 10;
const burstEnd = before + BURST_S;
const schedule = new Schedule([
  { seconds: before, rate },
  { seconds: BURST_S, rate: rate * 10 },
  { seconds: Number(afterArg), rate },
]);
const result = await runLive({
  devices: Number(devicesArg),
  organisations: 4,
  schedule,
  streams: [{ key: 'events-1001', organisationId: 1001, type: 2 }],
});

// Due -> processed: the engine's own latency, queue included (the backlog shows there).
const processedLatency: Sample[] = result.stages.queue.map((q, i) => ({
  due: q.due,
  ms: q.ms + (result.stages.ingestProcessed[i]?.ms ?? 0),
}));
const steady = (s: Sample) => s.due >= WARM_UP_S && s.due < before;
const during = (s: Sample) => s.due >= before && s.due < burstEnd;
const after = (s: Sample) => s.due >= burstEnd;

// Back to steady: the backlog below the highest seen before the burst (at least 0.5 s of
// input); when that only happens as the input ends, the fold's end is when it drained.
const steadyBacklog = Math.max(
  rate / 2,
  ...result.backlog.filter((b) => b.t >= WARM_UP_S && b.t < before).map((b) => b.records),
);
const peak = result.backlog.reduce((m, b) => (b.records > m.records ? b : m), { t: 0, records: 0 });
const drainedAt =
  result.backlog.find((b) => b.t >= peak.t && b.records <= steadyBacklog)?.t ?? result.foldSeconds;
// ... and the latency: the first second of input after the burst whose records were
// processed at steady latency again (p99 within twice the steady p99, at least +200 ms).
const steadyP99 = percentiles(processedLatency, steady).p99;
const threshold = Math.max(2 * steadyP99, steadyP99 + 200);
let recoveredAt = schedule.seconds;
for (let second = burstEnd; second < schedule.seconds; second++) {
  const window = percentiles(processedLatency, (s) => s.due >= second && s.due < second + 1);
  if (window.n > 0 && window.p99 <= threshold) {
    recoveredAt = second;
    break;
  }
}

const p99 = (samples: Sample[], keep: (s: Sample) => boolean) => percentiles(samples, keep).p99;
console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    rate,
    burst_rate: rate * 10,
    seconds: schedule.seconds,
    raw_records: result.rawRecords,
    raw_per_second: Math.round(result.rawRecords / result.foldSeconds),
    fold_seconds: result.foldSeconds,
    backlog_steady_max: steadyBacklog,
    backlog_peak: peak.records,
    backlog_peak_at_s: peak.t,
    // 0: the backlog was back to its steady level before the burst ended.
    drain_seconds: Math.max(0, Math.round((drainedAt - burstEnd) * 10) / 10),
    latency_recovered_seconds: Math.round((recoveredAt - burstEnd) * 10) / 10,
    slow_threshold_ms: threshold,
    processed_p99_before_ms: steadyP99,
    processed_p99_during_ms: p99(processedLatency, during),
    processed_p99_after_ms: p99(processedLatency, after),
    end_to_end_p99_before_ms: p99(result.stages.endToEnd, steady),
    end_to_end_p99_during_ms: p99(result.stages.endToEnd, during),
    end_to_end_p99_after_ms: p99(result.stages.endToEnd, after),
    ...stageNumbers(result),
    delivered_records: result.streams[0]?.delivered ?? 0,
    expected_records: result.streams[0]?.expected ?? 0,
    cpu_seconds: Math.round(result.cpuSeconds * 10) / 10,
    peak_rss_mb: result.peakRssMb,
  }),
);
