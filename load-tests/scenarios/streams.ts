/**
 * Benchmark scenario: data streams delivering to a webhook receiver in another process.
 *   node dist/load-tests/scenarios/streams.js DEVICES HOURS RATE
 * 1. backlog: a capture is replayed through the engine, then a usage and an events stream
 *    per organisation (batches of 3000), created before their lanes start, deliver
 *    everything: records/s delivered.
 * 2. live: a fresh engine is fed RATE raw records/s (chunks every 100 ms) with the streams
 *    running: records/s delivered and the end-to-end latency of each record, from its
 *    input on the raw log to its acknowledgement by the receiver (p50, p99).
 * Prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { idPosition } from '../../src/core/ids.js';
import { EmbeddedEngine } from '../../src/engine/engine.js';
import { captureLines } from '../../src/engine/ingest.js';
import { generateReferenceData } from '../../src/reference/generator.js';
import type { ReferenceData } from '../../src/reference/types.js';
import { runSimulation } from '../../src/simulator/run.js';
import { streamsOf } from '../../src/streams/beside-engine.js';
import type { StreamManager } from '../../src/streams/manager.js';

const [devicesArg = '5000', hoursArg = '6', rateArg = '20000'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'bench-streams-'));
const reference = generateReferenceData({ devices: Number(devicesArg), seed: 'bench' });
const capture = join(dir, 'capture.ndjson');
await runSimulation({
  reference,
  seed: 'bench',
  start: Date.UTC(2026, 0, 5),
  durationMs: Number(hoursArg) * 3_600_000,
  out: capture,
});
const lines: string[] = [];
for await (const line of captureLines(capture)) lines.push(line);

async function startReceiver(): Promise<{
  url: string;
  stats: () => Promise<{ records: number; acked: number[] }>;
  stop: () => void;
}> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'webhook-receiver.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout }).once('line', (line) => resolve(line)),
  );
  return {
    url,
    stats: async () => (await (await fetch(url)).json()) as { records: number; acked: number[] },
    stop: () => child.kill(),
  };
}

async function addStreams(streams: StreamManager, data: ReferenceData, url: string): Promise<void> {
  for (const organisation of data.organisations)
    for (const type of [1, 2] as const)
      await streams.create(organisation.id, {
        name: `bench ${type === 1 ? 'usage' : 'events'}`,
        data_stream_type: { id: type },
        destination: { connection_type: 'RestAPI', credentials: { url, size: 3000 } },
        start: 'earliest',
      });
}

// 1. Backlog: everything is on the output log before the streams start.
const backlog = await (async () => {
  const receiver = await startReceiver();
  const dataDir = join(dir, 'backlog');
  const engine = await EmbeddedEngine.open({ dataDir }, reference);
  await engine.replay(capture);
  // The streams exist before their lanes start, as after a restart or an outage: the lanes
  // start together and share their reads of the log (src/streams/shared-reads.ts).
  const streams = streamsOf(engine, dataDir, { lanes: false });
  await addStreams(streams, reference, receiver.url);
  const began = performance.now();
  await streams.runLanes(true);
  await streams.caughtUp();
  const seconds = (performance.now() - began) / 1000;
  const { records } = await receiver.stats();
  await streams.close();
  await engine.close();
  receiver.stop();
  return { records, seconds, records_per_second: Math.round(records / seconds) };
})();

// 2. Live at RATE raw records/s, streams running beside the engine.
const live = await (async () => {
  const rate = Number(rateArg);
  const receiver = await startReceiver();
  const dataDir = join(dir, 'live');
  const engine = await EmbeddedEngine.open({ dataDir }, reference);
  const streams = streamsOf(engine, dataDir);
  await addStreams(streams, reference, receiver.url);
  const raw = engine.log
    ? await engine.log.topic('raw', engine.streamSources().usage[0]?.partitions ?? 4)
    : undefined;
  // When each raw offset reached the log: per chunk, the end offsets and the time.
  const chunks: { at: number; ends: number[] }[] = [];
  const began = performance.now();
  const step = Math.max(1, Math.round(rate / 10));
  for (let i = 0; i < lines.length; i += step) {
    const due = began + (i / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await engine.ingest(lines.slice(i, i + step));
    const ends: number[] = [];
    for (let p = 0; p < (raw?.partitions ?? 0); p++) ends.push((await raw?.endOffset(p)) ?? 0);
    chunks.push({ at: Date.now(), ends });
    await engine.process();
  }
  await engine.finish();
  await streams.caughtUp();
  const seconds = (performance.now() - began) / 1000;
  const { records, acked } = await receiver.stats();
  await streams.close();
  await engine.close();
  receiver.stop();
  const latencies: number[] = [];
  for (let k = 0; k < acked.length; k += 2) {
    const { partition, offset } = idPosition(acked[k] as number);
    const chunk = chunks.find((c) => (c.ends[partition] ?? 0) > offset);
    // Organisation-level records have ids of their own scheme: only raw-derived ids are timed.
    if (chunk && partition < (raw?.partitions ?? 0)) latencies.push((acked[k + 1] as number) - chunk.at);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    rate,
    raw_records: lines.length,
    records,
    seconds,
    records_per_second: Math.round(records / seconds),
    raw_per_second_achieved: Math.round(lines.length / seconds),
    p50_ms: at(0.5),
    p99_ms: at(0.99),
  };
})();
rmSync(dir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    raw_records: lines.length,
    backlog_records: backlog.records,
    backlog_seconds: backlog.seconds,
    backlog_records_per_second: backlog.records_per_second,
    live_rate: live.rate,
    live_seconds: live.seconds,
    live_raw_per_second: live.raw_per_second_achieved,
    live_delivered_per_second: live.records_per_second,
    live_p50_ms: live.p50_ms,
    live_p99_ms: live.p99_ms,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
