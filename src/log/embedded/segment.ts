import { type FileHandle, open } from 'node:fs/promises';
import { basename } from 'node:path';
import { LogError, where } from '../errors.js';
import type { LogRecord } from '../types.js';
import { errnoOf, readAt } from './files.js';
import { checkEntry, decodeEntry, entryOffset, entrySize, entryTimestamp } from './format.js';
import type { PartitionContext } from './options.js';
import { scanSegment } from './scan.js';
import type { SparseIndex } from './sparse-index.js';

export const SEGMENT_NAME = /^(\d{20})\.log$/;
export const segmentFileName = (baseOffset: number) => `${String(baseOffset).padStart(20, '0')}.log`;

const READ_MIN = 64 * 1024;
const READ_MAX = 1 << 20;

/** The file of a closed segment went away under a read: retention removed it. */
export class SegmentGone extends Error {}

export function corrupt(
  ctx: Pick<PartitionContext, 'topic' | 'partition'>,
  file: string,
  position: number,
  what: string,
): LogError {
  return new LogError(
    'LOG_CORRUPT',
    `${where(ctx.topic, ctx.partition)}: segment ${file} is corrupt at byte ${position}: ${what}`,
    { topic: ctx.topic, partition: ctx.partition, file, position },
  );
}

/** Records collected by one read, within its record and byte budget and below endOffset. */
export class ReadBatch {
  readonly records: LogRecord[] = [];
  private bytes = 0;
  done = false;
  /** Where the entry after the last one taken begins: a reader going on from there needs no index. */
  next: { file: string; position: number } | undefined;

  constructor(
    readonly partition: number,
    private readonly maxRecords: number,
    private readonly maxBytes: number,
    private readonly endOffset: number,
  ) {}

  get remainingBytes(): number {
    return this.maxBytes - this.bytes;
  }

  /** Takes the entry unless the read is over; at least one record whatever its size. */
  take(buf: Buffer, at: number, size: number): boolean {
    if (
      entryOffset(buf, at) >= this.endOffset ||
      (this.records.length > 0 && this.bytes + size > this.maxBytes)
    ) {
      this.done = true;
      return false;
    }
    this.records.push(decodeEntry(buf, at, this.partition));
    this.bytes += size;
    if (this.records.length >= this.maxRecords || this.bytes >= this.maxBytes) this.done = true;
    return true;
  }
}

/**
 * Where to read a segment: from `position` (at or before the first entry wanted) up to
 * `limit`, the bytes of acknowledged entries. A reader that is not the log (the data-stream
 * worker) gets spans from the log and reads the file itself.
 */
export interface SegmentSpan {
  file: string;
  position: number;
  limit: number;
}

/** Adds the span's entries from offset `from` on to `batch`, checking each one, until the span or the budget ends. */
export async function readSpan(
  fh: FileHandle,
  span: SegmentSpan,
  from: number,
  batch: ReadBatch,
  ctx: Pick<PartitionContext, 'topic' | 'partition'>,
  /** Bytes the span may start before `from`: read on top of the budget. */
  slack: number,
): Promise<void> {
  const { file, limit } = span;
  let pos = span.position;
  let minWant = 0;
  while (pos < limit && !batch.done) {
    const budget = Math.min(batch.remainingBytes, READ_MAX) + slack;
    const want = Math.min(limit - pos, Math.max(READ_MIN, budget, minWant));
    const buf = await readAt(fh, pos, want);
    if (buf.length < want) throw corrupt(ctx, file, pos + buf.length, 'the file ends early');
    let rel = 0;
    let after = -1;
    minWant = 0;
    while (rel < buf.length && !batch.done) {
      const size = checkEntry(buf, rel, buf.length);
      if (size === 'incomplete entry' && pos + buf.length < limit) {
        // The entry runs past this chunk: read again from it, whole if it is a big one.
        if (rel === 0) minWant = entrySize(buf, 0);
        break;
      }
      if (typeof size === 'string') throw corrupt(ctx, file, pos + rel, size);
      if (entryOffset(buf, rel) >= from && batch.take(buf, rel, size)) after = rel + size;
      rel += size;
    }
    if (after >= 0) batch.next = { file, position: pos + after };
    pos += rel;
  }
}

/**
 * Segments with an open read handle, least recently read first. A log holds many segments
 * (days of them, per partition and topic): past this many handles the least recently read
 * idle ones are closed, so a process never runs out of file descriptors.
 */
const MAX_OPEN_READERS = 64;
const openReaders = new Set<Segment>();

function recentlyRead(segment: Segment): void {
  openReaders.delete(segment);
  openReaders.add(segment);
  if (openReaders.size <= MAX_OPEN_READERS) return;
  for (const idle of openReaders) {
    if (openReaders.size <= MAX_OPEN_READERS) return;
    if (idle !== segment) idle.closeIdleReader();
  }
}

/**
 * One segment file: the entries from baseOffset on. The active segment is indexed as it is
 * written; a closed one found on open is indexed (and checked) on first use, so that
 * opening a big log does not read all of it.
 */
export class Segment {
  private loading: Promise<SparseIndex> | undefined;
  /**
   * One read handle shared by the reads of this segment (positional reads need no handle
   * of their own): opening and closing the file for each read cost more than reading a
   * chunk of records. Closed when the segment is retired and no read is using it.
   */
  private reader: Promise<FileHandle> | undefined;
  private readers = 0;
  private retired = false;

  constructor(
    readonly file: string,
    readonly baseOffset: number,
    /** Offset after the last acknowledged entry. */
    public nextOffset: number,
    /** Bytes of acknowledged entries; anything after them is not read. */
    public size: number,
    private readonly ctx: PartitionContext,
    private index?: SparseIndex,
  ) {}

  get name(): string {
    return basename(this.file);
  }

  /** The index, present for segments written or recovered since open. */
  get loadedIndex(): SparseIndex | undefined {
    return this.index;
  }

  indexed(): Promise<SparseIndex> {
    if (this.index) return Promise.resolve(this.index);
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<SparseIndex> {
    const fh = await this.openForRead();
    try {
      const scan = await scanSegment(fh, this.size, this.baseOffset, this.ctx.indexIntervalBytes);
      // A closed segment was fsynced whole before the next one began: any flaw is corruption.
      if (scan.problem) throw corrupt(this.ctx, this.file, scan.problem.position, scan.problem.reason);
      if (scan.nextOffset !== this.nextOffset)
        throw corrupt(
          this.ctx,
          this.file,
          scan.end,
          `it ends at offset ${scan.nextOffset} but the next segment starts at ${this.nextOffset}`,
        );
      this.index = scan.index;
      return scan.index;
    } finally {
      await fh.close();
    }
  }

  /** The shared read handle; SegmentGone once the segment is retired. */
  private async acquire(): Promise<FileHandle> {
    if (this.retired) throw new SegmentGone(this.file);
    this.readers++;
    recentlyRead(this);
    try {
      this.reader ??= this.openForRead();
      return await this.reader;
    } catch (error) {
      this.reader = undefined;
      this.release();
      throw error;
    }
  }

  private release(): void {
    this.readers--;
    if (this.retired && this.readers === 0) this.closeReader();
  }

  private closeReader(): void {
    const reader = this.reader;
    this.reader = undefined;
    openReaders.delete(this);
    void reader?.then((fh) => fh.close()).catch(() => undefined);
  }

  /** Closes the read handle if no read is using it (it is opened again when needed). */
  closeIdleReader(): boolean {
    if (this.readers > 0) return false;
    this.closeReader();
    return true;
  }

  /**
   * No more reads (retention removed the segment, or the log closes): the read handle is
   * closed once the reads under way are done (they may finish on an unlinked file).
   */
  retire(): void {
    this.retired = true;
    if (this.readers === 0) this.closeReader();
  }

  private async openForRead(): Promise<FileHandle> {
    try {
      return await open(this.file, 'r');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') throw new SegmentGone(this.file);
      throw new LogError(
        'LOG_IO',
        `${where(this.ctx.topic, this.ctx.partition)}: cannot open ${this.file}`,
        { topic: this.ctx.topic, partition: this.ctx.partition, file: this.file },
        'retriable',
        { cause: error },
      );
    }
  }

  /** Adds entries from offset `from` on to `batch` until this segment or the budget ends. */
  async read(from: number, batch: ReadBatch): Promise<void> {
    const index = await this.indexed();
    const span = { file: this.file, position: index.floor(from), limit: this.size };
    const fh = await this.acquire();
    try {
      await readSpan(fh, span, from, batch, this.ctx, this.ctx.indexIntervalBytes);
    } finally {
      this.release();
    }
  }

  /** First acknowledged offset here with timestamp >= t. */
  async findTime(t: number): Promise<number | undefined> {
    const index = await this.indexed();
    if (index.maxTimestamp < t) return undefined;
    const limit = this.size;
    const fh = await this.openForRead();
    try {
      for (let b = 0; b < index.blocks; b++) {
        if (index.blockMaxTimestamp(b) < t) continue;
        const start = index.blockPosition(b);
        if (start >= limit) break;
        const stop = b + 1 < index.blocks ? Math.min(index.blockPosition(b + 1), limit) : limit;
        const buf = await readAt(fh, start, stop - start);
        for (let rel = 0; rel < buf.length; ) {
          const size = checkEntry(buf, rel, buf.length);
          if (typeof size === 'string') throw corrupt(this.ctx, this.file, start + rel, size);
          if (entryTimestamp(buf, rel) >= t) return entryOffset(buf, rel);
          rel += size;
        }
      }
      return undefined;
    } finally {
      await fh.close();
    }
  }
}
