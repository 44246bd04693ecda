import { DECIMAL_ONE, divideHalfUp, formatFixed } from './decimal.js';

/** 1 KB = 1024 bytes and 1 MB = 1024 KB (docs/units.md): emnify does not say, we do. */
export const BYTES_PER_KB = 1024n;
export const BYTES_PER_MB = 1024n * 1024n;

/** bytes * 10^6 / 2^20 = bytes * 15625 / 16384; exact in a double up to this many bytes (~576 GB). */
const MAX_FAST_BYTES = BigInt(Math.floor((Number.MAX_SAFE_INTEGER - 8192) / 15625));

/** Bytes as MB with 6 decimals, rounded half-up: the volume fields of events and usage records. */
export function bytesToMb(bytes: bigint): string {
  // Two of these per usage record and event: integer arithmetic in doubles (exact in this
  // range) instead of BigInts at 10^-10 scale, which allocate.
  if (bytes >= 0n && bytes <= MAX_FAST_BYTES) {
    const millionths = Math.floor((Number(bytes) * 15625 + 8192) / 16384);
    const fraction = millionths % 1_000_000;
    return `${(millionths - fraction) / 1_000_000}.${String(fraction).padStart(6, '0')}`;
  }
  return formatFixed(divideHalfUp(bytes * DECIMAL_ONE, BYTES_PER_MB), 6);
}

/** A decimal MB amount (10^-10 units) as whole bytes, rounded down: a limit is never exceeded by rounding. */
export function mbToBytes(mbUnits: bigint): bigint {
  return (mbUnits * BYTES_PER_MB) / DECIMAL_ONE;
}
