import { asLogError, LogError } from '../errors.js';
import type { AppendRecord, AppendResult, LogRecord, Topic } from '../types.js';
import { Waiters } from '../waiters.js';
import type { Located, Partition, Tail } from './partition.js';
import { checkInteger } from './validate.js';

/** A topic of the embedded log: its partitions, each an independent Partition. */
export class EmbeddedTopic implements Topic {
  private closing: Promise<void> | undefined;
  /** Readers waiting for the next append (lanes at the end of the log). */
  private readonly waiting = new Waiters();

  constructor(
    readonly name: string,
    private readonly parts: readonly Partition[],
    private readonly maxReadBytes: number,
    /** Told when close starts, with the promise of its end. */
    private readonly onClose: (closed: Promise<void>) => void,
  ) {}

  get partitions(): number {
    return this.parts.length;
  }

  append(partition: number, records: readonly AppendRecord[]): Promise<AppendResult> {
    return this.on(partition, (p) => {
      if (!Array.isArray(records))
        throw new LogError('LOG_INVALID_ARGUMENT', `${this.name}/${partition}: records must be an array`);
      return p.append(records);
    }).then((result) => {
      this.waiting.wakeAll();
      return result;
    });
  }

  appended(signal: AbortSignal): Promise<void> {
    return this.waiting.wait(signal);
  }

  read(partition: number, fromOffset: number, maxRecords: number, maxBytes?: number): Promise<LogRecord[]> {
    return this.on(partition, (p) => {
      checkInteger('fromOffset', fromOffset, 0);
      checkInteger('maxRecords', maxRecords, 1);
      if (maxBytes !== undefined) checkInteger('maxBytes', maxBytes, 1);
      return p.read(fromOffset, maxRecords, maxBytes ?? this.maxReadBytes);
    });
  }

  /** Every partition's tail (Partition.tail), at once. */
  tails(): Tail[] {
    return this.parts.map((p) => p.tail);
  }

  /** See Partition.locate: for readers of the files in another thread. */
  locate(partition: number, fromOffset: number, maxBytes?: number): Promise<Located> {
    return this.on(partition, (p) => {
      checkInteger('fromOffset', fromOffset, 0);
      if (maxBytes !== undefined) checkInteger('maxBytes', maxBytes, 1);
      return p.locate(fromOffset, maxBytes ?? this.maxReadBytes);
    });
  }

  startOffset(partition: number): Promise<number> {
    return this.on(partition, async (p) => p.startOffset);
  }

  endOffset(partition: number): Promise<number> {
    return this.on(partition, async (p) => p.endOffset);
  }

  offsetForTime(partition: number, timestamp: number): Promise<number> {
    return this.on(partition, (p) => {
      if (!Number.isFinite(timestamp))
        throw new LogError(
          'LOG_INVALID_ARGUMENT',
          `${this.name}/${partition}: timestamp ${timestamp} is not a number`,
        );
      return p.offsetForTime(timestamp);
    });
  }

  /** Applies retention to every partition now (it also runs on each segment roll); resolves to segments removed. */
  async enforceRetention(): Promise<number> {
    let removed = 0;
    for (let partition = 0; partition < this.parts.length; partition++)
      removed += await this.on(partition, (p) => p.enforceRetention());
    return removed;
  }

  /** Timed fsync of every partition with unsynced appends. */
  syncIfDirty(): void {
    if (!this.closing) for (const p of this.parts) p.syncIfDirty();
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        const results = await Promise.allSettled(this.parts.map((p) => p.close()));
        const failure = results.find((r) => r.status === 'rejected');
        if (failure) throw failure.reason;
      })();
      this.onClose(this.closing);
    }
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closing) throw new LogError('LOG_CLOSED', `topic ${this.name} is closed`, { topic: this.name });
  }

  /** Runs `task` on a valid partition; every failure becomes a rejection with a LogError. */
  private async on<T>(partition: number, task: (p: Partition) => Promise<T>): Promise<T> {
    try {
      this.checkOpen();
      checkInteger(`partition of topic ${this.name}`, partition, 0, this.parts.length - 1);
      return await task(this.parts[partition] as Partition);
    } catch (error) {
      throw asLogError(error, `${this.name}/${partition}`, { topic: this.name, partition });
    }
  }
}
