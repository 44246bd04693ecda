import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LogError, where } from '../errors.js';
import type { AppendRecord, AppendResult, LogRecord } from '../types.js';
import { createSegment, openActive, type Writer } from './active.js';
import { errnoOf, mkdirDurable, writeAt } from './files.js';
import { encodeBatch } from './format.js';
import type { PartitionContext } from './options.js';
import { expiredSegments } from './retention.js';
import {
  ReadBatch,
  SEGMENT_NAME,
  Segment,
  SegmentGone,
  type SegmentSpan,
  segmentFileName,
} from './segment.js';
import { SerialQueue } from './serial.js';
import type { SparseIndex } from './sparse-index.js';

/** The end of a partition: its offset, and the active segment's file and acknowledged bytes. */
export interface Tail {
  end: number;
  file: string;
  size: number;
}

/** Where a read would look: see Partition.locate. */
export interface Located {
  end: number;
  spans: SegmentSpan[];
  slack: number;
  /** The read's byte budget. */
  maxBytes: number;
}

/**
 * One partition: its segments, oldest first, the last one active. Appends, rolls and
 * retention run one at a time (SerialQueue); reads run alongside them on their own file
 * handles and see acknowledged records only.
 */
export class Partition {
  private readonly queue = new SerialQueue();
  private failed: LogError | undefined;
  private dirty = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly ctx: PartitionContext,
    private segments: readonly Segment[],
    private writer: Writer,
    /** Offset after the last acknowledged record. */
    private end: number,
  ) {}

  /** `existing`: the topic existed before, so the partition must have its segments. */
  static async open(ctx: PartitionContext, existing: boolean): Promise<Partition> {
    await mkdirDurable(ctx.dir);
    const bases = (await readdir(ctx.dir))
      .flatMap((name) => SEGMENT_NAME.exec(name)?.[1] ?? [])
      .map(Number)
      .sort((a, b) => a - b);
    if (existing && bases.length === 0)
      throw new LogError('LOG_CORRUPT', `${where(ctx.topic, ctx.partition)}: ${ctx.dir} holds no segment`, {
        topic: ctx.topic,
        partition: ctx.partition,
      });
    const closed: Segment[] = [];
    for (let i = 0; i + 1 < bases.length; i++) {
      const file = join(ctx.dir, segmentFileName(bases[i] as number));
      closed.push(
        new Segment(file, bases[i] as number, bases[i + 1] as number, (await stat(file)).size, ctx),
      );
    }
    const last = bases.at(-1);
    const writer = last === undefined ? await createSegment(ctx, 0) : await openActive(ctx, last);
    return new Partition(ctx, [...closed, writer.segment], writer, writer.segment.nextOffset);
  }

  private get where(): string {
    return where(this.ctx.topic, this.ctx.partition);
  }

  get startOffset(): number {
    return (this.segments[0] as Segment).baseOffset;
  }

  get endOffset(): number {
    return this.end;
  }

  /** The acknowledged end, in the active segment's file: what was appended last. */
  get tail(): Tail {
    const segment = this.writer.segment;
    return { end: this.end, file: segment.file, size: segment.size };
  }

  append(records: readonly AppendRecord[]): Promise<AppendResult> {
    this.checkOpen();
    return this.queue.run(async () => {
      if (this.failed) throw this.failed;
      const base = this.end;
      if (records.length === 0) return { baseOffset: base, nextOffset: base };
      const { buffer, positions } = encodeBatch(records, base, this.where);
      const active = this.writer.segment;
      if (active.size > 0 && active.size + buffer.length > this.ctx.segmentBytes) {
        await this.roll();
        await this.removeExpired().catch((error: Error) => this.ctx.onError(error));
      }
      const { segment, handle } = this.writer;
      const at = segment.size;
      try {
        await writeAt(handle, buffer, at);
      } catch (error) {
        // Cut off what part of the batch got written, so that the next append starts clean.
        await handle.truncate(at).catch((e: unknown) => this.fail('truncate after a failed write', e));
        throw new LogError(
          'LOG_IO',
          `${this.where}: write to ${segment.file} failed`,
          this.details(segment.file),
          'retriable',
          { cause: error },
        );
      }
      const index = segment.loadedIndex as SparseIndex;
      records.forEach((r, i) => {
        index.add(base + i, at + (positions[i] as number), r.timestamp);
      });
      if (this.ctx.fsync === 'always') {
        try {
          await handle.sync();
        } catch (error) {
          throw this.fail('fsync', error);
        }
      } else this.dirty = true;
      // Visible to readers from here on, never before it is durable under the policy.
      segment.size = at + buffer.length;
      segment.nextOffset = base + records.length;
      this.end = segment.nextOffset;
      return { baseOffset: base, nextOffset: this.end };
    });
  }

  async read(from: number, maxRecords: number, maxBytes: number): Promise<LogRecord[]> {
    this.checkOpen();
    const end = this.end;
    const segments = this.segments;
    this.checkRange(from, end);
    if (from === end) return [];
    const batch = new ReadBatch(this.ctx.partition, maxRecords, maxBytes, end);
    try {
      for (let i = segmentOf(segments, from); i < segments.length && !batch.done; i++) {
        const segment = segments[i] as Segment;
        await segment.read(Math.max(from, segment.baseOffset), batch);
      }
    } catch (error) {
      if (!(error instanceof SegmentGone)) throw error;
      // Retention removed the segment under us: what was read so far is still contiguous.
      if (batch.records.length === 0) this.checkRange(from, this.end);
    }
    return batch.records;
  }

  /**
   * Where a read of up to `maxBytes` from `from` would look, for a reader with file handles
   * of its own: the acknowledged end, and the spans of the segments holding those bytes.
   * `slack`: how far before `from` the first span may start (the index is sparse).
   */
  async locate(from: number, maxBytes: number): Promise<Located> {
    this.checkOpen();
    const end = this.end;
    const segments = this.segments;
    this.checkRange(from, end);
    const slack = this.ctx.indexIntervalBytes;
    const spans: SegmentSpan[] = [];
    let bytes = 0;
    for (let i = from === end ? segments.length : segmentOf(segments, from); i < segments.length; i++) {
      const segment = segments[i] as Segment;
      const position = spans.length === 0 ? (await segment.indexed()).floor(from) : 0;
      spans.push({ file: segment.file, position, limit: segment.size });
      bytes += segment.size - position;
      if (bytes >= maxBytes + slack) break;
    }
    return { end, spans, slack, maxBytes };
  }

  async offsetForTime(timestamp: number): Promise<number> {
    this.checkOpen();
    const end = this.end;
    for (const segment of this.segments) {
      try {
        const found = await segment.findTime(timestamp);
        if (found !== undefined) return found;
      } catch (error) {
        if (!(error instanceof SegmentGone)) throw error;
      }
    }
    return end;
  }

  /** Removes closed segments past retention; resolves to how many. */
  enforceRetention(): Promise<number> {
    this.checkOpen();
    return this.queue.run(() => this.removeExpired());
  }

  /** Timed fsync under 'interval'; a failure stops appends to the partition. */
  syncIfDirty(): void {
    const writer = this.writer;
    if (!this.dirty || this.failed || writer.closing) return;
    this.dirty = false;
    writer.handle.sync().catch((error: unknown) => {
      if (!writer.closing) this.ctx.onError(this.fail('timed fsync', error));
    });
  }

  close(): Promise<void> {
    this.closing ??= this.queue.run(async () => {
      const writer = this.writer;
      writer.closing = true;
      try {
        // Every policy fsyncs on a clean close.
        if (!this.failed) await writer.handle.sync();
      } finally {
        await writer.handle.close();
        for (const segment of this.segments) segment.retire();
      }
    });
    return this.closing;
  }

  private async roll(): Promise<void> {
    const old = this.writer;
    try {
      // Closed segments are always whole on disk, whatever the policy: recovery and the
      // checks of closed segments rely on it. One fsync per segment costs nothing.
      old.closing = true;
      await old.handle.sync();
      await old.handle.close();
      this.writer = await createSegment(this.ctx, this.end);
    } catch (error) {
      throw this.fail('segment roll', error);
    }
    this.segments = [...this.segments, this.writer.segment];
    this.dirty = false;
  }

  private async removeExpired(): Promise<number> {
    const segments = this.segments;
    const drop = await expiredSegments(segments, this.ctx);
    if (drop === 0) return 0;
    // Readers stop finding the segments before their files go.
    this.segments = segments.slice(drop);
    for (const segment of segments.slice(0, drop)) {
      segment.retire();
      await unlink(segment.file).catch((error: unknown) => {
        if (errnoOf(error) !== 'ENOENT')
          throw new LogError(
            'LOG_IO',
            `${this.where}: cannot remove ${segment.file}`,
            this.details(segment.file),
            'retriable',
            { cause: error },
          );
      });
    }
    return drop;
  }

  private checkOpen(): void {
    if (this.closing) throw new LogError('LOG_CLOSED', `${this.where}: closed`, this.details());
  }

  private checkRange(offset: number, end: number): void {
    const start = this.startOffset;
    if (offset < start || offset > end)
      throw new LogError(
        'LOG_OFFSET_OUT_OF_RANGE',
        `${this.where}: offset ${offset} is out of range; the partition holds ${start} to ${end}`,
        { ...this.details(), offset },
      );
  }

  /** After a failed fsync the OS may have dropped the dirty pages: nothing more is trusted. */
  private fail(what: string, error: unknown): LogError {
    this.failed ??= new LogError(
      'LOG_IO',
      `${this.where}: ${what} failed on ${this.writer.segment.file}; the partition takes no more appends until the log is reopened`,
      this.details(this.writer.segment.file),
      'permanent',
      { cause: error },
    );
    return this.failed;
  }

  private details(file?: string) {
    return { topic: this.ctx.topic, partition: this.ctx.partition, ...(file ? { file } : {}) };
  }
}

/** Index of the segment holding `offset` (the last one with baseOffset <= offset). */
function segmentOf(segments: readonly Segment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if ((segments[mid] as Segment).baseOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
