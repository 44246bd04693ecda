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
  /**
   * A partial batch is sent once this long has passed since the lane's previous batch: at
   * most one partial batch per linger time, and a record that comes after a quiet spell
   * goes at once.
   */
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

/**
 * Cursor commits of a busy lane are at least this far apart. Each one is a file write and
 * two fsyncs in the engine's thread (on Kafka, a request to the broker), and a lane sends a
 * partial batch every linger time; a crash sends again at most this much (records keep
 * their ids, so consumers deduplicate). A stopping lane, or one asked whether it caught
 * up, commits at once.
 */
const COMMIT_SPACING_MS = 1000;

/** Why a lane's wait for appends ends: a constant, so no abort builds an error. */
const WAIT_OVER = 'wait over';

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
  /** Cursor positions of delivered batches not committed yet, the commit under way, and how it failed. */
  private unsaved = new Map<string, number>();
  private saving: Promise<void> | undefined;
  private saveError: Error | undefined;
  private lastCommit = Number.NEGATIVE_INFINITY;
  /** Cuts the wait for the commit spacing short (the lane is asked whether it caught up, or stops). */
  private commitWait: AbortController | undefined;
  /** When the lane last sent a batch (its clock), for the linger time. */
  private lastSent = Number.NEGATIVE_INFINITY;

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
    for (;;) {
      if (this.failed || this.abort.signal.aborted) return;
      // An idle lane's last positions are committed now rather than after the spacing.
      if (this.idle) this.commitWait?.abort();
      if (this.idle && (await this.lag()).records === 0) return;
      await sleep(Math.min(this.options.pollMs, 20));
    }
  }

  lag(): Promise<{ records: number; seconds: number }> {
    return streamLag(this.options.sources, this.options.cursors, this.options.stream.id);
  }

  private async run(): Promise<void> {
    const { maxInFlight, pollMs } = this.options;
    const inFlight: Pending[] = [];
    try {
      while (!this.abort.signal.aborted && !this.failed) {
        if (this.saveError) throw this.saveError;
        const pending = await this.fill();
        if (pending) inFlight.push(pending);
        // The batches at the head that are done move the cursor, in order; with the window
        // full, the oldest batch is waited for before reading on.
        while (inFlight[0] && (inFlight[0].settled || inFlight.length >= maxInFlight)) {
          const head = inFlight.shift() as Pending;
          if (!(await head.done)) {
            this.failed = true;
            break;
          }
          this.save(head.ends);
        }
        this.metrics.in_flight = inFlight.length;
        this.idle = !pending && inFlight.length === 0;
        // Nothing new: wait for records, or for the oldest batch in flight to be done.
        if (!pending && !this.failed) await this.waitForRecords(pollMs, inFlight[0]?.done);
      }
    } finally {
      // Delivered batches are committed before the lane stops.
      this.commitWait?.abort();
      await this.saving;
    }
    if (this.saveError) throw this.saveError;
    // Batches still in flight when the lane stops are abandoned: their records are after the cursor.
  }

  /**
   * Moves the cursor past a delivered batch without holding up the lane: reading and
   * sending go on while the commit waits its turn (COMMIT_SPACING_MS) and is written
   * (through the engine's thread, when the lane runs in the worker). Positions that pile
   * up meanwhile go in the next commit, the later one of a partition replacing the
   * earlier, so what waits is one position per partition.
   */
  private save(ends: Map<string, number>): void {
    for (const [key, offset] of ends) this.unsaved.set(key, offset);
    // saveAll reaches its first await only with something to commit.
    if (this.unsaved.size > 0) this.saving ??= this.saveAll();
  }

  private async saveAll(): Promise<void> {
    try {
      while (this.unsaved.size > 0) {
        const wait = this.lastCommit + COMMIT_SPACING_MS - this.options.now();
        if (wait > 0 && !this.abort.signal.aborted) {
          this.commitWait = new AbortController();
          await sleep(wait, undefined, { signal: this.commitWait.signal }).catch(() => undefined);
          this.commitWait = undefined;
        }
        const ends = this.unsaved;
        this.unsaved = new Map();
        this.lastCommit = this.options.now();
        await this.commit(ends);
      }
    } catch (error) {
      this.saveError = error as Error;
    } finally {
      this.saving = undefined;
    }
  }

  /** Reads the next batch: full, or partial once it has lingered. Undefined when there is nothing new. */
  private async fill(): Promise<Pending | undefined> {
    const { sources, reads, batching, stream, now, pollMs } = this.options;
    const records: SinkRecord[] = [];
    const ends = new Map<string, number>();
    let bytes = 0;
    // Counted from the previous batch, not from this read: a lane that was waiting for a
    // batch in flight (or for its commit) reads records that have waited meanwhile.
    const due = this.lastSent + batching.lingerMs;
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
        if (records.length === 0 || now() >= due) break;
        // Not woken by appends: more records are what the linger waits for anyway.
        await sleep(Math.min(pollMs, due - now()), undefined, { signal: this.abort.signal }).catch(
          () => undefined,
        );
      }
    }
    const pending: Pending = { records, ends, done: Promise.resolve(true), settled: records.length === 0 };
    if (records.length > 0) {
      this.lastSent = now();
      pending.done = this.send(records).then((delivered) => {
        pending.settled = true;
        return delivered;
      });
    }
    return pending;
  }

  /** Sleeps up to `ms`, less when a source topic is appended to (on a log that can tell), `or` settles, or the lane stops. */
  private async waitForRecords(ms: number, or?: Promise<unknown>): Promise<void> {
    if (this.abort.signal.aborted) return;
    // A plain timer rather than an aborted sleep: a lane waits many times a second, and
    // every aborted sleep would build an AbortError with its stack.
    let timer: NodeJS.Timeout | undefined;
    let stop = () => {};
    const wakes: Promise<unknown>[] = [
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
        stop = resolve;
      }),
    ];
    this.abort.signal.addEventListener('abort', stop, { once: true });
    const done = new AbortController();
    // Only promises: a plain value (a log that cannot tell of appends, such as Kafka)
    // would end the race at once, and the lane would read without pause.
    for (const topic of this.options.sources) {
      const appended = topic.appended?.(done.signal);
      if (appended) wakes.push(appended);
    }
    if (or) wakes.push(or);
    try {
      await Promise.race(wakes);
    } finally {
      clearTimeout(timer);
      done.abort(WAIT_OVER);
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
