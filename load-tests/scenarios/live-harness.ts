/**
 * Harness of the live benchmarks (steady, burst, many-streams, failing-sink): the core
 * simulator feeds the embedded engine at a raw-record rate that follows a schedule, in turns
 * as the closed loop of src/engine/live.ts runs them (generate what is due, ingest, process,
 * enforcement commands back to the core), while data streams deliver the engine's output to
 * webhook receivers in another process (receivers.ts).
 *
 * What is timed, all on the system clock (Date.now(), shared with the receivers' process):
 * - due: when a raw record was due by the schedule (record i of a rate R is due at i/R s);
 * - appended: when engine.ingest() of its turn resolved (durable on the raw log);
 * - processed: the end of the fold round (engine.process's onStep) that moved its
 *   partition's input offset past it; its outputs were appended to the output log in that
 *   round, so this is also the outputs' log append time;
 * - stored: the first poll (every 100 ms) that saw the ClickHouse writer's cursor past the output;
 * - delivered: when the receiving webhook had read the request that carried the output.
 * An output is tied to the raw record it came from by its id (src/core/ids.ts: partition
 * and input offset); outputs of the organisation stage have ids of their own scheme and
 * are counted, not timed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { captureLine } from '../../src/capture/ndjson.js';
import type { RawRecord } from '../../src/contracts/raw.js';
import { idPosition } from '../../src/core/ids.js';
import { EmbeddedEngine } from '../../src/engine/engine.js';
import { partitionOfLine } from '../../src/engine/ingest.js';
import { STORE_CURSOR_GROUP } from '../../src/engine/store-writer.js';
import type { Topic } from '../../src/log/types.js';
import { Directory } from '../../src/reference/directory.js';
import { generateReferenceData } from '../../src/reference/generator.js';
import { CoreSimulator } from '../../src/simulator/simulator.js';
import { matchesFilters } from '../../src/streams/config.js';
import type { RetryPolicy } from '../../src/streams/delivery.js';
import { StreamManager } from '../../src/streams/manager.js';
import { SINKS } from '../../src/streams/sinks.js';

/** Wall time between two turns of the feed while the engine keeps up. */
const TURN_MS = 100;
/** Most raw records one turn generates: a backlog is worked off in bounded turns, as a replay chunks its capture. */
const MAX_TURN = 20_000;
/** Records due in the first seconds are left out of the latencies: JIT and chDB warm up. */
export const WARM_UP_S = 5;

// ---- schedule ---------------------------------------------------------------------------

/** A raw-record rate over time: contiguous segments from 0 s. */
export class Schedule {
  private readonly starts: number[] = [];
  readonly total: number;

  constructor(readonly segments: { seconds: number; rate: number }[]) {
    let n = 0;
    for (const s of segments) {
      this.starts.push(n);
      n += s.seconds * s.rate;
    }
    this.total = Math.floor(n);
  }

  get seconds(): number {
    return this.segments.reduce((t, s) => t + s.seconds, 0);
  }

  /** Records due by `t` seconds. */
  count(t: number): number {
    let at = 0;
    let n = 0;
    for (const s of this.segments) {
      if (t <= at + s.seconds) return Math.min(this.total, Math.floor(n + (t - at) * s.rate));
      at += s.seconds;
      n += s.seconds * s.rate;
    }
    return this.total;
  }

  /** When record `i` (from 0) is due, in seconds. */
  dueOf(i: number): number {
    let at = 0;
    for (let k = 0; k < this.segments.length; k++) {
      const s = this.segments[k] as { seconds: number; rate: number };
      const first = this.starts[k] as number;
      if (i < first + s.seconds * s.rate) return at + (i - first) / s.rate;
      at += s.seconds;
    }
    return at;
  }
}

// ---- timing marks -----------------------------------------------------------------------

/** When a position (an offset of one partition) was passed: marks of (end offset, time), both rising. */
class Marks {
  private readonly ends: number[] = [];
  private readonly times: number[] = [];

  add(end: number, at: number): void {
    if (end > (this.ends[this.ends.length - 1] ?? 0)) {
      this.ends.push(end);
      this.times.push(at);
    }
  }

  /** Time of the first mark past `offset`, or undefined when none is. */
  timeOf(offset: number): number | undefined {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.ends[mid] as number) > offset) hi = mid;
      else lo = mid + 1;
    }
    return this.times[lo];
  }
}

/** One timed record: when its raw record was due (s since the start) and a latency (ms). */
export interface Sample {
  due: number;
  ms: number;
}

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentiles(
  samples: readonly Sample[],
  keep: (s: Sample) => boolean = () => true,
): Percentiles {
  const ms = samples
    .filter(keep)
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0;
  return { n: ms.length, p50: at(0.5), p99: at(0.99), max: ms[ms.length - 1] ?? 0 };
}

// ---- receivers --------------------------------------------------------------------------

export interface ReceiverStats {
  records: number;
  requests: number;
  failed: number;
  acked: number[];
}

async function startReceivers(fail503Ms: number): Promise<{
  base: string;
  stats: () => Promise<Record<string, ReceiverStats>>;
  stop: () => void;
}> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'receivers.js'), String(fail503Ms)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout }).once('line', (line) => resolve(line)),
  );
  return {
    base,
    stats: async () => (await (await fetch(`${base}/stats`)).json()) as Record<string, ReceiverStats>,
    stop: () => child.kill(),
  };
}

// ---- the run ----------------------------------------------------------------------------

export interface StreamSpec {
  /** Receiver path and name in the results; a key starting with "fail" gets the failing receiver. */
  key: string;
  organisationId: number;
  /** 1 usage records, 2 events. */
  type: 1 | 2;
  filters?: { field: 'event_type_id' | 'alert'; value: number[] | boolean }[];
  size?: number;
}

export interface LiveOptions {
  devices: number;
  organisations: number;
  schedule: Schedule;
  streams: StreamSpec[];
  retry?: RetryPolicy;
  /** Per attempt of a sink (webhook deadline). */
  timeoutMs?: number;
  /** How long the streams get after the input ends to deliver the rest. */
  settleMs?: number;
  /** How long a failing receiver answers 503 before it stops answering. */
  fail503Ms?: number;
}

export interface StreamResult {
  key: string;
  status: string;
  errorCode: string | null;
  /** Seconds from the start until the stream went to Error. */
  errorAfter: number | null;
  delivered: number;
  /** Records on the log the stream takes (its organisation, type and filters). */
  expected: number;
  deadLetteredBatches: number;
  /** Output on the log -> received by the webhook, per record. */
  latency: Sample[];
  /** Delivered records per second of its own: from the start to its last delivery. */
  perSecond: number;
  /** Records it delivered while the input ran (received before the schedule's end). */
  deliveredInFeed: number;
}

export interface LiveResult {
  partitions: number;
  rawRecords: number;
  /** Seconds from the start until the fold had processed the last raw record. */
  foldSeconds: number;
  /** Seconds from the start until the engine had finished (organisation stage, ClickHouse, snapshots). */
  processedSeconds: number;
  /** Seconds from the start until the streams had delivered everything (or the settle time ran out). */
  deliveredSeconds: number;
  stages: {
    /** Due -> appended to the raw log: time spent waiting for the engine's turn. */
    queue: Sample[];
    /** Appended to the raw log -> processed by the fold. */
    ingestProcessed: Sample[];
    /** Processed (outputs on the log) -> stored in ClickHouse. */
    processedStored: Sample[];
    /** Processed (outputs on the log) -> received by a webhook (every stream). */
    processedDelivered: Sample[];
    /** Due -> received by a webhook. */
    endToEnd: Sample[];
  };
  /** Raw records due but not processed yet, sampled at every turn. */
  backlog: { t: number; records: number }[];
  streams: StreamResult[];
  cpuSeconds: number;
  peakRssMb: number;
}

const ID = /^\{"id":(\d+),/;
// The fields a lane filters on, read from the text as the lanes read them (src/streams/lane.ts).
const ORGANISATION = /"organisation":\{"id":(\d+)/;
const EVENT_TYPE = /"event_type":\{"id":(\d+)/;
const ALERT = /"alert":(true|false)/;

/** Records on the output log each stream takes (its organisation, record type and filters), in one pass. */
async function expectedCounts(engine: EmbeddedEngine, specs: StreamSpec[]): Promise<Map<string, number>> {
  const counts = new Map(specs.map((s) => [s.key, 0]));
  const sources = engine.streamSources();
  for (const type of [1, 2] as const) {
    const takers = specs.filter((s) => s.type === type);
    if (takers.length === 0) continue;
    for (const topic of type === 1 ? sources.usage : sources.events)
      for (let p = 0; p < topic.partitions; p++)
        for await (const record of records(topic, p)) {
          const json = record.value.toString('utf8');
          const organisation = Number(ORGANISATION.exec(json)?.[1]);
          const eventType = EVENT_TYPE.exec(json)?.[1];
          const alert = ALERT.exec(json)?.[1] === 'true';
          for (const spec of takers)
            if (
              spec.organisationId === organisation &&
              (eventType === undefined || matchesFilters(spec.filters ?? [], Number(eventType), alert))
            )
              counts.set(spec.key, (counts.get(spec.key) ?? 0) + 1);
        }
  }
  return counts;
}

/** Reads a topic partition from `from` to its end. */
async function* records(topic: Topic, partition: number) {
  let offset = await topic.startOffset(partition);
  for (;;) {
    const batch = await topic.read(partition, offset, 10_000);
    if (batch.length === 0) return;
    yield* batch;
    offset = (batch[batch.length - 1]?.offset as number) + 1;
  }
}

export async function runLive(options: LiveOptions): Promise<LiveResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-live-'));
  const receivers = await startReceivers(options.fail503Ms ?? 4000);
  try {
    return await run(options, dir, receivers);
  } finally {
    receivers.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(
  options: LiveOptions,
  dir: string,
  receivers: Awaited<ReturnType<typeof startReceivers>>,
): Promise<LiveResult> {
  const { schedule } = options;
  const reference = generateReferenceData({
    devices: options.devices,
    organisations: options.organisations,
    seed: 'bench',
  });
  const directory = new Directory(reference);
  const start = Date.UTC(2026, 0, 5);
  // Long enough never to run out: the rate, not virtual time, paces the core.
  const sim = new CoreSimulator({ directory, seed: 'bench', start, durationMs: 60 * 86_400_000 });
  const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'data') }, reference);
  const partitions = engine.raw.partitions;
  const streams = new StreamManager({
    dir: join(dir, 'data', 'streams'),
    sources: engine.streamSources(),
    cursors: engine.log.cursors,
    sinks: SINKS,
    // As beside the engine of `npm start` and `serve` (src/streams/beside-engine.ts).
    lanesIn: 'worker',
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const ids = new Map<string, string>();
  for (const spec of options.streams) {
    const stream = await streams.create(spec.organisationId, {
      name: spec.key,
      data_stream_type: { id: spec.type },
      destination: {
        connection_type: 'RestAPI',
        credentials: { url: `${receivers.base}/s/${spec.key}`, ...(spec.size ? { size: spec.size } : {}) },
      },
      ...(spec.filters ? { filters: spec.filters } : {}),
      start: 'earliest',
    });
    ids.set(spec.key, stream.id);
  }

  const dueAt: number[][] = Array.from({ length: partitions }, () => []);
  const appended = Array.from({ length: partitions }, () => new Marks());
  const processed = Array.from({ length: partitions }, () => new Marks());
  const storedTopics = [engine.outputTopic('events'), engine.outputTopic('usage')];
  const stored = new Map(
    storedTopics.map((t) => [t.name, Array.from({ length: partitions }, () => new Marks())]),
  );
  const backlog: { t: number; records: number }[] = [];

  const cpu = process.cpuUsage();
  const t0 = Date.now();
  // The ClickHouse writer's cursor is the only sign of what is stored: polled.
  let polling = false;
  const pollStored = async () => {
    if (polling) return;
    polling = true;
    const at = Date.now();
    for (const topic of storedTopics)
      for (let p = 0; p < partitions; p++) {
        const cursor = await engine.log.cursors.get(STORE_CURSOR_GROUP, topic.name, p);
        if (cursor !== undefined) stored.get(topic.name)?.[p]?.add(cursor, at);
      }
    polling = false;
  };
  const poller = setInterval(() => void pollStored(), 100);

  const batch: RawRecord[] = [];
  const read = new Map<string, number>();
  let produced = 0;
  const processedTotal = () => engine.processors.reduce((n, p) => n + p.offset, 0);
  while (produced < schedule.total) {
    const due = schedule.count((Date.now() - t0) / 1000);
    const n = Math.min(MAX_TURN, due - produced);
    if (n > 0) {
      sim.generate(batch, n);
      const lines = batch.map(captureLine);
      lines.forEach((line, k) => {
        dueAt[partitionOfLine(line, directory, partitions)]?.push(t0 + schedule.dueOf(produced + k) * 1000);
      });
      produced += batch.length;
      batch.length = 0;
      await engine.ingest(lines);
      const at = Date.now();
      dueAt.forEach((d, p) => {
        appended[p]?.add(d.length, at);
      });
    }
    await engine.process(() => {
      const at = Date.now();
      for (const processor of engine.processors) processed[processor.partition]?.add(processor.offset, at);
    });
    for (const command of await engine.enforcementSince(read)) sim.enforce(command);
    const now = Date.now();
    backlog.push({ t: (now - t0) / 1000, records: schedule.count((now - t0) / 1000) - processedTotal() });
    if (schedule.count((now - t0) / 1000) <= produced) await sleep(TURN_MS - ((now - t0) % TURN_MS));
  }
  const foldSeconds = (Date.now() - t0) / 1000;
  await engine.finish();
  const processedSeconds = (Date.now() - t0) / 1000;
  // Everything is stored now; one more poll notes it.
  await pollStored();
  const settle = new AbortController();
  await Promise.race([
    streams.caughtUp(),
    sleep(options.settleMs ?? 60_000, undefined, { signal: settle.signal }).catch(() => undefined),
  ]);
  settle.abort();
  const deliveredSeconds = (Date.now() - t0) / 1000;
  clearInterval(poller);
  const used = process.cpuUsage(cpu);
  const received = await receivers.stats();

  // Per raw record: due, appended, processed.
  const queue: Sample[] = [];
  const ingestProcessed: Sample[] = [];
  const rawTimes = (p: number, offset: number) => {
    const due = dueAt[p]?.[offset];
    const done = processed[p]?.timeOf(offset);
    return due === undefined || done === undefined ? undefined : { due, done };
  };
  for (let p = 0; p < partitions; p++)
    (dueAt[p] as number[]).forEach((due, offset) => {
      const at = appended[p]?.timeOf(offset) as number;
      const done = processed[p]?.timeOf(offset) as number;
      const s = (due - t0) / 1000;
      queue.push({ due: s, ms: Math.round(at - due) });
      ingestProcessed.push({ due: s, ms: done - at });
    });

  // Per output record: processed -> stored.
  const processedStored: Sample[] = [];
  for (const topic of storedTopics)
    for (let p = 0; p < partitions; p++)
      for await (const record of records(topic, p)) {
        const id = ID.exec(record.value.toString('latin1', 0, 40))?.[1];
        if (id === undefined) continue;
        const position = idPosition(Number(id));
        const raw = rawTimes(position.partition, position.offset);
        const at = stored.get(topic.name)?.[p]?.timeOf(record.offset);
        if (raw && at !== undefined) processedStored.push({ due: (raw.due - t0) / 1000, ms: at - raw.done });
      }

  // Per delivered record: processed -> delivered, due -> delivered.
  const processedDelivered: Sample[] = [];
  const endToEnd: Sample[] = [];
  const results: StreamResult[] = [];
  const expected = await expectedCounts(engine, options.streams);
  for (const spec of options.streams) {
    const id = ids.get(spec.key) as string;
    const status = await streams.status(spec.organisationId, id);
    const got = received[spec.key] ?? { records: 0, requests: 0, failed: 0, acked: [] };
    const latency: Sample[] = [];
    const seen = new Set<number>();
    let last = t0;
    let inFeed = 0;
    const feedEnd = t0 + schedule.seconds * 1000;
    for (let k = 0; k < got.acked.length; k += 2) {
      const recordId = got.acked[k] as number;
      const at = got.acked[k + 1] as number;
      last = Math.max(last, at);
      // At-least-once: a record received twice is timed once, at its first delivery.
      if (seen.has(recordId)) continue;
      seen.add(recordId);
      if (at <= feedEnd) inFeed++;
      const position = idPosition(recordId);
      const raw = rawTimes(position.partition, position.offset);
      if (!raw) continue;
      const due = (raw.due - t0) / 1000;
      latency.push({ due, ms: at - raw.done });
      processedDelivered.push({ due, ms: at - raw.done });
      endToEnd.push({ due, ms: Math.round(at - raw.due) });
    }
    const error = status.stream.error;
    results.push({
      key: spec.key,
      status: status.stream.status.description,
      errorCode: error?.code ?? null,
      errorAfter: error ? (Date.parse(error.at) - t0) / 1000 : null,
      delivered: seen.size,
      expected: expected.get(spec.key) ?? 0,
      deadLetteredBatches: status.dead_lettered_batches,
      latency,
      perSecond: seen.size / Math.max(0.001, (last - t0) / 1000),
      deliveredInFeed: inFeed,
    });
  }
  await streams.close();
  await engine.close();

  return {
    partitions,
    rawRecords: produced,
    foldSeconds,
    processedSeconds,
    deliveredSeconds,
    stages: { queue, ingestProcessed, processedStored, processedDelivered, endToEnd },
    backlog,
    streams: results,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** The numbers every live scenario prints: stage percentiles (records due after the warm-up), CPU and memory. */
export function stageNumbers(result: LiveResult, keep: (s: Sample) => boolean = (s) => s.due >= WARM_UP_S) {
  const out: Record<string, number> = {};
  const stages = [
    ['queue', result.stages.queue],
    ['ingest_processed', result.stages.ingestProcessed],
    ['processed_stored', result.stages.processedStored],
    ['processed_delivered', result.stages.processedDelivered],
    ['end_to_end', result.stages.endToEnd],
  ] as const;
  for (const [name, samples] of stages) {
    const p = percentiles(samples, keep);
    out[`${name}_p50_ms`] = p.p50;
    out[`${name}_p99_ms`] = p.p99;
  }
  return out;
}

/** Minimum, median and maximum of a list of numbers. */
export function spread(values: number[]): { min: number; median: number; max: number } {
  const v = [...values].sort((a, b) => a - b);
  return { min: v[0] ?? 0, median: v[Math.floor(v.length / 2)] ?? 0, max: v[v.length - 1] ?? 0 };
}
