/**
 * In-memory sparse index of one segment: one block per `intervalBytes` of entries, with the
 * first offset and byte position of the block and the newest timestamp in it. Reads seek to
 * a block instead of scanning the segment; offsetForTime and time retention skip blocks by
 * their newest timestamp (timestamps need not be in order).
 */
export class SparseIndex {
  private readonly offsets: number[] = [];
  private readonly positions: number[] = [];
  private readonly maxTimestamps: number[] = [];
  /** Newest timestamp in the segment; -Infinity when empty. */
  maxTimestamp = Number.NEGATIVE_INFINITY;

  constructor(private readonly intervalBytes: number) {}

  add(offset: number, position: number, timestamp: number): void {
    const last = this.positions.length - 1;
    if (last < 0 || position - (this.positions[last] as number) >= this.intervalBytes) {
      this.offsets.push(offset);
      this.positions.push(position);
      this.maxTimestamps.push(timestamp);
    } else if (timestamp > (this.maxTimestamps[last] as number)) {
      this.maxTimestamps[last] = timestamp;
    }
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
  }

  get blocks(): number {
    return this.positions.length;
  }

  blockPosition(block: number): number {
    return this.positions[block] as number;
  }

  blockMaxTimestamp(block: number): number {
    return this.maxTimestamps[block] as number;
  }

  /** Byte position of the last block starting at or before `offset` (0 when none does). */
  floor(offset: number): number {
    let lo = 0;
    let hi = this.offsets.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.offsets[mid] as number) <= offset) {
        found = this.positions[mid] as number;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
