/**
 * Copies the output log into ClickHouse. Each batch is a fixed range of one partition of
 * one topic; before inserting it, the writer records the range as its intent, inserts
 * with a deduplication token named after the range, then commits its cursor. After a
 * crash the same range is inserted again with the same token, which ClickHouse drops:
 * a replayed batch never doubles a row.
 *
 * A shadow run (src/lab/shadow.ts) stores into the ClickHouse of a running engine whose
 * output log has the same topic names and offsets: its tokens and dead-letter sources get
 * prefixes, and its ranges are aligned so that a rerun in a fresh data dir names them alike.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Log, LogRecord, Topic } from '../log/types.js';
import type { DeadLetterRow, Store } from '../storage/index.js';

/** Cursor group of the ClickHouse writer on the output log (the load tests time stored rows by it). */
export const STORE_CURSOR_GROUP = 'clickhouse';
const GROUP = STORE_CURSOR_GROUP;

/** What each stored topic holds, and so which table it goes to. */
export type StoredKind = 'events' | 'usage' | 'dead-letters';

/** How a shadow run stores into a store another engine writes too (EngineOptions.shadow). */
export interface ShadowStoring {
  /**
   * Put in front of every insert deduplication token: the live engine inserts the same
   * topic ranges, and ClickHouse drops an insert whose token it has seen.
   */
  tokenPrefix: string;
  /**
   * Put in front of every dead letter's source (`<prefix>:raw`): dead_letters is keyed by
   * (source, stage, id), and the ids are the live engine's too.
   */
  sourcePrefix: string;
  /**
   * Whether the input has ended (no output topic grows any more). Until then only whole
   * ranges aligned to the batch size are inserted, never a partition's growing tail, so
   * the ranges, and so the tokens, do not depend on when a store round ran.
   */
  complete(): boolean;
}

export class StoreWriter {
  constructor(
    private readonly log: Log,
    private readonly topics: { topic: Topic; kind: StoredKind }[],
    private readonly store: Store,
    private readonly intentDir: string,
    /** Which partitions this writer stores (distributed mode: the owner's); default all. */
    private readonly owns: (topic: Topic, partition: number) => boolean = () => true,
    private readonly batchSize = 20_000,
    private readonly shadow?: ShadowStoring,
  ) {
    mkdirSync(intentDir, { recursive: true });
  }

  /** Inserts everything on the output log not stored yet; returns the number of rows. */
  async drain(): Promise<number> {
    let rows = 0;
    for (const { topic, kind } of this.topics) {
      for (let p = 0; p < topic.partitions; p++) {
        if (!this.owns(topic, p)) continue;
        for (;;) {
          const n = await this.step(topic, kind, p);
          if (n === 0) break;
          rows += n;
        }
      }
    }
    return rows;
  }

  private intentFile(topic: string, partition: number): string {
    return join(this.intentDir, `${topic}-${partition}.json`);
  }

  /** Where the next range from `from` ends (`from` itself: nothing to insert now). */
  private async rangeEnd(log: Topic, partition: number, from: number): Promise<number> {
    const end = await log.endOffset(partition);
    if (!this.shadow) return Math.min(end, from + this.batchSize);
    const boundary = (Math.floor(from / this.batchSize) + 1) * this.batchSize;
    if (end >= boundary) return boundary;
    return this.shadow.complete() ? end : from;
  }

  private async step(log: Topic, kind: StoredKind, partition: number): Promise<number> {
    const topic = log.name;
    const from = (await this.log.cursors.get(GROUP, topic, partition)) ?? (await log.startOffset(partition));
    let to: number;
    try {
      // An intent left by a crash fixes the range, so the retry carries the same token.
      const intent = JSON.parse(readFileSync(this.intentFile(topic, partition), 'utf8')) as {
        from: number;
        to: number;
      };
      to = intent.from === from ? intent.to : await this.rangeEnd(log, partition, from);
    } catch {
      to = await this.rangeEnd(log, partition, from);
    }
    if (to <= from) return 0;
    writeFileSync(this.intentFile(topic, partition), JSON.stringify({ from, to }));
    const records: LogRecord[] = [];
    while (records.length < to - from) {
      const batch = await log.read(partition, from + records.length, to - from - records.length, 64 << 20);
      if (batch.length === 0) break;
      records.push(...batch);
    }
    const token = `${this.shadow?.tokenPrefix ?? ''}${topic}:p${partition}:${from}-${to}`;
    const values = records.map((r) => r.value);
    // Events and usage records go in as the JSON bytes on the log; ClickHouse types the columns.
    if (kind === 'events') await this.store.insertJson('events', values, token);
    else if (kind === 'usage') await this.store.insertJson('usage_records', values, token);
    else
      await this.store.insertDeadLetters(
        values.map((value) => {
          const row = JSON.parse(value.toString('utf8')) as DeadLetterRow;
          if (this.shadow) row.source = `${this.shadow.sourcePrefix}:${row.source}`;
          return row;
        }),
        token,
      );
    await this.log.cursors.commit(GROUP, topic, partition, to);
    rmSync(this.intentFile(topic, partition), { force: true });
    return records.length;
  }
}
