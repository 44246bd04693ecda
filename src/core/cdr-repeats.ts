/**
 * The repeat window of data CDRs, kept per bearer instead of per CDR.
 *
 * A CDR is identified by (node, charging id, sequence number), and a bearer's sequence
 * numbers run 1, 2, 3... So per (node, charging id) it is enough to know the highest n
 * with 1..n all seen, and which of the next 32 were seen (a bit mask). That is one row of
 * 20 bytes in typed arrays per bearer, where a Map of string keys took about 70 bytes per
 * CDR (a bearer has about six) and gave the garbage collector millions of objects to mark.
 *
 * Exact, never approximate (a false repeat would drop a billable record): what the rows
 * cannot say is kept in Maps. A sequence number more than 32 ahead of its bearer's run
 * goes to `spills` and moves into the row when the run reaches it; a CDR whose parts do
 * not fit a row (a charging id outside 0..2^32-1, a sequence number below 1) goes to
 * `odd` under its full key.
 */

/** Past the highest n with 1..n seen, the sequence numbers a row's mask covers. */
const MASK_BITS = 32;
/** Node names get an index below this: with a charging id below 2^32, a row key stays below 2^53. */
const MAX_NODES = 1 << 20;
const TWO_32 = 2 ** 32;
/** Bytes of a row in a snapshot: key (f64), minute, run, mask (u32 each). */
const ROW_BYTES = 20;
/** Rows per base64 piece of a snapshot. */
const ROWS_PER_PIECE = 4096;

/** The snapshot form (JSON): rows in base64 pieces, the Maps as entry lists. */
export interface CdrRepeatsSnapshot {
  nodes: string[];
  rows: string[];
  /** [row key, [[sequence, minute], ...]] */
  spills: [number, [number, number][]][];
  odd: [string, number][];
}

export class CdrRepeats {
  private nodes: string[] = [];
  private nodeIndex = new Map<string, number>();
  // Open addressing with linear probing; a key is stored plus one, so 0 marks an empty slot.
  private keys: Float64Array;
  /** The latest minute (event time) of the bearer's CDRs: the row is forgotten 48 hours after it. */
  private minutes: Uint32Array;
  /** Highest n with sequence numbers 1..n all seen. */
  private runs: Uint32Array;
  /** Bit i: sequence number run + 1 + i seen. */
  private masks: Int32Array;
  private used = 0;
  /** Sequence numbers beyond a row's mask, per row key, with their minute. */
  private spills = new Map<number, Map<number, number>>();
  /** CDRs that fit no row, by "node/charging id/sequence", with their minute. */
  private odd = new Map<string, number>();

  constructor(capacity = 1024) {
    this.keys = new Float64Array(capacity);
    this.minutes = new Uint32Array(capacity);
    this.runs = new Uint32Array(capacity);
    this.masks = new Int32Array(capacity);
  }

  /** Bearers with a row, and CDRs kept outside the rows. */
  get size(): { rows: number; outside: number } {
    let outside = this.odd.size;
    for (const spill of this.spills.values()) outside += spill.size;
    return { rows: this.used, outside };
  }

  /**
   * True when this CDR was seen before; otherwise it is recorded (at `minute`, its event
   * time) and false is returned.
   */
  repeat(node: string, chargingId: number, sequence: number, minute: number): boolean {
    const nodeId = this.nodeId(node);
    if (
      nodeId < 0 ||
      !Number.isInteger(chargingId) ||
      chargingId < 0 ||
      chargingId >= TWO_32 ||
      !Number.isInteger(sequence) ||
      sequence < 1 ||
      sequence >= TWO_32
    )
      return this.oddRepeat([node, chargingId, sequence].join('/'), minute);
    const key = nodeId * TWO_32 + chargingId;
    const slot = this.slotOf(key);
    if (minute > (this.minutes[slot] as number)) this.minutes[slot] = minute;
    const run = this.runs[slot] as number;
    if (sequence <= run) return true;
    const bit = sequence - run - 1;
    if (bit >= MASK_BITS) {
      const spill = this.spills.get(key) ?? new Map<number, number>();
      if (spill.has(sequence)) return true;
      spill.set(sequence, minute);
      this.spills.set(key, spill);
      return false;
    }
    const mask = this.masks[slot] as number;
    if (mask & (1 << bit)) return true;
    this.masks[slot] = mask | (1 << bit);
    if (bit === 0) this.advanceRun(slot, key);
    return false;
  }

  /** Forgets bearers whose latest CDR, and CDRs kept outside rows, are older than `minute`. */
  forgetBefore(minute: number): void {
    const { keys, minutes, runs, masks } = this;
    let live = 0;
    for (let slot = 0; slot < keys.length; slot++)
      if (keys[slot] !== 0 && (minutes[slot] as number) >= minute) live++;
    if (live < this.used) {
      this.allocate(capacityFor(live));
      for (let slot = 0; slot < keys.length; slot++)
        if (keys[slot] !== 0 && (minutes[slot] as number) >= minute)
          this.put(
            (keys[slot] as number) - 1,
            minutes[slot] as number,
            runs[slot] as number,
            masks[slot] as number,
          );
    }
    for (const [key, spill] of this.spills) {
      for (const [sequence, at] of spill) if (at < minute) spill.delete(sequence);
      if (spill.size === 0) this.spills.delete(key);
    }
    for (const [key, at] of this.odd) if (at < minute) this.odd.delete(key);
  }

  toJSON(): CdrRepeatsSnapshot {
    return {
      nodes: this.nodes,
      rows: [...this.rowPieces()],
      spills: this.spillEntries(),
      odd: [...this.odd],
    };
  }

  /** The text of JSON.stringify(this), in pieces: a large table is never one string. */
  *snapshotPieces(): Generator<string> {
    yield `{"nodes":${JSON.stringify(this.nodes)},"rows":[`;
    let first = true;
    for (const piece of this.rowPieces()) {
      yield `${first ? '' : ','}"${piece}"`;
      first = false;
    }
    yield `],"spills":${JSON.stringify(this.spillEntries())},"odd":${JSON.stringify([...this.odd])}}`;
  }

  static restore(snapshot: CdrRepeatsSnapshot): CdrRepeats {
    let rows = 0;
    for (const piece of snapshot.rows) rows += Buffer.byteLength(piece, 'base64') / ROW_BYTES;
    const repeats = new CdrRepeats(capacityFor(rows));
    snapshot.nodes.forEach((node, index) => {
      repeats.nodes.push(node);
      repeats.nodeIndex.set(node, index);
    });
    for (const piece of snapshot.rows) {
      const bytes = Buffer.from(piece, 'base64');
      for (let at = 0; at < bytes.length; at += ROW_BYTES)
        repeats.put(
          bytes.readDoubleLE(at),
          bytes.readUInt32LE(at + 8),
          bytes.readUInt32LE(at + 12),
          bytes.readInt32LE(at + 16),
        );
    }
    for (const [key, entries] of snapshot.spills) repeats.spills.set(key, new Map(entries));
    repeats.odd = new Map(snapshot.odd);
    return repeats;
  }

  /** From the window of earlier snapshots: "node/charging id/sequence" -> minute. */
  static fromKeys(seen: Map<string, number>): CdrRepeats {
    const repeats = new CdrRepeats();
    for (const [key, minute] of seen) {
      const last = key.lastIndexOf('/');
      const middle = key.lastIndexOf('/', last - 1);
      const chargingId = Number(key.slice(middle + 1, last));
      const sequence = Number(key.slice(last + 1));
      repeats.repeat(key.slice(0, middle), chargingId, sequence, minute);
    }
    return repeats;
  }

  private nodeId(node: string): number {
    const known = this.nodeIndex.get(node);
    if (known !== undefined) return known;
    if (this.nodes.length >= MAX_NODES) return -1;
    this.nodeIndex.set(node, this.nodes.length);
    this.nodes.push(node);
    return this.nodes.length - 1;
  }

  private oddRepeat(key: string, minute: number): boolean {
    if (this.odd.has(key)) return true;
    this.odd.set(key, minute);
    return false;
  }

  /** Moves the run past every seen sequence number, taking in spilled ones as the mask reaches them. */
  private advanceRun(slot: number, key: number): void {
    let run = this.runs[slot] as number;
    let mask = this.masks[slot] as number;
    const spill = this.spills.get(key);
    for (;;) {
      let moved = 0;
      while (mask & 1) {
        mask >>>= 1;
        run++;
        moved++;
      }
      if (!spill || moved === 0) break;
      // The top `moved` bits of the mask are new: spilled sequence numbers may belong there.
      let taken = false;
      for (let bit = Math.max(0, MASK_BITS - moved); bit < MASK_BITS; bit++) {
        if (spill.delete(run + 1 + bit)) {
          mask |= 1 << bit;
          taken = true;
        }
      }
      if (!taken || !(mask & 1)) break;
    }
    if (spill?.size === 0) this.spills.delete(key);
    this.runs[slot] = run;
    this.masks[slot] = mask;
  }

  /** The slot of a key, with a new row (run 0, nothing seen) if it has none. */
  private slotOf(key: number): number {
    const stored = key + 1;
    const last = this.keys.length - 1;
    for (let slot = hash(key) & last; ; slot = (slot + 1) & last) {
      const at = this.keys[slot] as number;
      if (at === stored) return slot;
      if (at === 0) {
        if ((this.used + 1) * 4 > this.keys.length * 3) {
          this.grow();
          return this.slotOf(key);
        }
        this.keys[slot] = stored;
        this.used++;
        return slot;
      }
    }
  }

  private put(key: number, minute: number, run: number, mask: number): void {
    const slot = this.slotOf(key);
    this.minutes[slot] = minute;
    this.runs[slot] = run;
    this.masks[slot] = mask;
  }

  private grow(): void {
    const { keys, minutes, runs, masks } = this;
    this.allocate(keys.length * 2);
    for (let slot = 0; slot < keys.length; slot++)
      if (keys[slot] !== 0)
        this.put(
          (keys[slot] as number) - 1,
          minutes[slot] as number,
          runs[slot] as number,
          masks[slot] as number,
        );
  }

  private allocate(capacity: number): void {
    this.keys = new Float64Array(capacity);
    this.minutes = new Uint32Array(capacity);
    this.runs = new Uint32Array(capacity);
    this.masks = new Int32Array(capacity);
    this.used = 0;
  }

  private *rowPieces(): Generator<string> {
    const bytes = Buffer.alloc(ROWS_PER_PIECE * ROW_BYTES);
    let at = 0;
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.keys[slot] === 0) continue;
      bytes.writeDoubleLE((this.keys[slot] as number) - 1, at);
      bytes.writeUInt32LE(this.minutes[slot] as number, at + 8);
      bytes.writeUInt32LE(this.runs[slot] as number, at + 12);
      bytes.writeInt32LE(this.masks[slot] as number, at + 16);
      at += ROW_BYTES;
      if (at === bytes.length) {
        yield bytes.toString('base64');
        at = 0;
      }
    }
    if (at > 0) yield bytes.toString('base64', 0, at);
  }

  private spillEntries(): CdrRepeatsSnapshot['spills'] {
    return [...this.spills].map(([key, spill]) => [key, [...spill]]);
  }
}

/** A power of two with room for `rows` at half load (at least 1024). */
function capacityFor(rows: number): number {
  let capacity = 1024;
  while (capacity < rows * 2) capacity *= 2;
  return capacity;
}

/** Spreads (node index, charging id) over the table: charging ids are often sequential. */
function hash(key: number): number {
  let h = Math.imul((key % TWO_32) ^ Math.imul(Math.floor(key / TWO_32), 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
