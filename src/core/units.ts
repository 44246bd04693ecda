import { DECIMAL_ONE, divideHalfUp, formatFixed } from './decimal.js';

/** 1 KB = 1024 bytes and 1 MB = 1024 KB (docs/units.md): emnify does not say, we do. */
export const BYTES_PER_KB = 1024n;
export const BYTES_PER_MB = 1024n * 1024n;

/** Bytes as MB with 6 decimals, rounded half-up: the volume fields of events and usage records. */
export function bytesToMb(bytes: bigint): string {
  return formatFixed(divideHalfUp(bytes * DECIMAL_ONE, BYTES_PER_MB), 6);
}

/** A decimal MB amount (10^-10 units) as whole bytes, rounded down: a limit is never exceeded by rounding. */
export function mbToBytes(mbUnits: bigint): bigint {
  return (mbUnits * BYTES_PER_MB) / DECIMAL_ONE;
}
