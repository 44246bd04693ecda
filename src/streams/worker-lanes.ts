/**
 * Lanes in a worker thread of their own (lane-worker.ts), beside an embedded engine. The
 * worker reads the output log's segment files itself and sends from its own heap: the
 * lanes' buffers (three bytes allocated per byte delivered) no longer set off full
 * collections of the engine's heap, and delivery runs on the second core while the
 * engine's thread folds. This thread answers the worker's few questions: where a read
 * should look, offsets, cursors; and tells it of every append.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EmbeddedTopic } from '../log/embedded/topic.js';
import type { CursorStore } from '../log/types.js';
import { DataStreamerError } from '../util/errors.js';
import { type Handlers, PortRpc } from '../util/port-rpc.js';
import type { DataStream } from './config.js';
import type { LaneBatching, LaneMetrics } from './lane.js';
import type { LaneFailure, LaneHost, LaneSettings, StreamSources } from './lanes.js';

/** What the worker is started with. */
export interface LaneWorkerData {
  usage: { name: string; partitions: number }[];
  events: { name: string; partitions: number }[];
  deadLettersDir: string;
  settings: LaneSettings;
}

export interface WorkerLanesOptions extends LaneSettings {
  sources: StreamSources;
  cursors: CursorStore;
  deadLettersDir: string;
  onFailure: (id: string, failure: LaneFailure) => void;
  /** The worker stopped on its own (a crash): its lanes are gone. */
  onExit: (error: Error) => void;
}

/**
 * The worker runs compiled JavaScript: next to this module in dist/, and, when this module
 * is TypeScript run by vitest, the build in dist/ (npm test builds first).
 */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const script = here.endsWith('.ts')
    ? fileURLToPath(new URL('../../dist/src/streams/lane-worker.js', import.meta.url))
    : fileURLToPath(new URL('./lane-worker.js', import.meta.url));
  if (!existsSync(script))
    throw new DataStreamerError(
      'STREAM_LANES_WORKER_MISSING',
      `the lanes' worker script ${script} is missing: run "npm run build"`,
    );
  return script;
}

type At = { topic: string; partition: number };

/** What the worker may ask of the engine's log: where to read, offsets, cursors (see port-log.ts). */
export function logHandlers(topics: ReadonlyMap<string, EmbeddedTopic>, cursors: CursorStore): Handlers {
  const topicOf = (name: string) => {
    const topic = topics.get(name);
    if (!topic) throw new DataStreamerError('STREAM_UNKNOWN_TOPIC', `the lanes read no topic ${name}`);
    return topic;
  };
  return {
    locate: ({ topic, partition, from, maxBytes }: At & { from: number; maxBytes?: number }) =>
      topicOf(topic).locate(partition, from, maxBytes),
    startOffset: ({ topic, partition }: At) => topicOf(topic).startOffset(partition),
    endOffset: ({ topic, partition }: At) => topicOf(topic).endOffset(partition),
    offsetForTime: ({ topic, partition, timestamp }: At & { timestamp: number }) =>
      topicOf(topic).offsetForTime(partition, timestamp),
    cursorGet: ({ group, topic, partition }: At & { group: string }) => cursors.get(group, topic, partition),
    cursorCommit: ({ group, topic, partition, offset }: At & { group: string; offset: number }) =>
      cursors.commit(group, topic, partition, offset),
  };
}

export class WorkerLanes implements LaneHost {
  private readonly worker: Worker;
  private readonly rpc: PortRpc;
  private readonly forwarding = new AbortController();
  private ended = false;

  constructor(options: WorkerLanesOptions) {
    const topics = new Map<string, EmbeddedTopic>();
    for (const topic of [...options.sources.usage, ...options.sources.events]) {
      if (!(topic instanceof EmbeddedTopic))
        throw new DataStreamerError(
          'STREAM_LANES_WORKER_UNSUPPORTED',
          `topic ${topic.name} is not on the embedded log: lanes in a worker read embedded logs only`,
        );
      topics.set(topic.name, topic);
    }
    const shape = (t: { name: string; partitions: number }) => ({ name: t.name, partitions: t.partitions });
    const workerData: LaneWorkerData = {
      usage: options.sources.usage.map(shape),
      events: options.sources.events.map(shape),
      deadLettersDir: options.deadLettersDir,
      settings: {
        retry: options.retry,
        maxInFlight: options.maxInFlight,
        pollMs: options.pollMs,
        timeoutMs: options.timeoutMs,
      },
    };
    this.worker = new Worker(workerScript(), { workerData });
    this.rpc = new PortRpc(this.worker, logHandlers(topics, options.cursors), {
      failed: ({ id, failure }: { id: string; failure: LaneFailure }) => options.onFailure(id, failure),
    });
    const lost = (error: Error) => {
      if (this.ended) return;
      this.ended = true;
      this.forwarding.abort();
      this.rpc.failAll(
        new DataStreamerError(
          'STREAM_LANES_EXITED',
          `the lanes' worker thread stopped: ${error.message}`,
          'retriable',
        ),
      );
      options.onExit(error);
    };
    this.worker.on('error', lost);
    this.worker.on('exit', (code) => lost(new Error(`it exited with code ${code}`)));
    for (const topic of topics.values()) void this.forwardAppends(topic);
  }

  start(stream: DataStream, batching: LaneBatching): Promise<void> {
    return this.rpc.call('start', { stream, batching });
  }

  stop(id: string): Promise<void> {
    return this.rpc.call('stop', id);
  }

  caughtUp(id: string): Promise<void> {
    return this.rpc.call('caughtUp', id);
  }

  metrics(id: string): Promise<LaneMetrics> {
    return this.rpc.call('metrics', id);
  }

  forget(id: string): Promise<void> {
    return this.rpc.call('forget', id);
  }

  async close(): Promise<void> {
    if (this.ended) return;
    try {
      await this.rpc.call('close');
    } finally {
      this.ended = true;
      this.forwarding.abort();
      await this.worker.terminate();
    }
  }

  /** Lanes at the end of the log wait for appends, not for a poll. */
  private async forwardAppends(topic: EmbeddedTopic): Promise<void> {
    const signal = this.forwarding.signal;
    let next = topic.appended(signal);
    while (!signal.aborted) {
      await next;
      // Waiting again before telling: an append that completes meanwhile wakes the next wait.
      next = topic.appended(signal);
      if (!signal.aborted) this.rpc.notify('appended', { topic: topic.name, tails: topic.tails() });
    }
  }
}
