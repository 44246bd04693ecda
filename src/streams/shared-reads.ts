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

export interface SharedChunk {
  /** First offset read, and the offset after the last one. */
  readonly from: number;
  readonly to: number;
  /** Each organisation's records, in log order (records of no organisation go to no stream). */
  readonly byOrganisation: ReadonlyMap<number, OrganisationRecords>;
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
    const found = new Map<number, { record: LogRecord; fields: RecordFields }[]>();
    for (const record of records) {
      const fields = fieldsOfBytes(record.value) ?? fieldsOf(record.value.toString('utf8'));
      if (fields.organisationId === undefined) continue;
      const own = found.get(fields.organisationId);
      if (own) own.push({ record, fields });
      else found.set(fields.organisationId, [{ record, fields }]);
    }
    const byOrganisation = new Map<number, OrganisationRecords>();
    let bytes = 0;
    for (const [organisation, own] of found) {
      const columns = new OrganisationRecords(topic.name, partition, own);
      bytes += columns.bytes.length;
      byOrganisation.set(organisation, columns);
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

const INTEGER_KEY = /^(0|[1-9][0-9]{0,14})$/;

/**
 * One organisation's records of a chunk, column by column: their bytes back to back in a
 * buffer of their own (so a lane's batch holds only its organisation's bytes, never the
 * whole chunk the log read) and their envelope fields in typed arrays. A cached chunk is
 * then a few objects however many records it holds, and a record becomes an object only
 * when a lane takes it into a batch. With an object and a Buffer view per cached record,
 * the worker's heap held about a million of them during a backlog, and each of V8's full
 * collections (set off every few hundred ms by the buffers the lanes allocate) walked them
 * all: its helper threads spent more CPU on that than the lanes spent delivering.
 */
export class OrganisationRecords {
  readonly length: number;
  readonly bytes: Buffer;
  /** Record i is bytes[starts[i], starts[i + 1]). */
  private readonly starts: Uint32Array;
  readonly offsets: Float64Array;
  readonly timestamps: Float64Array;
  readonly ids: Float64Array;
  /** NaN: no event type (a usage record). */
  private readonly eventTypes: Float64Array;
  readonly alerts: Uint8Array;
  /** Endpoint ids as numbers (NaN: no key) when every key is a plain integer, as the engine writes them. */
  private readonly numericKeys: Float64Array | undefined;
  private readonly textKeys: (string | null)[] | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    own: readonly { record: LogRecord; fields: RecordFields }[],
  ) {
    const n = own.length;
    this.length = n;
    this.starts = new Uint32Array(n + 1);
    this.offsets = new Float64Array(n);
    this.timestamps = new Float64Array(n);
    this.ids = new Float64Array(n);
    this.eventTypes = new Float64Array(n);
    this.alerts = new Uint8Array(n);
    let size = 0;
    for (const { record } of own) size += record.value.length;
    this.bytes = Buffer.allocUnsafe(size);
    const numeric = own.every(({ record: { key } }) => key === null || INTEGER_KEY.test(key));
    this.numericKeys = numeric ? new Float64Array(n) : undefined;
    this.textKeys = numeric ? undefined : own.map(({ record }) => record.key);
    let at = 0;
    own.forEach(({ record, fields }, i) => {
      this.bytes.set(record.value, at);
      at += record.value.length;
      this.starts[i + 1] = at;
      this.offsets[i] = record.offset;
      this.timestamps[i] = record.timestamp;
      this.ids[i] = fields.id;
      this.eventTypes[i] = fields.eventTypeId ?? Number.NaN;
      this.alerts[i] = fields.alert ? 1 : 0;
      if (this.numericKeys) this.numericKeys[i] = record.key === null ? Number.NaN : Number(record.key);
    });
  }

  eventTypeOf(i: number): number | undefined {
    const type = this.eventTypes[i] as number;
    return Number.isNaN(type) ? undefined : type;
  }

  keyOf(i: number): string | null {
    if (this.textKeys) return this.textKeys[i] ?? null;
    const key = this.numericKeys?.[i] as number;
    return Number.isNaN(key) ? null : String(key);
  }

  sizeOf(i: number): number {
    return (this.starts[i + 1] as number) - (this.starts[i] as number);
  }

  bytesOf(i: number): Buffer {
    return this.bytes.subarray(this.starts[i], this.starts[i + 1]);
  }

  /** Record i as a sink takes it. */
  record(i: number): SinkRecord {
    return new LaneRecord(this, i);
  }

  /** Index of the first record at or after `offset`. */
  firstAtOrAfter(offset: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.offsets[mid] as number) < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * A record as a lane hands it to a sink: where it is in its organisation's columns. Its
 * fields are read from them, its bytes are a view made when asked for, its text is decoded
 * only when a sink asks for it.
 */
class LaneRecord implements SinkRecord {
  private text: string | undefined;

  constructor(
    private readonly of: OrganisationRecords,
    private readonly i: number,
  ) {}

  get id(): number {
    return this.of.ids[this.i] as number;
  }
  get topic(): string {
    return this.of.topic;
  }
  get partition(): number {
    return this.of.partition;
  }
  get offset(): number {
    return this.of.offsets[this.i] as number;
  }
  get timestamp(): number {
    return this.of.timestamps[this.i] as number;
  }
  get key(): string | null {
    return this.of.keyOf(this.i);
  }
  get eventTypeId(): number | undefined {
    return this.of.eventTypeOf(this.i);
  }
  get bytes(): Buffer {
    return this.of.bytesOf(this.i);
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
