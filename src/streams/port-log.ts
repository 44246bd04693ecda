/**
 * The engine's output log as a lane worker sees it: reads go to the segment files
 * directly, in the worker's thread. Where to look comes from the engine's thread: with
 * every append it tells each partition's tail (the acknowledged end, in the active
 * segment's file), so a read going on where the last one stopped needs nothing more;
 * any other read asks it (Partition.locate). Offsets, times and cursors are asked of the
 * engine's thread; appends are not possible here.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { errnoOf } from '../log/embedded/files.js';
import type { Located, Tail } from '../log/embedded/partition.js';
import { ReadBatch, readSpan } from '../log/embedded/segment.js';
import { LogError } from '../log/errors.js';
import type { AppendResult, CursorStore, LogRecord, Topic } from '../log/types.js';
import { Waiters } from '../log/waiters.js';
import type { PortRpc } from '../util/port-rpc.js';

/**
 * Read handles of segment files, shared by the reads of each file. Past MAX_OPEN files the
 * least recently used one is closed once no read is using it.
 */
export class SegmentFiles {
  private static readonly MAX_OPEN = 64;
  private readonly files = new Map<string, { handle: Promise<FileHandle>; users: number }>();
  private readonly evicted = new Set<{ handle: Promise<FileHandle>; users: number }>();

  /** Runs `task` with a read handle of `file`. */
  async use<T>(file: string, task: (fh: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.files.get(file);
    if (entry) this.files.delete(file);
    else entry = { handle: open(file, 'r'), users: 0 };
    this.files.set(file, entry);
    entry.users++;
    this.trim();
    try {
      return await task(await entry.handle);
    } catch (error) {
      if (this.files.get(file) === entry) this.files.delete(file);
      this.evicted.add(entry);
      throw error;
    } finally {
      entry.users--;
      this.closeUnused();
    }
  }

  private trim(): void {
    for (const [file, entry] of this.files) {
      if (this.files.size <= SegmentFiles.MAX_OPEN) break;
      this.files.delete(file);
      this.evicted.add(entry);
    }
    this.closeUnused();
  }

  private closeUnused(): void {
    for (const entry of this.evicted)
      if (entry.users === 0) {
        this.evicted.delete(entry);
        void entry.handle.then((fh) => fh.close()).catch(() => undefined);
      }
  }

  async close(): Promise<void> {
    for (const entry of this.files.values()) this.evicted.add(entry);
    this.files.clear();
    this.closeUnused();
  }
}

export class PortTopic implements Topic {
  private readonly waiting = new Waiters();
  /** Appends told of so far, and how many had been told of when the latest read began. */
  private notices = 0;
  private noticesAtRead = 0;
  /** Per partition: the tail told of last, and where the last read stopped. */
  private readonly tails: (Tail | undefined)[] = [];
  private readonly next: ({ offset: number; file: string; position: number } | undefined)[] = [];

  constructor(
    readonly name: string,
    readonly partitions: number,
    private readonly rpc: PortRpc,
    private readonly files: SegmentFiles,
  ) {}

  append(): Promise<AppendResult> {
    return Promise.reject(
      new LogError('LOG_INVALID_ARGUMENT', `${this.name}: the lanes' view of the log is read-only`),
    );
  }

  async read(
    partition: number,
    fromOffset: number,
    maxRecords: number,
    maxBytes?: number,
  ): Promise<LogRecord[]> {
    this.noticesAtRead = this.notices;
    if (maxBytes !== undefined) {
      const records = await this.readOn(partition, fromOffset, maxRecords, maxBytes);
      if (records) return records;
    }
    const ctx = { topic: this.name, partition };
    for (let attempt = 0; ; attempt++) {
      const located = await this.rpc.call<Located>('locate', {
        topic: this.name,
        partition,
        from: fromOffset,
        maxBytes,
      });
      const { end, spans, slack } = located;
      const batch = new ReadBatch(partition, maxRecords, located.maxBytes, end);
      try {
        for (const span of spans) {
          if (batch.done) break;
          await this.files.use(span.file, (fh) => readSpan(fh, span, fromOffset, batch, ctx, slack));
        }
        return this.keep(partition, batch);
      } catch (error) {
        // Retention removed a segment between locating and opening it: what was read is
        // contiguous; with nothing read, locate again (the start has moved).
        if (errnoOf(error) !== 'ENOENT') throw error;
        if (batch.records.length > 0) return this.keep(partition, batch);
        if (attempt > 0)
          throw new LogError(
            'LOG_IO',
            `${this.name}/${partition}: segment removed during read`,
            ctx,
            'retriable',
            { cause: error },
          );
      }
    }
  }

  /**
   * A read that goes on where the last one stopped, in the segment the latest append told
   * of went to, needs not ask the engine's thread where to look (which would wait for its
   * fold): lanes following the end of the log read this way. Undefined when that does not
   * hold, or the file is gone.
   */
  private async readOn(
    partition: number,
    from: number,
    maxRecords: number,
    maxBytes: number,
  ): Promise<LogRecord[] | undefined> {
    const tail = this.tails[partition];
    const next = this.next[partition];
    if (!tail || next?.offset !== from || next.file !== tail.file || from > tail.end) return undefined;
    if (from === tail.end) return [];
    const batch = new ReadBatch(partition, maxRecords, maxBytes, tail.end);
    const span = { file: tail.file, position: next.position, limit: tail.size };
    try {
      await this.files.use(span.file, (fh) =>
        readSpan(fh, span, from, batch, { topic: this.name, partition }, 0),
      );
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw error;
    }
    return this.keep(partition, batch);
  }

  private keep(partition: number, batch: ReadBatch): LogRecord[] {
    const last = batch.records.at(-1);
    if (last && batch.next) this.next[partition] = { offset: last.offset + 1, ...batch.next };
    return batch.records;
  }

  startOffset(partition: number): Promise<number> {
    return this.rpc.call('startOffset', { topic: this.name, partition });
  }

  endOffset(partition: number): Promise<number> {
    return this.rpc.call('endOffset', { topic: this.name, partition });
  }

  offsetForTime(partition: number, timestamp: number): Promise<number> {
    return this.rpc.call('offsetForTime', { topic: this.name, partition, timestamp });
  }

  /**
   * The engine's thread tells of every append (see WorkerLanes). An append told of since
   * the latest read began may not have been read: that resolves at once, since the notice
   * can arrive between a lane's read and its wait.
   */
  appended(signal: AbortSignal): Promise<void> {
    return this.notices > this.noticesAtRead ? Promise.resolve() : this.waiting.wait(signal);
  }

  /** An append was acknowledged: the tails of every partition after it. */
  wake(tails: Tail[] = []): void {
    tails.forEach((tail, partition) => {
      this.tails[partition] = tail;
    });
    this.notices++;
    this.waiting.wakeAll();
  }

  async close(): Promise<void> {}
}

export class PortCursors implements CursorStore {
  constructor(private readonly rpc: PortRpc) {}

  get(group: string, topic: string, partition: number): Promise<number | undefined> {
    return this.rpc.call('cursorGet', { group, topic, partition });
  }

  commit(group: string, topic: string, partition: number, offset: number): Promise<void> {
    return this.rpc.call('cursorCommit', { group, topic, partition, offset });
  }
}
