/**
 * Where the lanes of running streams live. The stream manager decides which streams run;
 * a LaneHost runs their lanes: in the manager's thread (InProcessLanes), or in a worker
 * thread of their own (WorkerLanes, worker-lanes.ts) that runs an InProcessLanes there.
 */
import type { Sink, SinkFactory } from '../../connectors/sinks/types.js';
import type { CursorStore, Topic } from '../log/types.js';
import { DataStreamerError } from '../util/errors.js';
import type { DataStream } from './config.js';
import type { BatchDeadLetters } from './dead-letters.js';
import type { RetryPolicy } from './delivery.js';
import { emptyMetrics, Lane, type LaneBatching, type LaneMetrics } from './lane.js';
import { SharedReads } from './shared-reads.js';

export interface StreamSources {
  usage: Topic[];
  events: Topic[];
}

/** Why a lane gave up: its stream is to go to Error with this. */
export interface LaneFailure {
  code: string;
  message: string;
}

export interface LaneHost {
  /** Starts the stream's lane from its committed cursor; rejects when its sink cannot open. */
  start(stream: DataStream, batching: LaneBatching): Promise<void>;
  /** Stops the lane; what it had in flight is sent again by the next start. */
  stop(id: string): Promise<void>;
  /** Resolves once the lane has delivered everything on the log, or failed, or is not running. */
  caughtUp(id: string): Promise<void>;
  /** The lane's metrics since the host started (they outlive restarts of the lane). */
  metrics(id: string): Promise<LaneMetrics>;
  /** The stream is gone: its metrics go too. */
  forget(id: string): Promise<void>;
  close(): Promise<void>;
}

/** How every lane delivers, wherever it runs (plain data: a worker gets it as it is). */
export interface LaneSettings {
  retry: RetryPolicy;
  maxInFlight: number;
  pollMs: number;
  timeoutMs: number;
}

export interface LaneHostOptions extends LaneSettings {
  sources: StreamSources;
  cursors: CursorStore;
  sinks: ReadonlyMap<string, SinkFactory>;
  deadLetters: BatchDeadLetters;
  now: () => number;
  onFailure: (id: string, failure: LaneFailure) => void;
}

export const sourcesOf = (sources: StreamSources, stream: DataStream): Topic[] =>
  stream.data_stream_type.id === 1 ? sources.usage : sources.events;

export function factoryOf(sinks: ReadonlyMap<string, SinkFactory>, stream: DataStream): SinkFactory {
  const factory = sinks.get(stream.destination.connection_type);
  if (!factory)
    throw new DataStreamerError(
      'STREAM_SINK_UNAVAILABLE',
      `data stream ${stream.id}: connection type ${stream.destination.connection_type} is not available here`,
    );
  return factory;
}

export function createSink(
  sinks: ReadonlyMap<string, SinkFactory>,
  stream: DataStream,
  context: { timeoutMs: number; now: () => number },
): Sink {
  return factoryOf(sinks, stream).create(
    { credentials: stream.destination.credentials, format: stream.destination.format },
    { organisationId: stream.organisation_id, ...context },
  );
}

/** Lanes in this thread, sharing their reads of the log. */
export class InProcessLanes implements LaneHost {
  private readonly lanes = new Map<string, Lane>();
  private readonly reads = new SharedReads();
  private readonly laneMetrics = new Map<string, LaneMetrics>();

  constructor(private readonly options: LaneHostOptions) {}

  async start(stream: DataStream, batching: LaneBatching): Promise<void> {
    const o = this.options;
    const lane = new Lane({
      stream,
      sink: createSink(o.sinks, stream, { timeoutMs: o.timeoutMs, now: o.now }),
      sources: sourcesOf(o.sources, stream),
      reads: this.reads,
      cursors: o.cursors,
      deadLetters: o.deadLetters,
      batching,
      retry: o.retry,
      maxInFlight: o.maxInFlight,
      pollMs: o.pollMs,
      now: o.now,
      metrics: this.metricsOf(stream.id),
      onFailure: (failure) => o.onFailure(stream.id, failure),
    });
    this.lanes.set(stream.id, lane);
    try {
      await lane.start();
    } catch (error) {
      this.lanes.delete(stream.id);
      await lane.stop().catch(() => undefined);
      throw error;
    }
  }

  async stop(id: string): Promise<void> {
    const lane = this.lanes.get(id);
    this.lanes.delete(id);
    await lane?.stop();
  }

  async caughtUp(id: string): Promise<void> {
    await this.lanes.get(id)?.caughtUp();
  }

  async metrics(id: string): Promise<LaneMetrics> {
    return this.laneMetrics.get(id) ?? emptyMetrics();
  }

  async forget(id: string): Promise<void> {
    this.laneMetrics.delete(id);
  }

  async close(): Promise<void> {
    for (const lane of this.lanes.values()) await lane.stop();
    this.lanes.clear();
  }

  private metricsOf(id: string): LaneMetrics {
    let metrics = this.laneMetrics.get(id);
    if (!metrics) {
      metrics = emptyMetrics();
      this.laneMetrics.set(id, metrics);
    }
    return metrics;
  }
}
