/**
 * Reads of the output log shared by all lanes. Streams are per organisation, so many lanes
 * follow the same topics at about the same place; each reading the whole log for itself
 * would cost every record one read, checksum, decode and field scan per lane. Here a chunk
 * is read once, its records' envelope fields found once, and the records are grouped by
 * organisation, so a lane then pays only for its own records.
 *
 * Lanes stay independent: none waits for another. A chunk every lane has read past is
 * dropped at once (a stream created later reads the history for itself). The cache is
 * bounded by bytes; over the bound it drops the chunk that will be needed last (the
 * furthest from the nearest lane behind it), and a lane whose chunk was dropped reads it
 * again for itself. Records on the log never change, so a cached
 * chunk is never stale; the log's end only adds chunks.
 */
import type { SinkRecord } from '../../connectors/sinks/types.js';
import type { LogRecord, Topic } from '../log/types.js';
import { fieldsOf, fieldsOfBytes, type RecordFields } from './record-fields.js';

export interface LaneEntry {
  record: SinkRecord;
  alert: boolean;
}

export interface SharedChunk {
  /** First offset read, and the offset after the last one. */
  readonly from: number;
  readonly to: number;
  /** Each organisation's records, in log order (records of no organisation go to no stream). */
  readonly byOrganisation: ReadonlyMap<number, readonly LaneEntry[]>;
  readonly bytes: number;
}

export interface SharedReadsOptions {
  /** Most records and bytes read at once. */
  chunkRecords?: number;
  chunkBytes?: number;
  /**
   * Bytes of records the cache keeps (default 512 MB). It holds what lies between the
   * slowest and the fastest lane, so it only fills when lanes are far apart (streams
   * catching up on a backlog at different speeds); at the end of the log it holds little.
   * Too small, and lanes read the same chunks again for themselves: with 80 lanes over an
   * 850 MB backlog, 128 MB made them read every record 4.4 times (26,000 records/s
   * delivered instead of 83,000).
   */
  cacheBytes?: number;
}

export class SharedReads {
  private readonly chunkRecords: number;
  private readonly chunkBytes: number;
  private readonly cacheBytes: number;
  /** Per `topic/partition`: cached chunks. Few, so a scan finds the one holding an offset. */
  private readonly cached = new Map<string, SharedChunk[]>();
  /** Per `topic/partition`: where each reader last asked to read. */
  private readonly positions = new Map<string, Map<object, number>>();
  private bytes = 0;
  /** Reads under way, so lanes asking for the same place at once share one. */
  private readonly reading = new Map<string, Promise<SharedChunk | undefined>>();

  constructor(options: SharedReadsOptions = {}) {
    this.chunkRecords = options.chunkRecords ?? 4096;
    this.chunkBytes = options.chunkBytes ?? 4 * 1024 * 1024;
    this.cacheBytes = options.cacheBytes ?? 512 * 1024 * 1024;
  }

  /**
   * The chunk holding `from` (it may start before it), or undefined when the log has nothing
   * there yet. `reader` (a lane) is where it is now: chunks behind every reader can go.
   */
  async chunk(
    topic: Topic,
    partition: number,
    from: number,
    reader: object,
  ): Promise<SharedChunk | undefined> {
    const slot = this.at(reader, topic, partition, from);
    this.dropPassed(slot);
    const hit = this.cached.get(slot)?.find((c) => c.from <= from && from < c.to);
    if (hit) return hit;
    const key = `${slot}@${from}`;
    let pending = this.reading.get(key);
    if (!pending) {
      pending = this.read(topic, partition, from, slot).finally(() => this.reading.delete(key));
      this.reading.set(key, pending);
    }
    return pending;
  }

  private async read(
    topic: Topic,
    partition: number,
    from: number,
    slot: string,
  ): Promise<SharedChunk | undefined> {
    const records = await topic.read(partition, from, this.chunkRecords, this.chunkBytes);
    const last = records.at(-1);
    if (!last) return undefined;
    // Each organisation's records are copied into one buffer of their own: a lane's batch
    // then holds only its organisation's bytes, never the whole chunk the log read (with
    // many organisations, a batch spans many chunks).
    const found = new Map<number, { record: LogRecord; fields: RecordFields }[]>();
    for (const record of records) {
      const fields = fieldsOfBytes(record.value) ?? fieldsOf(record.value.toString('utf8'));
      if (fields.organisationId === undefined) continue;
      const own = found.get(fields.organisationId);
      if (own) own.push({ record, fields });
      else found.set(fields.organisationId, [{ record, fields }]);
    }
    const byOrganisation = new Map<number, LaneEntry[]>();
    let bytes = 0;
    for (const [organisation, own] of found) {
      const buffer = Buffer.allocUnsafe(own.reduce((n, { record }) => n + record.value.length, 0));
      bytes += buffer.length;
      let at = 0;
      byOrganisation.set(
        organisation,
        own.map(({ record: r, fields: { id, eventTypeId, alert } }) => {
          const start = at;
          buffer.set(r.value, at);
          at += r.value.length;
          const view = buffer.subarray(start, at);
          const record = new LaneRecord(
            id,
            topic.name,
            partition,
            r.offset,
            r.timestamp,
            r.key,
            eventTypeId,
            view,
          );
          return { record, alert };
        }),
      );
    }
    const chunk: SharedChunk = { from, to: last.offset + 1, byOrganisation, bytes };
    this.keep(slot, chunk);
    return chunk;
  }

  /** Notes where `reader` is (a lane starting says where it will begin, so what it needs is kept). */
  at(reader: object, topic: Topic, partition: number, offset: number): string {
    const slot = `${topic.name}/${partition}`;
    const positions = this.positions.get(slot) ?? new Map<object, number>();
    this.positions.set(slot, positions.set(reader, offset));
    return slot;
  }

  /** A reader that stopped no longer holds chunks in the cache. */
  forget(reader: object): void {
    for (const positions of this.positions.values()) positions.delete(reader);
  }

  /**
   * Drops the slot's chunks every reader has read past at once: at the end of the log the
   * lanes read small chunks many times a second, which would otherwise pile up.
   */
  private dropPassed(slot: string): void {
    const chunks = this.cached.get(slot);
    if (!chunks) return;
    let slowest = Number.POSITIVE_INFINITY;
    for (const offset of this.positions.get(slot)?.values() ?? []) slowest = Math.min(slowest, offset);
    if (chunks.some((c) => c.to <= slowest)) this.drop(slot, (c) => c.to <= slowest);
  }

  private drop(slot: string, gone: (chunk: SharedChunk) => boolean): void {
    const chunks = this.cached.get(slot) ?? [];
    for (const c of chunks) if (gone(c)) this.bytes -= c.bytes;
    const rest = chunks.filter((c) => !gone(c));
    if (rest.length > 0) this.cached.set(slot, rest);
    else this.cached.delete(slot);
  }

  private keep(slot: string, chunk: SharedChunk): void {
    const chunks = this.cached.get(slot);
    if (chunks) chunks.push(chunk);
    else this.cached.set(slot, [chunk]);
    this.bytes += chunk.bytes;
    // The new chunk stays even over the bound: the lane that asked for it is reading it.
    while (this.bytes > this.cacheBytes) {
      const victim = this.leastNeeded(chunk);
      if (!victim) break;
      this.drop(victim.slot, (c) => c === victim.chunk);
    }
  }

  /**
   * The chunk that will be needed last, as far as positions tell: the one furthest from
   * the nearest reader behind it (a chunk with a reader in it is in use; one with no reader
   * behind it is needed by none). Readers move on at about the same pace, so the distance
   * stands in for the time until the next read.
   */
  private leastNeeded(keep: SharedChunk): { slot: string; chunk: SharedChunk } | undefined {
    let victim: { slot: string; chunk: SharedChunk; gap: number } | undefined;
    for (const [slot, chunks] of this.cached) {
      const positions = [...(this.positions.get(slot)?.values() ?? [])];
      for (const chunk of chunks) {
        if (chunk === keep) continue;
        let nearest = Number.NEGATIVE_INFINITY;
        for (const p of positions) if (p < chunk.to && p > nearest) nearest = p;
        const gap = nearest >= chunk.from ? 0 : chunk.from - nearest;
        if (!victim || gap > victim.gap) victim = { slot, chunk, gap };
      }
    }
    return victim;
  }
}

/**
 * A record as a lane hands it to a sink: its bytes (a view into its organisation's buffer
 * of the chunk), its text decoded only when a sink asks for it.
 */
class LaneRecord implements SinkRecord {
  private text: string | undefined;
  readonly eventTypeId?: number;

  constructor(
    readonly id: number,
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly timestamp: number,
    readonly key: string | null,
    eventTypeId: number | undefined,
    readonly bytes: Buffer,
  ) {
    if (eventTypeId !== undefined) this.eventTypeId = eventTypeId;
  }

  get json(): string {
    this.text ??= this.bytes.toString('utf8');
    return this.text;
  }

  /** Stored (a dead-lettered batch) as a plain record: its text, not its bytes. */
  toJSON(): SinkRecord {
    const { id, topic, partition, offset, timestamp, key, eventTypeId, json } = this;
    return {
      id,
      topic,
      partition,
      offset,
      timestamp,
      key,
      ...(eventTypeId === undefined ? {} : { eventTypeId }),
      json,
    };
  }
}

/** Index of the first entry at or after `offset` (entries in offset order). */
export function firstAtOrAfter(entries: readonly LaneEntry[], offset: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid] as LaneEntry).record.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
