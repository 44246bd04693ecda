import type { PartitionContext } from './options.js';
import type { Segment } from './segment.js';

/**
 * How many of the oldest segments retention removes: each closed segment in turn, while the
 * partition stays at or above retentionBytes without it (Kafka's rule), or its newest record
 * is older than retentionMs by the clock. It stops at the first segment kept, so the log
 * stays contiguous, and never takes the active (last) segment.
 */
export async function expiredSegments(
  segments: readonly Segment[],
  ctx: Pick<PartitionContext, 'retentionMs' | 'retentionBytes' | 'now'>,
): Promise<number> {
  const cutoff = ctx.now() - ctx.retentionMs;
  let total = segments.reduce((sum, s) => sum + s.size, 0);
  let drop = 0;
  for (const segment of segments.slice(0, -1)) {
    const bySize = total - segment.size >= ctx.retentionBytes;
    // Time needs the segment's newest timestamp: a closed segment not read yet is scanned once.
    const byTime = !bySize && Number.isFinite(cutoff) && (await segment.indexed()).maxTimestamp < cutoff;
    if (!bySize && !byTime) break;
    total -= segment.size;
    drop++;
  }
  return drop;
}
