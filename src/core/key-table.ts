/**
 * A hash table of exact integer keys (0 <= key < 2^53) with unsigned 32-bit columns, in
 * typed arrays: about 12 to 20 bytes a row and nothing for the garbage collector to mark,
 * where a Map entry costs 70 bytes and more. The repeat windows keep millions of rows in
 * it (cdr-repeats.ts, id-window.ts).
 *
 * Open addressing with linear probing; a key is stored plus one, so 0 marks a free slot.
 * The table doubles when three quarters full and is rebuilt when rows are dropped.
 */

const MIN_CAPACITY = 1024;
/** Rows per base64 piece of a snapshot. */
const ROWS_PER_PIECE = 4096;

/** Whether the row at `slot` stays, read from `columns`. */
type Keep = (columns: Uint32Array[], slot: number) => boolean;

export class KeyTable {
  private keys: Float64Array;
  /** The columns, by index; replaced when the table grows, so read them after an insert. */
  columns: Uint32Array[];
  private used = 0;

  constructor(
    private readonly columnCount: number,
    capacity = MIN_CAPACITY,
  ) {
    this.keys = new Float64Array(capacity);
    this.columns = Array.from({ length: columnCount }, () => new Uint32Array(capacity));
  }

  get size(): number {
    return this.used;
  }

  /** The slot of `key`, with a new row of zeros if it has none. */
  insert(key: number): number {
    const stored = key + 1;
    const last = this.keys.length - 1;
    for (let slot = hash(key) & last; ; slot = (slot + 1) & last) {
      const at = this.keys[slot] as number;
      if (at === stored) return slot;
      if (at === 0) {
        if ((this.used + 1) * 4 > this.keys.length * 3) {
          this.rebuild(this.keys.length * 2, () => true);
          return this.insert(key);
        }
        this.keys[slot] = stored;
        this.used++;
        return slot;
      }
    }
  }

  /** Keeps only the rows `keep` accepts. */
  retain(keep: Keep): void {
    let live = 0;
    for (let slot = 0; slot < this.keys.length; slot++)
      if (this.keys[slot] !== 0 && keep(this.columns, slot)) live++;
    if (live < this.used) this.rebuild(capacityFor(live), keep);
  }

  /** The rows in base64 pieces: key (f64 LE), then each column (u32 LE). */
  *pieces(): Generator<string> {
    const rowBytes = 8 + 4 * this.columnCount;
    const bytes = Buffer.alloc(ROWS_PER_PIECE * rowBytes);
    let at = 0;
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.keys[slot] === 0) continue;
      bytes.writeDoubleLE((this.keys[slot] as number) - 1, at);
      for (let c = 0; c < this.columnCount; c++)
        bytes.writeUInt32LE((this.columns[c] as Uint32Array)[slot] as number, at + 8 + 4 * c);
      at += rowBytes;
      if (at === bytes.length) {
        yield bytes.toString('base64');
        at = 0;
      }
    }
    if (at > 0) yield bytes.toString('base64', 0, at);
  }

  /** A table from the pieces of `pieces()`. */
  static restore(columnCount: number, pieces: string[]): KeyTable {
    const rowBytes = 8 + 4 * columnCount;
    const decoded = pieces.map((piece) => Buffer.from(piece, 'base64'));
    const rows = decoded.reduce((sum, bytes) => sum + bytes.length / rowBytes, 0);
    const table = new KeyTable(columnCount, capacityFor(rows));
    for (const bytes of decoded)
      for (let at = 0; at < bytes.length; at += rowBytes) {
        const slot = table.insert(bytes.readDoubleLE(at));
        for (let c = 0; c < columnCount; c++)
          (table.columns[c] as Uint32Array)[slot] = bytes.readUInt32LE(at + 8 + 4 * c);
      }
    return table;
  }

  private rebuild(capacity: number, keep: Keep): void {
    const { keys, columns } = this;
    this.keys = new Float64Array(capacity);
    this.columns = columns.map(() => new Uint32Array(capacity));
    this.used = 0;
    for (let slot = 0; slot < keys.length; slot++) {
      if (keys[slot] === 0 || !keep(columns, slot)) continue;
      const to = this.insert((keys[slot] as number) - 1);
      for (let c = 0; c < columns.length; c++)
        (this.columns[c] as Uint32Array)[to] = (columns[c] as Uint32Array)[slot] as number;
    }
  }
}

/** Names numbered in order of arrival, for keys made of a name's number and another number. */
export class NameNumbers {
  readonly names: string[] = [];
  private numbers = new Map<string, number>();

  constructor(
    private readonly max: number,
    names: string[] = [],
  ) {
    for (const name of names) this.numberOf(name);
  }

  /** The name's number, or -1 when `max` names have numbers already. */
  numberOf(name: string): number {
    const known = this.numbers.get(name);
    if (known !== undefined) return known;
    if (this.names.length >= this.max) return -1;
    this.numbers.set(name, this.names.length);
    this.names.push(name);
    return this.names.length - 1;
  }
}

/** A power of two with room for `rows` at half load. */
function capacityFor(rows: number): number {
  let capacity = MIN_CAPACITY;
  while (capacity < rows * 2) capacity *= 2;
  return capacity;
}

const TWO_32 = 2 ** 32;

/** Spreads keys over the table: the ids in them are often sequential. */
function hash(key: number): number {
  let h = Math.imul((key % TWO_32) ^ Math.imul(Math.floor(key / TWO_32), 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
