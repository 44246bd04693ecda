import { KeyTable, NameNumbers } from './key-table.js';

/**
 * The repeat window of data CDRs, kept per bearer instead of per CDR.
 *
 * A CDR is identified by (node, charging id, sequence number), and a bearer's sequence
 * numbers run 1, 2, 3... So per (node, charging id) it is enough to know the highest n
 * with 1..n all seen, and which of the next 32 were seen (a bit mask). That is one row
 * of 20 bytes in typed arrays per bearer (key-table.ts), where a Map of string keys took
 * about 70 bytes per CDR (a bearer has about six) and gave the garbage collector millions
 * of objects to mark.
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
// The columns of a row:
/** The latest minute (event time) of the bearer's CDRs: the row is forgotten 48 hours after it. */
const MINUTE = 0;
/** Highest n with sequence numbers 1..n all seen. */
const RUN = 1;
/** Bit i: sequence number run + 1 + i seen. */
const MASK = 2;

/**
 * The snapshot form: rows in base64 pieces (key-table.ts), the Maps as entries (Maps, or
 * entry lists in snapshots written before the steps format).
 */
export interface CdrRepeatsSnapshot {
  nodes: string[];
  rows: string[];
  /** Row key -> (sequence -> minute). */
  spills: Iterable<[number, Iterable<[number, number]>]>;
  odd: Iterable<[string, number]>;
}

export class CdrRepeats {
  private nodes = new NameNumbers(MAX_NODES);
  /** Per (node index x 2^32 + charging id): minute, run, mask. */
  private rows = new KeyTable(3);
  /** Sequence numbers beyond a row's mask, per row key, with their minute. */
  private spills = new Map<number, Map<number, number>>();
  /** CDRs that fit no row, by "node/charging id/sequence", with their minute. */
  private odd = new Map<string, number>();

  /** Bearers with a row, and CDRs kept outside the rows. */
  get size(): { rows: number; outside: number } {
    let outside = this.odd.size;
    for (const spill of this.spills.values()) outside += spill.size;
    return { rows: this.rows.size, outside };
  }

  /**
   * True when this CDR was seen before; otherwise it is recorded (at `minute`, its event
   * time) and false is returned.
   */
  repeat(node: string, chargingId: number, sequence: number, minute: number): boolean {
    const nodeId = this.nodes.numberOf(node);
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
    const slot = this.rows.insert(key);
    const columns = this.rows.columns;
    const minutes = columns[MINUTE] as Uint32Array;
    const runs = columns[RUN] as Uint32Array;
    const masks = columns[MASK] as Uint32Array;
    if (minute > (minutes[slot] as number)) minutes[slot] = minute;
    const run = runs[slot] as number;
    if (sequence <= run) return true;
    const bit = sequence - run - 1;
    if (bit >= MASK_BITS) {
      const spill = this.spills.get(key) ?? new Map<number, number>();
      if (spill.has(sequence)) return true;
      spill.set(sequence, minute);
      this.spills.set(key, spill);
      return false;
    }
    const mask = masks[slot] as number;
    if (mask & (1 << bit)) return true;
    masks[slot] = mask | (1 << bit);
    if (bit === 0) this.advanceRun(slot, key);
    return false;
  }

  /** Forgets bearers whose latest CDR, and CDRs kept outside rows, are older than `minute`. */
  forgetBefore(minute: number): void {
    this.rows.retain((columns, slot) => ((columns[MINUTE] as Uint32Array)[slot] as number) >= minute);
    for (const [key, spill] of this.spills) {
      for (const [sequence, at] of spill) if (at < minute) spill.delete(sequence);
      if (spill.size === 0) this.spills.delete(key);
    }
    for (const [key, at] of this.odd) if (at < minute) this.odd.delete(key);
  }

  /** The snapshot form, the rows a few at a time (src/engine/snapshot.ts writes it in steps). */
  snapshotTable(): { head: Omit<CdrRepeatsSnapshot, 'rows'>; rows: Iterable<string> } {
    return {
      head: { nodes: this.nodes.names, spills: this.spills, odd: this.odd },
      rows: this.rows.pieces(),
    };
  }

  static restore(snapshot: CdrRepeatsSnapshot): CdrRepeats {
    const repeats = new CdrRepeats();
    repeats.nodes = new NameNumbers(MAX_NODES, snapshot.nodes);
    repeats.rows = KeyTable.restore(3, snapshot.rows);
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

  private oddRepeat(key: string, minute: number): boolean {
    if (this.odd.has(key)) return true;
    this.odd.set(key, minute);
    return false;
  }

  /** Moves the run past every seen sequence number, taking in spilled ones as the mask reaches them. */
  private advanceRun(slot: number, key: number): void {
    const runs = this.rows.columns[RUN] as Uint32Array;
    const masks = this.rows.columns[MASK] as Uint32Array;
    let run = runs[slot] as number;
    let mask = masks[slot] as number;
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
    runs[slot] = run;
    masks[slot] = mask;
  }
}
