/**
 * Benchmark scenario: 50 webhook data streams over one engine's output, 10 organisations
 * with 5 streams each (usage; every event; location updates; PDP contexts; alerts only),
 * all to receivers in another process, while the simulator feeds the engine at a fixed
 * rate. Prints one JSON line: records/s delivered over all streams, the spread of the
 * streams' p99 latencies (output on the log -> received), and whether any stream starved:
 * the fewest and most records a stream delivered, the smallest share of its own records a
 * stream delivered, and how many streams lag far behind the others.
 *   node dist/load-tests/scenarios/many-streams.js [DEVICES] [RATE] [SECONDS]
 */
import {
  percentiles,
  runLive,
  Schedule,
  type StreamSpec,
  spread,
  stageNumbers,
  WARM_UP_S,
} from './live-harness.js';

const [devicesArg = '20000', rateArg = '2000', secondsArg = '40'] = process.argv.slice(2);
const rate = Number(rateArg);
const ORGANISATIONS = 10;
const streams: StreamSpec[] = [];
for (let i = 0; i < ORGANISATIONS; i++) {
  const organisationId = 1001 + i;
  streams.push(
    { key: `usage-${organisationId}`, organisationId, type: 1 },
    { key: `events-${organisationId}`, organisationId, type: 2 },
    {
      key: `locations-${organisationId}`,
      organisationId,
      type: 2,
      filters: [{ field: 'event_type_id', value: [1, 2, 15, 16] }],
    },
    {
      key: `pdp-${organisationId}`,
      organisationId,
      type: 2,
      filters: [{ field: 'event_type_id', value: [3, 5] }],
      size: 500,
    },
    { key: `alerts-${organisationId}`, organisationId, type: 2, filters: [{ field: 'alert', value: true }] },
  );
}
const schedule = new Schedule([{ seconds: Number(secondsArg), rate }]);
const result = await runLive({
  devices: Number(devicesArg),
  organisations: ORGANISATIONS,
  schedule,
  streams,
});

const afterWarmUp = (s: { due: number }) => s.due >= WARM_UP_S;
const timed = result.streams.filter((s) => percentiles(s.latency, afterWarmUp).n > 0);
const p99s = spread(timed.map((s) => percentiles(s.latency, afterWarmUp).p99));
const delivered = result.streams.reduce((n, s) => n + s.delivered, 0);
const inFeed = result.streams.reduce((n, s) => n + s.deliveredInFeed, 0);
const counts = spread(result.streams.map((s) => s.delivered));
const completeness = Math.min(
  ...result.streams.map((s) => (s.expected === 0 ? 1 : s.delivered / s.expected)),
);
// A starving stream would fall behind the rest: far slower than the median stream, or short of its records.
const starved = result.streams.filter((s) => {
  const p99 = percentiles(s.latency, afterWarmUp).p99;
  return s.delivered < s.expected || p99 > Math.max(3 * p99s.median, p99s.median + 2000);
}).length;

console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    rate,
    seconds: schedule.seconds,
    streams: result.streams.length,
    raw_records: result.rawRecords,
    raw_per_second: Math.round(result.rawRecords / result.foldSeconds),
    delivered_records: delivered,
    all_delivered_at_s: result.deliveredSeconds,
    delivered_per_second: Math.round(inFeed / schedule.seconds),
    stream_p99_min_ms: p99s.min,
    stream_p99_median_ms: p99s.median,
    stream_p99_max_ms: p99s.max,
    stream_delivered_min: counts.min,
    stream_delivered_max: counts.max,
    stream_completeness_min: completeness,
    starved_streams: starved,
    ...stageNumbers(result),
    cpu_seconds: Math.round(result.cpuSeconds * 10) / 10,
    peak_rss_mb: result.peakRssMb,
  }),
);
