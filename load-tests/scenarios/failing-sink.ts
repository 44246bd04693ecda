/**
 * Benchmark scenario: a failing destination must not hold back the healthy ones. Two runs
 * of the same feed (fixed rate) on fresh engines: 10 healthy webhook streams (usage and
 * events of 5 organisations), then the same 10 and one more whose receiver answers 503 for
 * 4 s and then stops answering. The retry budget is cut to 12 s (attempt deadline 3 s) so
 * the failing stream reaches Error within the run; the default is 15 minutes.
 * Prints one JSON line: the healthy streams' delivered records/s and p99 latency (output
 * on the log -> received) in both runs and their ratios, and the failing stream's status,
 * when it went to Error and its dead-lettered batches.
 *   node dist/load-tests/scenarios/failing-sink.js [DEVICES] [RATE] [SECONDS]
 */
import {
  type LiveResult,
  percentiles,
  runLive,
  type Sample,
  Schedule,
  type StreamSpec,
  WARM_UP_S,
} from './live-harness.js';

const [devicesArg = '20000', rateArg = '3000', secondsArg = '30'] = process.argv.slice(2);
const rate = Number(rateArg);
const healthy: StreamSpec[] = [];
for (let i = 0; i < 5; i++) {
  const organisationId = 1001 + i;
  healthy.push(
    { key: `usage-${organisationId}`, organisationId, type: 1 },
    { key: `events-${organisationId}`, organisationId, type: 2 },
  );
}
const failing: StreamSpec = { key: 'fail-events-1006', organisationId: 1006, type: 2 };

const runOnce = (streams: StreamSpec[]) =>
  runLive({
    devices: Number(devicesArg),
    organisations: 6,
    schedule: new Schedule([{ seconds: Number(secondsArg), rate }]),
    streams,
    retry: { minDelayMs: 250, maxDelayMs: 2000, maxElapsedMs: 12_000 },
    timeoutMs: 3000,
    fail503Ms: 4000,
  });

/** The healthy streams of a run: records delivered per second while the input ran, and p99. */
function healthyNumbers(result: LiveResult): {
  perSecond: number;
  p99: number;
  delivered: number;
  expected: number;
} {
  const streams = result.streams.filter((s) => !s.key.startsWith('fail'));
  const latency: Sample[] = streams.flatMap((s) => s.latency);
  const delivered = streams.reduce((n, s) => n + s.delivered, 0);
  const inFeed = streams.reduce((n, s) => n + s.deliveredInFeed, 0);
  return {
    perSecond: Math.round(inFeed / Number(secondsArg)),
    p99: percentiles(latency, (s) => s.due >= WARM_UP_S).p99,
    delivered,
    expected: streams.reduce((n, s) => n + s.expected, 0),
  };
}

// Alone, beside the failing stream, alone again: the two runs alone bracket the one beside
// it, so a machine that gets busier or a process that warms up does not pass for the failing stream's effect.
const first = healthyNumbers(await runOnce(healthy));
const withFailing = await runOnce([...healthy, failing]);
const beside = healthyNumbers(withFailing);
const second = healthyNumbers(await runOnce(healthy));
const alone = {
  perSecond: Math.round((first.perSecond + second.perSecond) / 2),
  p99: Math.round((first.p99 + second.p99) / 2),
  complete: first.delivered === first.expected && second.delivered === second.expected,
};
const failed = withFailing.streams.find((s) => s.key === failing.key);
const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    rate,
    seconds: Number(secondsArg),
    healthy_streams: healthy.length,
    alone_delivered_per_second: alone.perSecond,
    alone_p99_ms: alone.p99,
    alone_runs_p99_ms_first: first.p99,
    alone_runs_p99_ms_second: second.p99,
    alone_complete: alone.complete ? 1 : 0,
    beside_failing_delivered_per_second: beside.perSecond,
    beside_failing_p99_ms: beside.p99,
    beside_failing_complete: beside.delivered === beside.expected ? 1 : 0,
    throughput_ratio: ratio(beside.perSecond, alone.perSecond),
    p99_ratio: ratio(beside.p99, alone.p99),
    failing_in_error: failed?.status === 'Error' ? 1 : 0,
    failing_error_after_s: failed?.errorAfter ?? -1,
    failing_dead_lettered_batches: failed?.deadLetteredBatches ?? 0,
    failing_delivered: failed?.delivered ?? 0,
    peak_rss_mb: withFailing.peakRssMb,
  }),
);
