/**
 * The data streams of an engine: their configuration (stored), one lane per running
 * stream, and the operations of emnify's API v2 and more: create, read, update, delete,
 * restart, redrive dead-lettered batches, replay a time range. Every operation is scoped
 * to an organisation: another organisation's stream is "not found", never "forbidden".
 */
import { join } from 'node:path';
import type { SinkFactory, SinkRecord } from '../../connectors/sinks/types.js';
import type { CursorStore, Topic } from '../log/types.js';
import { DataStreamerError } from '../util/errors.js';
import { type DataStream, maskStream, STATUS, type StatusId, validateStream } from './config.js';
import { BatchDeadLetters } from './dead-letters.js';
import { DEFAULT_RETRY, DeliveryFailed, deliver, type RetryPolicy } from './delivery.js';
import {
  batchOf,
  cursorGroup,
  emptyMetrics,
  type LaneBatching,
  type LaneMetrics,
  streamLag,
  toSinkRecord,
} from './lane.js';
import {
  createSink,
  factoryOf,
  InProcessLanes,
  type LaneFailure,
  type LaneHost,
  type StreamSources,
  sourcesOf,
} from './lanes.js';
import { StreamStore } from './store.js';
import { WorkerLanes } from './worker-lanes.js';

export class StreamNotFound extends DataStreamerError {
  constructor(id: string) {
    super('STREAM_NOT_FOUND', `data stream ${id} not found`);
    this.name = 'StreamNotFound';
  }
}

export interface StreamManagerOptions {
  /** Folder for streams.json and the dead-lettered batches. */
  dir: string;
  sources: StreamSources;
  cursors: CursorStore;
  sinks: ReadonlyMap<string, SinkFactory>;
  retry?: RetryPolicy;
  /** Default DEFAULT_LINGER_MS: records are sent at intervals, as emnify's webhook does. */
  lingerMs?: number;
  maxBytes?: number;
  maxInFlight?: number;
  pollMs?: number;
  timeoutMs?: number;
  now?: () => number;
  /** Stream ids; default 8 hex characters from crypto.randomUUID (ids are not part of any output). */
  newId?: () => string;
  /**
   * Where the lanes run: in this thread (default; any log, injected clock and sinks), or in
   * a worker thread of their own ('worker': embedded-log sources only, the built-in sinks
   * and the wall clock). A worker keeps the lanes' buffers out of the engine's heap, whose
   * full collections they would otherwise set off, and lets delivery use the second core.
   */
  lanesIn?: 'process' | 'worker';
  /**
   * Whether this process delivers (default true). Distributed mode: every replica manages
   * the shared stream configuration, one of them (runLanes) delivers.
   */
  lanes?: boolean;
}

export interface StreamStatus {
  stream: DataStream;
  metrics: Omit<LaneMetrics, 'latency_ms' | 'latency_histogram'> & {
    latency_ms: { p50: number; p99: number } | null;
  };
  /** For /metrics. */
  latency_histogram: LaneMetrics['latency_histogram'];
  lag: { records: number; seconds: number };
  dead_lettered_batches: number;
}

/**
 * How long a partial batch waits for more records. emnify does not document its flush
 * interval; 100 ms keeps a trickle to at most ten requests a second per stream (about one
 * per engine turn) while records reach the destination within a few hundred ms. Lanes wake
 * on appends (embedded log), so this, not polling, is what a record waits at the end of
 * the log.
 */
export const DEFAULT_LINGER_MS = 100;

export class StreamManager {
  private readonly store: StreamStore;
  private readonly deadLetters: BatchDeadLetters;
  /** Started with the first lane. */
  private host: LaneHost | undefined;
  /** Status changes started by failing lanes, awaited by caughtUp(). */
  private readonly transitions = new Set<Promise<void>>();
  /** The running lanes, with the configuration each was started with, to see when another process changed it. */
  private readonly laneConfigs = new Map<string, string>();
  private readonly now: () => number;
  private delivers: boolean;

  constructor(private readonly options: StreamManagerOptions) {
    this.store = new StreamStore(options.dir);
    this.deadLetters = new BatchDeadLetters(join(options.dir, 'dead-letters'));
    this.now = options.now ?? Date.now;
    this.delivers = options.lanes ?? true;
  }

  /** Distributed mode: this process starts (or stops) delivering, as it gains (or loses) that role. */
  async runLanes(on: boolean): Promise<void> {
    this.delivers = on;
    if (on) await this.reconcile();
    else await this.close();
  }

  /**
   * Brings the lanes in line with the stored streams, which another process may have
   * changed (a replica's API, the CLI): starts the new and resumed ones, restarts the
   * changed ones, stops the paused and deleted ones.
   */
  async reconcile(): Promise<void> {
    if (!this.delivers) return;
    const wanted = new Map(
      this.store
        .list()
        .filter((s) => s.status.id === 1)
        .map((s) => [s.id, s]),
    );
    for (const id of [...this.laneConfigs.keys()]) {
      const stream = wanted.get(id);
      if (!stream || JSON.stringify(stream) !== this.laneConfigs.get(id)) await this.stopLane(id);
    }
    for (const [id, stream] of wanted) {
      if (this.laneConfigs.has(id)) continue;
      try {
        await this.startLane(stream);
      } catch (error) {
        // One stream that cannot start does not hold back the others: it goes to Error.
        const e = error as DataStreamerError;
        await this.setStatus(id, 3, { code: e.code ?? 'STREAM_OPEN_FAILED', message: e.message });
      }
    }
  }

  /** Starts a lane for every running stream. */
  async start(): Promise<void> {
    for (const stream of this.store.list()) if (stream.status.id === 1) await this.startLane(stream);
  }

  async close(): Promise<void> {
    this.laneConfigs.clear();
    const host = this.host;
    this.host = undefined;
    await host?.close();
    await Promise.allSettled(this.transitions);
  }

  /** Every organisation's streams, masked: for operators, never for an organisation's API. */
  all(): DataStream[] {
    return this.store.list().map((s) => this.masked(s));
  }

  list(organisationId: number): DataStream[] {
    return this.store.list(organisationId).map((s) => this.masked(s));
  }

  get(organisationId: number, id: string): DataStream {
    return this.masked(this.owned(organisationId, id));
  }

  async create(organisationId: number, input: unknown): Promise<DataStream> {
    const id = this.options.newId?.() ?? crypto.randomUUID().slice(0, 8);
    const stream = validateStream(input, this.options.sinks, {
      id,
      organisationId,
      createdAt: new Date(this.now()).toISOString(),
    });
    await this.setStartCursors(stream);
    await this.store.put(stream);
    if (stream.status.id === 1) await this.startLane(stream);
    return this.masked(stream);
  }

  /**
   * Changes a stream: the fields given replace the stored ones (credentials as a whole; a
   * masked value sent back unchanged keeps the stored secret). Pausing keeps the position.
   */
  async update(organisationId: number, id: string, patch: Record<string, unknown>): Promise<DataStream> {
    const current = this.owned(organisationId, id);
    const destination = patch.destination as { credentials?: Record<string, unknown> } | undefined;
    const merged = {
      name: current.name,
      data_stream_type: { id: current.data_stream_type.id },
      destination: {
        connection_type: current.destination.connection_type,
        credentials: { ...current.destination.credentials, size: current.size },
        format: current.destination.format,
      },
      filters: current.filters,
      status: { id: current.status.id === 2 ? 2 : 1 },
      start: current.start,
      ...patch,
    } as Record<string, unknown> & { destination: { credentials: Record<string, unknown> } };
    if (destination?.credentials)
      merged.destination.credentials = this.unmask(current, destination.credentials);
    const next = validateStream(merged, this.options.sinks, {
      id,
      organisationId,
      createdAt: current.created_at,
    });
    await this.stopLane(id);
    await this.store.put(next);
    if (next.status.id === 1) await this.startLane(next);
    return this.masked(next);
  }

  async delete(organisationId: number, id: string): Promise<void> {
    this.owned(organisationId, id);
    await this.stopLane(id);
    await this.store.delete(id);
    this.deadLetters.removeAll(id);
    await this.host?.forget(id);
  }

  /**
   * Takes a stream out of Error (or Paused) and starts it from its cursor, which sends the
   * failed batch again. With `skipFailed`, the cursor first moves past the dead-lettered
   * batches (they stay in the dead-letter store for a later redrive).
   */
  async restart(
    organisationId: number,
    id: string,
    options: { skipFailed?: boolean } = {},
  ): Promise<DataStream> {
    const stream = this.owned(organisationId, id);
    await this.stopLane(id);
    if (options.skipFailed) {
      for (const { batch } of this.deadLetters.list(id)) {
        const ends = new Map<string, SinkRecord>();
        for (const r of batch.records) ends.set(`${r.topic}/${r.partition}`, r);
        for (const r of ends.values()) {
          const committed = (await this.options.cursors.get(cursorGroup(id), r.topic, r.partition)) ?? 0;
          if (committed <= r.offset)
            await this.options.cursors.commit(cursorGroup(id), r.topic, r.partition, r.offset + 1);
        }
      }
    }
    const next: DataStream = { ...stream, status: { id: 1, description: STATUS[1] } };
    delete next.error;
    await this.store.put(next);
    await this.startLane(next);
    return this.masked(next);
  }

  /** Sends the dead-lettered batches again; each one delivered leaves the store. */
  async redrive(
    organisationId: number,
    id: string,
  ): Promise<{ batches: number; records: number; failed: number }> {
    const stream = this.owned(organisationId, id);
    const sink = this.createSink(stream);
    const result = { batches: 0, records: 0, failed: 0 };
    await sink.open();
    try {
      for (const { name, batch } of this.deadLetters.list(id)) {
        try {
          await deliver(sink, batchOf(stream, batch.records), this.retry);
          this.deadLetters.remove(id, name);
          result.batches++;
          result.records += batch.records.length;
        } catch (error) {
          if (!(error instanceof DeliveryFailed)) throw error;
          result.failed++;
        }
      }
    } finally {
      await sink.close();
    }
    return result;
  }

  /**
   * Sends the stream's records of an event-time range [from, until) again, beside its
   * lane and without moving its cursor. Batches that cannot be delivered are dead-lettered.
   */
  async replay(
    organisationId: number,
    id: string,
    range: { from: number; until: number },
  ): Promise<{ records: number; batches: number; failed: number }> {
    const stream = this.owned(organisationId, id);
    const sink = this.createSink(stream);
    const result = { records: 0, batches: 0, failed: 0 };
    const batching = this.batching(stream);
    const send = async (records: SinkRecord[]) => {
      if (records.length === 0) return;
      try {
        await deliver(sink, batchOf(stream, records), this.retry);
        result.records += records.length;
        result.batches++;
      } catch (error) {
        if (!(error instanceof DeliveryFailed)) throw error;
        result.failed++;
        await this.deadLetters.addFailed(id, error, this.now());
      }
    };
    await sink.open();
    try {
      let records: SinkRecord[] = [];
      for (const topic of this.sourcesOf(stream))
        for (let p = 0; p < topic.partitions; p++) {
          let offset = Math.max(await topic.offsetForTime(p, range.from), await topic.startOffset(p));
          const end = await topic.offsetForTime(p, range.until);
          while (offset < end) {
            const batch = await topic.read(p, offset, Math.min(batching.maxRecords, end - offset));
            for (const record of batch) {
              offset = record.offset + 1;
              // Event times are not strictly ordered on the log: the range is checked per record.
              if (record.timestamp < range.from || record.timestamp >= range.until) continue;
              const item = toSinkRecord(stream, topic.name, record);
              if (item) records.push(item);
              if (records.length >= batching.maxRecords) {
                await send(records);
                records = [];
              }
            }
            if (batch.length === 0) break;
          }
        }
      await send(records);
    } finally {
      await sink.close();
    }
    return result;
  }

  async status(organisationId: number, id: string): Promise<StreamStatus> {
    const stream = this.owned(organisationId, id);
    const { latency_ms, latency_histogram, ...metrics } = this.host
      ? await this.host.metrics(id)
      : emptyMetrics();
    const sorted = [...latency_ms].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
    const lag = await streamLag(this.sourcesOf(stream), this.options.cursors, id);
    return {
      stream: this.masked(stream),
      metrics: { ...metrics, latency_ms: sorted.length ? { p50: at(0.5), p99: at(0.99) } : null },
      lag,
      dead_lettered_batches: this.deadLetters.list(id).length,
      latency_histogram,
    };
  }

  /** Resolves once every running lane (or the one given) has delivered everything on the log, or failed. */
  async caughtUp(id?: string): Promise<void> {
    for (const streamId of [...this.laneConfigs.keys()])
      if (id === undefined || id === streamId) await this.host?.caughtUp(streamId);
    // A lane that failed returns at once; its stream's move to Error is still being stored.
    await Promise.all(this.transitions);
  }

  // ---- internals --------------------------------------------------------------------

  private get retry(): RetryPolicy {
    return this.options.retry ?? DEFAULT_RETRY;
  }

  private owned(organisationId: number, id: string): DataStream {
    const stream = this.store.get(id);
    if (!stream || stream.organisation_id !== organisationId) throw new StreamNotFound(id);
    return stream;
  }

  private masked(stream: DataStream): DataStream {
    return maskStream(stream, this.options.sinks.get(stream.destination.connection_type));
  }

  /** Credentials sent back as they were read (masked) keep the stored secrets. */
  private unmask(current: DataStream, credentials: Record<string, unknown>): Record<string, unknown> {
    const masked = this.masked(current).destination.credentials;
    const out = { ...credentials };
    for (const [key, value] of Object.entries(out))
      if (JSON.stringify(value) === JSON.stringify(masked[key]) && key in current.destination.credentials)
        out[key] = current.destination.credentials[key];
    return out;
  }

  private sourcesOf(stream: DataStream): Topic[] {
    return sourcesOf(this.options.sources, stream);
  }

  private createSink(stream: DataStream) {
    return createSink(this.options.sinks, stream, { timeoutMs: this.timeoutMs, now: this.now });
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 30_000;
  }

  private batching(stream: DataStream): LaneBatching {
    const own = factoryOf(this.options.sinks, stream).batching?.(stream.destination.credentials) ?? {};
    return {
      maxRecords: own.maxRecords ?? stream.size,
      maxBytes: this.options.maxBytes ?? 4 * 1024 * 1024,
      lingerMs: own.lingerMs ?? this.options.lingerMs ?? DEFAULT_LINGER_MS,
    };
  }

  /** A new stream's cursors: at the end of the log, its start, or the first record of a time. */
  private async setStartCursors(stream: DataStream): Promise<void> {
    for (const topic of this.sourcesOf(stream))
      for (let p = 0; p < topic.partitions; p++) {
        const offset =
          stream.start === 'now'
            ? await topic.endOffset(p)
            : stream.start === 'earliest'
              ? await topic.startOffset(p)
              : await topic.offsetForTime(p, Date.parse(stream.start));
        await this.options.cursors.commit(cursorGroup(stream.id), topic.name, p, offset);
      }
  }

  private laneHost(): LaneHost {
    if (this.host) return this.host;
    const o = this.options;
    const settings = {
      sources: o.sources,
      cursors: o.cursors,
      retry: this.retry,
      maxInFlight: o.maxInFlight ?? 2,
      pollMs: o.pollMs ?? 200,
      timeoutMs: this.timeoutMs,
      onFailure: (id: string, failure: LaneFailure) => this.track(this.toError(id, failure)),
    };
    this.host =
      o.lanesIn === 'worker'
        ? new WorkerLanes({
            ...settings,
            deadLettersDir: join(o.dir, 'dead-letters'),
            onExit: (error) => this.track(this.lanesLost(error)),
          })
        : new InProcessLanes({ ...settings, sinks: o.sinks, deadLetters: this.deadLetters, now: this.now });
    return this.host;
  }

  private async startLane(stream: DataStream): Promise<void> {
    if (!this.delivers) return;
    // The sink must exist here too: redrive and replay send from this thread.
    const batching = this.batching(stream);
    this.laneConfigs.set(stream.id, JSON.stringify(stream));
    try {
      await this.laneHost().start(stream, batching);
    } catch (error) {
      // The sink could not open (bad credentials, missing destination): the stream is in Error.
      this.laneConfigs.delete(stream.id);
      const e = error as DataStreamerError;
      await this.setStatus(stream.id, 3, { code: e.code ?? 'STREAM_OPEN_FAILED', message: e.message });
    }
  }

  private async stopLane(id: string): Promise<void> {
    if (!this.laneConfigs.delete(id)) return;
    await this.host?.stop(id);
  }

  /** The lanes' worker thread died: every stream it delivered goes to Error, to be restarted. */
  private async lanesLost(error: Error): Promise<void> {
    const ids = [...this.laneConfigs.keys()];
    this.laneConfigs.clear();
    this.host = undefined;
    for (const id of ids)
      await this.setStatus(id, 3, {
        code: 'STREAM_LANES_EXITED',
        message: `the lanes' worker thread stopped: ${error.message}`,
      });
  }

  private track(transition: Promise<void>): void {
    const tracked = transition.finally(() => this.transitions.delete(tracked));
    this.transitions.add(tracked);
  }

  private async toError(id: string, error: { code: string; message: string }): Promise<void> {
    await this.stopLane(id);
    await this.setStatus(id, 3, error);
  }

  private async setStatus(
    id: string,
    status: StatusId,
    error?: { code: string; message: string },
  ): Promise<void> {
    // In place: a stream deleted or changed meanwhile (here or by another replica) is not brought back.
    await this.store.update(id, (stream) => {
      const next: DataStream = { ...stream, status: { id: status, description: STATUS[status] } };
      if (error) next.error = { ...error, at: new Date(this.now()).toISOString() };
      return next;
    });
  }
}
