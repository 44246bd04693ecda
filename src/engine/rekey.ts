/**
 * The re-keying step of distributed mode: sources that cannot partition by endpoint (a
 * mobile core keyed by IMSI, or not keyed at all) produce to the ingest topic; each
 * replica moves the ingest partitions it owns onto the raw topic, routed by routeOfLine
 * (the endpoint's partition, the endpoint id as key). Its cursor is committed after the
 * appends are durable, so a crash in between appends a batch again: at-least-once, and the
 * fold drops the repeats (every raw record has an id it deduplicates on).
 */
import type { AppendRecord, CursorStore, Topic } from '../log/types.js';
import type { Directory } from '../reference/directory.js';
import { lineTime, routeOfLine } from './ingest.js';

export class Rekeyer {
  constructor(
    private readonly ingest: Topic,
    private readonly raw: Topic,
    private readonly directory: Directory,
    private readonly cursors: CursorStore,
    private readonly group: string,
    private readonly batchSize = 5_000,
  ) {}

  /** Moves what waits on these ingest partitions; returns how many records it moved. */
  async step(partitions: readonly number[]): Promise<number> {
    let moved = 0;
    for (const p of partitions) {
      if (p >= this.ingest.partitions) continue;
      const from =
        (await this.cursors.get(this.group, this.ingest.name, p)) ?? (await this.ingest.startOffset(p));
      const batch = await this.ingest.read(p, from, this.batchSize);
      if (batch.length === 0) continue;
      const routed: AppendRecord[][] = Array.from({ length: this.raw.partitions }, () => []);
      for (const record of batch) {
        const line = record.value.toString('utf8');
        const { partition, key } = routeOfLine(line, this.directory, this.raw.partitions);
        routed[partition]?.push({ key, value: record.value, timestamp: lineTime(line) ?? record.timestamp });
      }
      await Promise.all(
        routed.map((records, target) => (records.length > 0 ? this.raw.append(target, records) : undefined)),
      );
      await this.cursors.commit(
        this.group,
        this.ingest.name,
        p,
        (batch[batch.length - 1]?.offset ?? from) + 1,
      );
      moved += batch.length;
    }
    return moved;
  }
}
