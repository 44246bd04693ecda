import { stat } from 'node:fs/promises';
import type { PartitionContext, RetentionClock } from './options.js';
import type { Segment } from './segment.js';

/**
 * How many of the oldest segments retention removes: each closed segment in turn, while the
 * partition stays at or above retentionBytes without it (Kafka's rule), or its newest record
 * is older than retentionMs by the clock. It stops at the first segment kept, so the log
 * stays contiguous, and never takes the active (last) segment, nor one holding records at or
 * above the partition's retention floor (a reader still needs them).
 */
export async function expiredSegments(
  segments: readonly Segment[],
  ctx: Pick<
    PartitionContext,
    'retentionMs' | 'retentionBytes' | 'retentionClock' | 'retentionFloor' | 'partition' | 'now'
  >,
): Promise<number> {
  const cutoff = ctx.now() - ctx.retentionMs;
  let total = segments.reduce((sum, s) => sum + s.size, 0);
  const floor = ctx.retentionFloor ? await ctx.retentionFloor(ctx.partition) : Number.POSITIVE_INFINITY;
  let drop = 0;
  for (const segment of segments.slice(0, -1)) {
    if (segment.nextOffset > floor) break;
    const bySize = total - segment.size >= ctx.retentionBytes;
    const byTime =
      !bySize && Number.isFinite(cutoff) && (await newestTime(segment, ctx.retentionClock)) < cutoff;
    if (!bySize && !byTime) break;
    total -= segment.size;
    drop++;
  }
  return drop;
}

/** The time retention measures a closed segment by (see EmbeddedLogOptions.retentionClock). */
async function newestTime(segment: Segment, clock: RetentionClock): Promise<number> {
  // The newest record's timestamp needs the index: a closed segment not read yet is scanned once.
  if (clock === 'record') return (await segment.indexed()).maxTimestamp;
  return (await stat(segment.file)).mtimeMs;
}
