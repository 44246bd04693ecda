/**
 * Data streams running beside an embedded engine (npm start, replay): their lanes follow
 * the engine's output log while it works, and at the end get a while to catch up.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EmbeddedEngine } from '../engine/engine.js';
import { EmbeddedTopic } from '../log/embedded/topic.js';
import { StreamManager } from './manager.js';
import { SINKS } from './sinks.js';

/**
 * Streams of an engine's data directory live in DIR/streams. Their lanes run in a worker
 * thread when the engine's output is on the embedded log (see worker-lanes.ts).
 */
export function streamsOf(
  engine: EmbeddedEngine,
  dataDir: string,
  options: { lanes?: boolean } = {},
): StreamManager {
  const sources = engine.streamSources();
  const embedded = [...sources.usage, ...sources.events].every((t) => t instanceof EmbeddedTopic);
  return new StreamManager({
    dir: join(dataDir, 'streams'),
    sources,
    cursors: engine.log.cursors,
    sinks: SINKS,
    lanesIn: embedded ? 'worker' : 'process',
    ...options,
  });
}

const count = (n: number) => n.toLocaleString('en-US');

/** Waits up to `waitMs` for every running stream to deliver what the log holds; one line per stream. */
export async function settleStreams(manager: StreamManager, waitMs: number): Promise<string[]> {
  // The timer is cancelled once the streams caught up, so it never holds the process open.
  const timer = new AbortController();
  await Promise.race([
    manager.caughtUp(),
    sleep(waitMs, undefined, { signal: timer.signal }).catch(() => undefined),
  ]);
  timer.abort();
  const lines: string[] = [];
  for (const stream of manager.all()) {
    const s = await manager.status(stream.organisation_id, stream.id);
    const error = s.stream.error ? ` (${s.stream.error.code})` : '';
    lines.push(
      `  stream ${stream.id} "${stream.name}" (organisation ${stream.organisation_id}, ${stream.destination.connection_type}): ${s.stream.status.description}${error}, ${count(s.metrics.delivered_records)} records delivered, ${count(s.lag.records)} behind, ${count(s.dead_lettered_batches)} batches dead-lettered`,
    );
  }
  return lines;
}
