/**
 * One data stream's delivery lane: its own cursor on the output log, its own batcher
 * (records, bytes, linger time), its own in-flight limit, retries and metrics. Nothing a
 * lane does waits on another lane or on the engine: a slow, failing or paused destination
 * only holds back its own stream.
 *
 * The cursor moves only past batches that were delivered, in log order: with several
 * batches in flight, a later one that finishes first waits for the earlier ones. When a
 * batch cannot be delivered, it goes to the dead-letter store, the stream goes to Error
 * and the cursor stays before it, so a restart sends it again.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RecordType, Sink, SinkBatch, SinkRecord } from '../../connectors/sinks/types.js';
import type { CursorStore, Topic } from '../log/types.js';
import { type DataStream, matchesFilters } from './config.js';
import type { BatchDeadLetters } from './dead-letters.js';
import { DeliveryFailed, deliver, type RetryPolicy } from './delivery.js';
import { fieldsOf } from './record-fields.js';
import type { SharedReads } from './shared-reads.js';

export interface LaneBatching {
  maxRecords: number;
  maxBytes: number;
  /** A partial batch is sent once its first record has waited this long. */
  lingerMs: number;
}

export interface LaneMetrics {
  delivered_records: number;
  delivered_batches: number;
  failed_attempts: { retriable: number; permanent: number; partial: number };
  dead_lettered_batches: number;
  in_flight: number;
  last_success_at: string | null;
  last_error: { code: string; message: string; status?: number | string; at: string } | null;
  /** Delivery time of the latest batches (first attempt to success), for percentiles. */
  latency_ms: number[];
  /** Every delivery time since start, as cumulative counts per LATENCY_BUCKETS_MS bound (a Prometheus histogram). */
  latency_histogram: { buckets: number[]; sum_ms: number; count: number };
}

/** Upper bounds of the delivery-latency histogram, in ms. */
export const LATENCY_BUCKETS_MS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export interface LaneOptions {
  stream: DataStream;
  sink: Sink;
  sources: Topic[];
  /** Where the lane reads the log: shared with the other lanes. */
  reads: SharedReads;
  cursors: CursorStore;
  deadLetters: BatchDeadLetters;
  batching: LaneBatching;
  retry: RetryPolicy;
  maxInFlight: number;
  pollMs: number;
  now: () => number;
  /** Kept by the caller, so they outlive a restart of the lane. */
  metrics: LaneMetrics;
  /** The lane gave up (a batch could not be delivered, or reading the log failed): the stream is to go to Error. */
  onFailure: (error: { code: string; message: string }) => void;
}

/** A position on the output log: `topic/partition`. */
const slot = (topic: string, partition: number) => `${topic}/${partition}`;

/** Cursor group of a stream on the output log. */
export const cursorGroup = (streamId: string) => `stream:${streamId}`;

interface Pending {
  records: SinkRecord[];
  /** Read positions after this batch: where the cursor goes once it (and all before it) is delivered. */
  ends: Map<string, number>;
  done: Promise<boolean>;
  /** Set once `done` has resolved. */
  settled: boolean;
}

/** Turns a log record of an output topic into what a sink sends, or undefined when the stream does not take it. */
export function toSinkRecord(
  stream: DataStream,
  topic: string,
  record: { partition: number; offset: number; timestamp: number; key: string | null; value: Buffer },
): SinkRecord | undefined {
  const json = record.value.toString('utf8');
  const { id, organisationId, eventTypeId, alert } = fieldsOf(json);
  if (organisationId !== stream.organisation_id) return undefined;
  if (eventTypeId !== undefined && !matchesFilters(stream.filters, eventTypeId, alert)) return undefined;
  return {
    id,
    topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key,
    ...(eventTypeId === undefined ? {} : { eventTypeId }),
    json,
  };
}

export function recordTypeOf(stream: DataStream): RecordType {
  return stream.data_stream_type.id === 1 ? 'usage' : 'events';
}

/** Records of a stream as one batch for its sink (size 1 streams send bare objects). */
export function batchOf(stream: DataStream, records: SinkRecord[]): SinkBatch {
  return { streamId: stream.id, recordType: recordTypeOf(stream), bare: stream.size === 1, records };
}

export const emptyMetrics = (): LaneMetrics => ({
  delivered_records: 0,
  delivered_batches: 0,
  failed_attempts: { retriable: 0, permanent: 0, partial: 0 },
  dead_lettered_batches: 0,
  in_flight: 0,
  last_success_at: null,
  last_error: null,
  latency_ms: [],
  latency_histogram: { buckets: LATENCY_BUCKETS_MS.map(() => 0), sum_ms: 0, count: 0 },
});

/** Records a stream has not delivered yet (filtered ones included) and how far they span in event time. */
export async function streamLag(
  sources: Topic[],
  cursors: CursorStore,
  streamId: string,
): Promise<{ records: number; seconds: number }> {
  let records = 0;
  let oldest = Number.POSITIVE_INFINITY;
  let newest = 0;
  for (const topic of sources)
    for (let p = 0; p < topic.partitions; p++) {
      const end = await topic.endOffset(p);
      const committed = (await cursors.get(cursorGroup(streamId), topic.name, p)) ?? 0;
      const from = Math.max(committed, await topic.startOffset(p));
      if (end <= from) continue;
      records += end - from;
      const [first] = await topic.read(p, from, 1);
      const [last] = await topic.read(p, end - 1, 1);
      oldest = Math.min(oldest, first?.timestamp ?? oldest);
      newest = Math.max(newest, last?.timestamp ?? newest);
    }
  return { records, seconds: records === 0 ? 0 : Math.max(0, (newest - oldest) / 1000) };
}

export class Lane {
  /** Next offset to read, per topic/partition (ahead of the committed cursor while batches are in flight). */
  private readonly reading = new Map<string, number>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private failed = false;
  /** True while the lane has nothing to send and nothing in flight. */
  private idle = false;

  constructor(private readonly options: LaneOptions) {
    // Every attempt in flight listens on it, and a sink may send several requests at once.
    setMaxListeners(64, this.abort.signal);
  }

  get metrics(): LaneMetrics {
    return this.options.metrics;
  }

  /** Starts reading from the committed cursor. */
  async start(): Promise<void> {
    const { sources, cursors, stream } = this.options;
    for (const topic of sources)
      for (let p = 0; p < topic.partitions; p++) {
        const committed = await cursors.get(cursorGroup(stream.id), topic.name, p);
        // Records removed by retention while the stream was paused cannot be sent any more.
        const from = Math.max(committed ?? 0, await topic.startOffset(p));
        this.reading.set(slot(topic.name, p), from);
        this.options.reads.at(this, topic, p, from);
      }
    await this.options.sink.open();
    this.loop = this.run().catch((error: Error & { code?: string }) => {
      if (this.abort.signal.aborted) return;
      this.failed = true;
      this.options.onFailure({ code: error.code ?? 'STREAM_LANE_FAILED', message: error.message });
    });
  }

  /** Stops reading, abandons attempts in flight (their records are sent again on the next start) and closes the sink. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => undefined);
    this.options.reads.forget(this);
    await this.options.sink.close();
  }

  /** Resolves once everything on the log up to now has been delivered (or the lane failed or stopped). */
  async caughtUp(): Promise<void> {
    while (!this.failed && !this.abort.signal.aborted && !(this.idle && (await this.lag()).records === 0))
      await sleep(Math.min(this.options.pollMs, 20));
  }

  lag(): Promise<{ records: number; seconds: number }> {
    return streamLag(this.options.sources, this.options.cursors, this.options.stream.id);
  }

  private async run(): Promise<void> {
    const { maxInFlight, pollMs } = this.options;
    const inFlight: Pending[] = [];
    while (!this.abort.signal.aborted && !this.failed) {
      const pending = await this.fill();
      if (pending) inFlight.push(pending);
      this.idle = !pending && inFlight.length === 0;
      // Commit, in order, the batches at the head that are done.
      while (inFlight.length > 0 && (inFlight.length >= maxInFlight || !pending || inFlight[0]?.settled)) {
        const head = inFlight.shift() as Pending;
        if (!(await head.done)) {
          this.failed = true;
          break;
        }
        await this.commit(head.ends);
      }
      this.metrics.in_flight = inFlight.length;
      if (!pending && inFlight.length === 0) await this.waitForRecords(pollMs);
    }
    // Batches still in flight when the lane stops are abandoned: their records are after the cursor.
  }

  /** Reads the next batch: full, or partial once it has lingered. Undefined when there is nothing new. */
  private async fill(): Promise<Pending | undefined> {
    const { sources, reads, batching, stream, now, pollMs } = this.options;
    const records: SinkRecord[] = [];
    const ends = new Map<string, number>();
    let bytes = 0;
    const began = now();
    let full = false;
    for (;;) {
      let read = 0;
      for (const topic of sources)
        for (let p = 0; p < topic.partitions && !full; p++) {
          const key = slot(topic.name, p);
          const from = this.reading.get(key) ?? 0;
          const chunk = await reads.chunk(topic, p, from, this);
          if (!chunk) continue;
          const own = chunk.byOrganisation.get(stream.organisation_id);
          // Past the chunk, unless the batch fills up before this organisation's records in it end.
          let next = chunk.to;
          for (let i = own?.firstAtOrAfter(from) ?? 0; own && i < own.length; i++) {
            const eventTypeId = own.eventTypeOf(i);
            if (
              eventTypeId !== undefined &&
              !matchesFilters(stream.filters, eventTypeId, own.alerts[i] === 1)
            )
              continue;
            const size = own.sizeOf(i);
            if (
              records.length >= batching.maxRecords ||
              (records.length > 0 && bytes + size > batching.maxBytes)
            ) {
              full = true;
              next = own.offsets[i] as number;
              break;
            }
            records.push(own.record(i));
            bytes += size;
          }
          if (next > from) {
            this.reading.set(key, next);
            ends.set(key, next);
            read += next - from;
          }
        }
      full ||= records.length >= batching.maxRecords || bytes >= batching.maxBytes;
      if (full || this.abort.signal.aborted) break;
      if (read === 0) {
        // Nothing new: send what there is once it has lingered, or report nothing to do.
        if (records.length === 0 && ends.size === 0) return undefined;
        if (records.length === 0 || now() - began >= batching.lingerMs) break;
        // Not woken by appends: more records are what the linger waits for anyway.
        await sleep(Math.min(pollMs, batching.lingerMs), undefined, { signal: this.abort.signal }).catch(
          () => undefined,
        );
      }
    }
    const pending: Pending = { records, ends, done: Promise.resolve(true), settled: records.length === 0 };
    if (records.length > 0)
      pending.done = this.send(records).then((delivered) => {
        pending.settled = true;
        return delivered;
      });
    return pending;
  }

  /** Sleeps up to `ms`, less when a source topic is appended to (on a log that can tell) or the lane stops. */
  private async waitForRecords(ms: number): Promise<void> {
    if (this.abort.signal.aborted) return;
    const done = new AbortController();
    const stop = () => done.abort();
    this.abort.signal.addEventListener('abort', stop, { once: true });
    try {
      await Promise.race([
        sleep(ms, undefined, { signal: done.signal }).catch(() => undefined),
        ...this.options.sources.map((topic) => topic.appended?.(done.signal)),
      ]);
    } finally {
      done.abort();
      this.abort.signal.removeEventListener('abort', stop);
    }
  }

  /** Delivers one batch with retries; resolves false if it had to be dead-lettered. */
  private async send(records: SinkRecord[]): Promise<boolean> {
    const { sink, stream, retry, now, deadLetters } = this.options;
    const began = now();
    try {
      await deliver(sink, batchOf(stream, records), retry, {
        signal: this.abort.signal,
        onAttemptFailed: (error) => {
          this.metrics.failed_attempts[error.kind]++;
          this.metrics.last_error = {
            code: error.code,
            message: error.message,
            ...(error.status === undefined ? {} : { status: error.status }),
            at: new Date(now()).toISOString(),
          };
        },
      });
    } catch (error) {
      if (this.abort.signal.aborted || !(error instanceof DeliveryFailed)) return false;
      this.metrics.dead_lettered_batches++;
      // A restart sends the whole batch again; the dead letter keeps what a redrive needs.
      await deadLetters.addFailed(stream.id, error, now());
      this.options.onFailure({ code: error.last.code, message: error.message });
      return false;
    }
    this.metrics.delivered_records += records.length;
    this.metrics.delivered_batches++;
    this.metrics.last_success_at = new Date(now()).toISOString();
    const took = now() - began;
    this.metrics.latency_ms.push(took);
    if (this.metrics.latency_ms.length > 1000) this.metrics.latency_ms.splice(0, 500);
    const histogram = this.metrics.latency_histogram;
    LATENCY_BUCKETS_MS.forEach((bound, i) => {
      if (took <= bound) histogram.buckets[i] = (histogram.buckets[i] ?? 0) + 1;
    });
    histogram.sum_ms += took;
    histogram.count++;
    return true;
  }

  /** All partitions at once: the cursor store writes the commits that meet into one file write. */
  private async commit(ends: Map<string, number>): Promise<void> {
    const { cursors, stream } = this.options;
    await Promise.all(
      [...ends].map(([key, offset]) => {
        const at = key.lastIndexOf('/');
        return cursors.commit(cursorGroup(stream.id), key.slice(0, at), Number(key.slice(at + 1)), offset);
      }),
    );
  }
}
