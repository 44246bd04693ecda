import { KeyTable, NameNumbers } from './key-table.js';

/**
 * The repeat window of records identified by one id (signaling transactions, SMS,
 * commands): each id seen, with the minute of its record's event time.
 *
 * Ids are text, but mostly a prefix and a running number ("core1-4711"). Such an id is
 * kept as an exact number, prefix index x 2^40 + running number, in a row of 12 bytes
 * (key-table.ts) instead of a Map entry of 70 to 80 bytes. Any other id (no trailing
 * digits, a leading zero, more than 2^40, too many prefixes) is kept under its text, so
 * the window is exact for every id.
 */

/** Running numbers below this fit a row; prefixes get an index below 2^13, so a key stays below 2^53. */
const NUMBER_LIMIT = 2 ** 40;
const MAX_PREFIXES = 1 << 13;
const MINUTE = 0;

/**
 * The snapshot form: rows in base64 pieces (key-table.ts), other ids as entries (a Map, or
 * an entry list in snapshots written before the steps format).
 */
export interface IdWindowSnapshot {
  prefixes: string[];
  rows: string[];
  odd: Iterable<[string, number]>;
}

export class IdWindow {
  private prefixes = new NameNumbers(MAX_PREFIXES);
  private rows = new KeyTable(1);
  /** Ids that fit no row, with their minute. */
  private odd = new Map<string, number>();

  get size(): number {
    return this.rows.size + this.odd.size;
  }

  /** True when `id` was seen before; otherwise it is recorded at `minute` and false is returned. */
  repeat(id: string, minute: number): boolean {
    const key = this.keyOf(id);
    if (key < 0) {
      if (this.odd.has(id)) return true;
      this.odd.set(id, minute);
      return false;
    }
    const known = this.rows.size;
    const slot = this.rows.insert(key);
    if (this.rows.size === known) return true;
    (this.rows.columns[MINUTE] as Uint32Array)[slot] = minute;
    return false;
  }

  /** Forgets ids whose record is older than `minute`. */
  forgetBefore(minute: number): void {
    this.rows.retain((columns, slot) => ((columns[MINUTE] as Uint32Array)[slot] as number) >= minute);
    for (const [id, at] of this.odd) if (at < minute) this.odd.delete(id);
  }

  /** The snapshot form, the rows a few at a time (src/engine/snapshot.ts writes it in steps). */
  snapshotTable(): { head: Omit<IdWindowSnapshot, 'rows'>; rows: Iterable<string> } {
    return { head: { prefixes: this.prefixes.names, odd: this.odd }, rows: this.rows.pieces() };
  }

  static restore(snapshot: IdWindowSnapshot): IdWindow {
    const window = new IdWindow();
    window.prefixes = new NameNumbers(MAX_PREFIXES, snapshot.prefixes);
    window.rows = KeyTable.restore(1, snapshot.rows);
    window.odd = new Map(snapshot.odd);
    return window;
  }

  /** From the window of earlier snapshots: id -> minute. */
  static fromEntries(seen: Map<string, number>): IdWindow {
    const window = new IdWindow();
    for (const [id, minute] of seen) window.repeat(id, minute);
    return window;
  }

  /** The row key of an id, or -1 when it has none. */
  private keyOf(id: string): number {
    // The trailing digits, read as a number on the way (exact up to 13 digits).
    let start = id.length;
    let number = 0;
    for (let place = 1; start > 0; place *= 10) {
      const c = id.charCodeAt(start - 1);
      if (c < 48 || c > 57) break;
      number += (c - 48) * place;
      start--;
    }
    const digits = id.length - start;
    // "007" and "7" are different ids: a leading zero has no row.
    if (digits === 0 || digits > 13 || (digits > 1 && id.charCodeAt(start) === 48)) return -1;
    if (number >= NUMBER_LIMIT) return -1;
    const index = this.prefixes.numberOf(id.slice(0, start));
    return index < 0 ? -1 : index * NUMBER_LIMIT + number;
  }
}
