/**
 * Benchmark scenario: data streams delivering to a webhook receiver in another process.
 *   node dist/load-tests/scenarios/streams.js DEVICES HOURS RATE
 * 1. backlog: a capture is replayed through the engine, its store's merges settle, then a
 *    usage and an events stream per organisation (batches of 3000), created before their
 *    lanes start, deliver everything while the engine stays open: records/s delivered.
 * 2. S3: the same backlog delivered again by S3 streams (emnify's CSV files, one per batch
 *    of 3000) to moto_server, S3 on 127.0.0.1 (needs moto_server on the PATH: pip install
 *    'moto[server]'): records/s. moto is a Python in-memory S3, so this measures a floor.
 * 3. lanes alone: the backlog's output records are appended to a fresh log at RATE
 *    records/s (chunks every 100 ms, as the engine appends them), the same streams
 *    following it, with no engine folding beside them: the streams' own share of the
 *    latency, from the append to the receiver's acknowledgement (p50, p99).
 * 4. live: a fresh engine is fed RATE raw records/s (chunks every 100 ms) with the streams
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
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { idPosition } from '../../src/core/ids.js';
import { EmbeddedEngine } from '../../src/engine/engine.js';
import { captureLines, pacedChunks } from '../../src/engine/ingest.js';
import { openEmbeddedLog } from '../../src/log/index.js';
import type { Topic } from '../../src/log/types.js';
import { generateReferenceData } from '../../src/reference/generator.js';
import type { ReferenceData } from '../../src/reference/types.js';
import { runSimulation } from '../../src/simulator/run.js';
import { streamsOf } from '../../src/streams/beside-engine.js';
import { StreamManager } from '../../src/streams/manager.js';
import { fieldsOf } from '../../src/streams/record-fields.js';
import { SINKS } from '../../src/streams/sinks.js';
import { percentiles, type Sample } from './live-harness.js';

const [devicesArg = '20000', hoursArg = '6', rateArg = '20000'] = process.argv.slice(2);
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
// Counted here, read again by the live phase: 734,527 lines held as strings would double
// the heap every phase's garbage collection walks.
let rawRecords = 0;
for await (const _ of captureLines(capture)) rawRecords++;

/** Waits until ClickHouse has no merge running: the replay before a backlog leaves many. */
async function mergesSettled(engine: EmbeddedEngine): Promise<void> {
  for (;;) {
    const [row] = await engine.store.query('SELECT count() AS n FROM system.merges');
    if (Number(row?.n ?? 0) === 0) return;
    await sleep(500);
  }
}

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

type Destination = { connection_type: string; credentials: Record<string, unknown> };

async function addStreams(
  streams: StreamManager,
  data: ReferenceData,
  destination: Destination,
): Promise<void> {
  for (const organisation of data.organisations)
    for (const type of [1, 2] as const)
      await streams.create(organisation.id, {
        name: `bench ${type === 1 ? 'usage' : 'events'}`,
        data_stream_type: { id: type },
        destination,
        start: 'earliest',
      });
}

const webhook = (url: string): Destination => ({
  connection_type: 'RestAPI',
  credentials: { url, size: 3000 },
});

/** moto_server on 127.0.0.1 with a bucket; fails, saying how to install it, when it cannot start. */
async function startMoto(): Promise<{ endpoint: string; client: S3Client; stop: () => void }> {
  const port = 20_000 + (process.pid % 10_000);
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (error) =>
      reject(new Error(`moto_server could not be started (${error.message}): pip install 'moto[server]'`)),
    ),
  );
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await Promise.race([
      failed,
      fetch(`${endpoint}/moto-api/`).then(
        (r) => r.ok,
        () => false,
      ),
    ]);
    if (up) break;
    if (i === 200) throw new Error(`moto_server did not answer at ${endpoint} within 20 s`);
    await sleep(100);
  }
  const client = new S3Client({
    region: 'eu-west-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  await client.send(
    new CreateBucketCommand({
      Bucket: 'bench',
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
    }),
  );
  return { endpoint, client, stop: () => child.kill() };
}

/** Files in the bucket and their bytes. */
async function filesInBucket(client: S3Client): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: 'bench', ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      files++;
      bytes += object.Size ?? 0;
    }
    token = page.NextContinuationToken;
  } while (token);
  return { files, bytes };
}

// 1. Backlog: everything is on the output log before the streams start.
const backlog = await (async () => {
  const receiver = await startReceiver();
  const dataDir = join(dir, 'backlog');
  const engine = await EmbeddedEngine.open({ dataDir }, reference);
  await engine.replay(capture);
  // The engine stays open, idle; its store finishes the merges the replay started (about a
  // minute of the second core at 20k devices) before the lanes are timed.
  await mergesSettled(engine);
  // The streams exist before their lanes start, as after a restart or an outage: the lanes
  // start together and share their reads of the log (src/streams/shared-reads.ts).
  const streams = streamsOf(engine, dataDir, { lanes: false });
  await addStreams(streams, reference, webhook(receiver.url));
  const began = performance.now();
  await streams.runLanes(true);
  await streams.caughtUp();
  const seconds = (performance.now() - began) / 1000;
  const { records } = await receiver.stats();

  // 2. The same backlog to S3, by streams of their own (their cursors start at the beginning).
  await streams.close();
  receiver.stop();
  const moto = await startMoto();
  const s3streams = streamsOf(engine, dataDir, { lanes: false });
  for (const stream of s3streams.all()) await s3streams.delete(stream.organisation_id, stream.id);
  const s3 = await (async () => {
    await addStreams(s3streams, reference, {
      connection_type: 'S3',
      credentials: {
        region: 'eu-west-1',
        bucket_name: 'bench',
        endpoint: moto.endpoint,
        access_key_id: 'bench',
        secret_access_key: 'bench',
        flush_size: 3000,
      },
    });
    const start = performance.now();
    await s3streams.runLanes(true);
    await s3streams.caughtUp();
    const took = (performance.now() - start) / 1000;
    let delivered = 0;
    for (const stream of s3streams.all())
      delivered += (await s3streams.status(stream.organisation_id, stream.id)).metrics.delivered_records;
    return { records: delivered, seconds: took, ...(await filesInBucket(moto.client)) };
  })();
  await s3streams.close();
  await engine.close();
  moto.stop();
  return { records, seconds, records_per_second: Math.round(records / seconds), s3 };
})();

/**
 * The first seconds of a run, left out of the "warm" p99: 80 lanes open their connections
 * and their code is compiled while the first batches go (in the lanes-alone phase the
 * first second's p99 is 1.3 to 1.5 times the later seconds').
 */
const WARM_UP_S = 2;

/** p50 and p99 of every record, and p99 of the records that entered after the warm-up (`due`: seconds from the start). */
function latencyStats(samples: Sample[]) {
  const all = percentiles(samples);
  return {
    p50_ms: all.p50,
    p99_ms: all.p99,
    p99_warm_ms: percentiles(samples, (s) => s.due >= WARM_UP_S).p99,
  };
}

// 3. The lanes alone: the backlog's output appended to a fresh log at RATE records/s.
const lanesAlone = await (async () => {
  const rate = Number(rateArg);
  const receiver = await startReceiver();
  const from = await openEmbeddedLog({ dir: join(dir, 'backlog', 'log'), fsync: 'never' });
  const to = await openEmbeddedLog({ dir: join(dir, 'lanes-alone', 'log'), fsync: 'always' });
  const sources: { usage: Topic[]; events: Topic[] } = { usage: [], events: [] };
  // Each source partition, read on from where the last tick stopped.
  const feeds: { source: Topic; target: Topic; partition: number; at: number; end: number }[] = [];
  for (const [name, role] of [
    ['usage', 'usage'],
    ['events', 'events'],
    ['organisation-events', 'events'],
  ] as const) {
    const source = await from.topic(name, name === 'organisation-events' ? 1 : 4);
    const target = await to.topic(name, source.partitions);
    sources[role].push(target);
    for (let p = 0; p < source.partitions; p++)
      feeds.push({ source, target, partition: p, at: 0, end: await source.endOffset(p) });
  }
  const streams = new StreamManager({
    dir: join(dir, 'lanes-alone', 'streams'),
    sources,
    cursors: to.cursors,
    sinks: SINKS,
    lanesIn: 'worker',
  });
  await addStreams(streams, reference, webhook(receiver.url));
  // The lanes are running (the worker started, every lane found the log empty) before
  // the first record, as they are long before traffic in a running engine.
  await streams.caughtUp();
  // The source log indexes each of its segments on first read, in this thread, which also
  // tells the lanes' worker of appends: done before the clock starts, it does not delay
  // the first seconds' notices (it tripled their p99).
  for (const feed of feeds) {
    await feed.source.read(feed.partition, 0, 1);
    if (feed.end > 0) await feed.source.read(feed.partition, feed.end - 1, 1);
  }
  const total = feeds.reduce((n, f) => n + f.end, 0);
  const ticks = Math.ceil(total / (rate / 10));
  const appendedAt = new Map<number, number>();
  const began = performance.now();
  const beganAt = Date.now();
  for (let tick = 1; tick <= ticks; tick++) {
    const wait = began + (tick - 1) * 100 - performance.now();
    if (wait > 0) await sleep(wait);
    // Every partition advances in proportion, as the engine's output does.
    await Promise.all(
      feeds.map(async (feed) => {
        const due = Math.round((feed.end * tick) / ticks);
        if (due <= feed.at) return;
        const records = await feed.source.read(feed.partition, feed.at, due - feed.at);
        feed.at += records.length;
        await feed.target.append(feed.partition, records);
        const now = Date.now();
        for (const r of records) appendedAt.set(fieldsOf(r.value.toString('utf8')).id, now);
      }),
    );
  }
  await streams.caughtUp();
  const seconds = (performance.now() - began) / 1000;
  const { records, acked } = await receiver.stats();
  await streams.close();
  await to.close();
  await from.close();
  receiver.stop();
  const samples: Sample[] = [];
  for (let k = 0; k < acked.length; k += 2) {
    const at = appendedAt.get(acked[k] as number);
    if (at !== undefined) samples.push({ due: (at - beganAt) / 1000, ms: (acked[k + 1] as number) - at });
  }
  return {
    rate,
    records,
    records_per_second: Math.round(records / seconds),
    ...latencyStats(samples),
  };
})();

// 4. Live at RATE raw records/s, streams running beside the engine.
const live = await (async () => {
  const rate = Number(rateArg);
  const receiver = await startReceiver();
  const dataDir = join(dir, 'live');
  const engine = await EmbeddedEngine.open({ dataDir }, reference);
  const streams = streamsOf(engine, dataDir);
  await addStreams(streams, reference, webhook(receiver.url));
  await streams.caughtUp();
  const raw = engine.log
    ? await engine.log.topic('raw', engine.streamSources().usage[0]?.partitions ?? 4)
    : undefined;
  // When each raw offset reached the log: per chunk, the end offsets and the time.
  const chunks: { at: number; ends: number[] }[] = [];
  const began = performance.now();
  const beganAt = Date.now();
  const step = Math.max(1, Math.round(rate / 10));
  let i = 0;
  for await (const chunk of pacedChunks(captureLines(capture), step)) {
    const due = began + (i / rate) * 1000;
    i += chunk.length;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await engine.ingest(chunk);
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
  const samples: Sample[] = [];
  for (let k = 0; k < acked.length; k += 2) {
    const { partition, offset } = idPosition(acked[k] as number);
    const chunk = chunks.find((c) => (c.ends[partition] ?? 0) > offset);
    // Organisation-level records have ids of their own scheme: only raw-derived ids are timed.
    if (chunk && partition < (raw?.partitions ?? 0))
      samples.push({ due: (chunk.at - beganAt) / 1000, ms: (acked[k + 1] as number) - chunk.at });
  }
  return {
    rate,
    raw_records: rawRecords,
    records,
    seconds,
    records_per_second: Math.round(records / seconds),
    raw_per_second_achieved: Math.round(rawRecords / seconds),
    ...latencyStats(samples),
  };
})();
rmSync(dir, { recursive: true, force: true });

console.log(
  JSON.stringify({
    devices: Number(devicesArg),
    raw_records: rawRecords,
    backlog_records: backlog.records,
    backlog_seconds: backlog.seconds,
    backlog_records_per_second: backlog.records_per_second,
    s3_records: backlog.s3.records,
    s3_files: backlog.s3.files,
    s3_megabytes: Math.round(backlog.s3.bytes / 1e6),
    s3_seconds: backlog.s3.seconds,
    s3_records_per_second: Math.round(backlog.s3.records / backlog.s3.seconds),
    lanes_alone_rate: lanesAlone.rate,
    lanes_alone_records: lanesAlone.records,
    lanes_alone_delivered_per_second: lanesAlone.records_per_second,
    lanes_alone_p50_ms: lanesAlone.p50_ms,
    lanes_alone_p99_ms: lanesAlone.p99_ms,
    lanes_alone_p99_warm_ms: lanesAlone.p99_warm_ms,
    live_rate: live.rate,
    live_seconds: live.seconds,
    live_raw_per_second: live.raw_per_second_achieved,
    live_delivered_per_second: live.records_per_second,
    live_p50_ms: live.p50_ms,
    live_p99_ms: live.p99_ms,
    live_p99_warm_ms: live.p99_warm_ms,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
