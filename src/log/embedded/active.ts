import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from './files.js';
import type { PartitionContext } from './options.js';
import { findValidEntry, scanSegment } from './scan.js';
import { corrupt, Segment, segmentFileName } from './segment.js';
import { SparseIndex } from './sparse-index.js';

/** The active segment and its write handle; `closing` once the handle is being closed. */
export interface Writer {
  segment: Segment;
  handle: FileHandle;
  closing: boolean;
}

/** Starts a new, empty active segment; its name is durable before it is used. */
export async function createSegment(ctx: PartitionContext, baseOffset: number): Promise<Writer> {
  const file = join(ctx.dir, segmentFileName(baseOffset));
  const handle = await open(file, 'wx+');
  await fsyncDir(ctx.dir);
  const segment = new Segment(file, baseOffset, baseOffset, 0, ctx, new SparseIndex(ctx.indexIntervalBytes));
  return { segment, handle, closing: false };
}

/**
 * Opens the last segment for appending. A torn tail (a write cut short by a crash) is cut
 * back to the last whole batch and reported; bad bytes followed by a valid entry are not a
 * torn tail but corruption, and are refused.
 */
export async function openActive(ctx: PartitionContext, baseOffset: number): Promise<Writer> {
  const file = join(ctx.dir, segmentFileName(baseOffset));
  const handle = await open(file, 'r+');
  try {
    const fileSize = (await handle.stat()).size;
    const scan = await scanSegment(handle, fileSize, baseOffset, ctx.indexIntervalBytes);
    const problem = scan.problem;
    if (problem) {
      if (problem.kind === 'out of sequence') throw corrupt(ctx, file, problem.position, problem.reason);
      if (problem.kind === 'bad entry') {
        const next = await findValidEntry(handle, problem.position + 1, fileSize, problem.expectedOffset);
        if (next)
          throw corrupt(
            ctx,
            file,
            problem.position,
            `${problem.reason}, followed by a valid entry at byte ${next.position} (offset ${next.offset}), so not a torn tail`,
          );
      }
      await handle.truncate(scan.end);
      await handle.sync();
      ctx.report({
        topic: ctx.topic,
        partition: ctx.partition,
        file,
        position: scan.end,
        bytesDropped: fileSize - scan.end,
        recordsDropped: scan.entriesAfterEnd,
        reason: `${problem.reason} at byte ${problem.position}`,
      });
    }
    const segment = new Segment(file, baseOffset, scan.nextOffset, scan.end, ctx, scan.index);
    return { segment, handle, closing: false };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
