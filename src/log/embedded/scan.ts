import type { FileHandle } from 'node:fs/promises';
import { readAt } from './files.js';
import {
  checkEntry,
  entryEndsBatch,
  entryOffset,
  entrySize,
  entryTimestamp,
  MAX_ENTRY_BYTES,
  PROBE_BYTES,
  plausibleEntry,
} from './format.js';
import { SparseIndex } from './sparse-index.js';

const CHUNK = 1 << 20;

export interface ScanProblem {
  /** First byte that is not part of a valid entry (the file size when it ends inside a batch). */
  position: number;
  /**
   * bad entry: the bytes at `position` fail the checks; out of sequence: a valid entry with
   * the wrong offset; unfinished batch: valid entries, but the file ends inside their batch.
   */
  kind: 'bad entry' | 'out of sequence' | 'unfinished batch';
  reason: string;
  /** Offset the entry at `position` should have had. */
  expectedOffset: number;
}

export interface ScanResult {
  /** Index of the whole batches. */
  index: SparseIndex;
  /** Byte position after the last whole batch. */
  end: number;
  /** Offset after the last whole batch. */
  nextOffset: number;
  /** Valid entries after `end` (of a batch that was never finished). */
  entriesAfterEnd: number;
  problem?: ScanProblem;
}

/**
 * Reads a segment from the start in 1 MiB chunks, checks every entry (length, CRC, header,
 * offsets contiguous from baseOffset) and indexes the whole batches. Stops at the first
 * problem; the caller decides whether it is a torn tail or corruption.
 */
export async function scanSegment(
  fh: FileHandle,
  fileSize: number,
  baseOffset: number,
  intervalBytes: number,
): Promise<ScanResult> {
  const index = new SparseIndex(intervalBytes);
  // Entries of the current batch are indexed once the batch is known to be whole.
  const pending: number[] = [];
  let buf: Buffer = Buffer.alloc(0);
  let bufStart = 0;
  let pos = 0;
  let offset = baseOffset;
  let end = 0;
  let nextOffset = baseOffset;
  let problem: ScanProblem | undefined;
  while (pos < fileSize) {
    let rel = pos - bufStart;
    const available = buf.length - rel;
    const declared = available >= 4 ? entrySize(buf, rel) : 4;
    const need = declared <= MAX_ENTRY_BYTES ? declared : 4;
    if (available < need && bufStart + buf.length < fileSize) {
      buf = await readAt(fh, pos, Math.min(Math.max(CHUNK, need), fileSize - pos));
      bufStart = pos;
      rel = 0;
    }
    const size = checkEntry(buf, rel, buf.length);
    if (typeof size === 'string') {
      problem = { position: pos, kind: 'bad entry', reason: size, expectedOffset: offset };
      break;
    }
    const found = entryOffset(buf, rel);
    if (found !== offset) {
      problem = {
        position: pos,
        kind: 'out of sequence',
        reason: `offset ${found} where ${offset} was expected`,
        expectedOffset: offset,
      };
      break;
    }
    pending.push(offset, pos, entryTimestamp(buf, rel));
    pos += size;
    offset++;
    if (entryEndsBatch(buf, rel)) {
      for (let i = 0; i < pending.length; i += 3)
        index.add(pending[i] as number, pending[i + 1] as number, pending[i + 2] as number);
      pending.length = 0;
      end = pos;
      nextOffset = offset;
    }
  }
  if (!problem && pending.length > 0)
    problem = {
      position: pos,
      kind: 'unfinished batch',
      reason: 'the file ends inside a batch',
      expectedOffset: offset,
    };
  return { index, end, nextOffset, entriesAfterEnd: offset - nextOffset, ...(problem ? { problem } : {}) };
}

/**
 * First valid entry at or after `from` with an offset >= minOffset, by trying every byte
 * position: a torn write leaves nothing valid behind it, corruption usually does.
 */
export async function findValidEntry(
  fh: FileHandle,
  from: number,
  fileSize: number,
  minOffset: number,
): Promise<{ position: number; offset: number } | undefined> {
  for (let window = from; window < fileSize; window += CHUNK) {
    // Overlap by a header so that every candidate in the window can be probed.
    const buf = await readAt(fh, window, Math.min(CHUNK + PROBE_BYTES, fileSize - window));
    const last = Math.min(CHUNK, buf.length);
    for (let i = 0; i < last; i++) {
      if (!plausibleEntry(buf, i, buf.length, minOffset)) continue;
      const size = entrySize(buf, i);
      if (window + i + size > fileSize) continue;
      const entry = i + size <= buf.length ? buf.subarray(i) : await readAt(fh, window + i, size);
      if (typeof checkEntry(entry, 0, size) === 'number')
        return { position: window + i, offset: entryOffset(entry, 0) };
    }
  }
  return undefined;
}
