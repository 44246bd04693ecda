import { crc32 } from 'node:zlib';
import { LogError } from '../errors.js';
import type { AppendRecord, LogRecord } from '../types.js';

/**
 * One entry per record, little-endian (README.md has the table):
 *   0 u32 length (bytes after this field)   4 u32 CRC-32 of bytes 8..end
 *   8 u8 version   9 u8 flags   10 i64 offset   18 i64 timestamp
 *  26 i32 key length (-1: null key)   30 key (UTF-8)   u32 value length   value
 */
export const FORMAT_VERSION = 1;
/** Set on the last entry of an append batch: recovery keeps whole batches only. */
export const FLAG_BATCH_END = 0x01;
export const ENTRY_OVERHEAD = 34;
/** Header bytes up to and including the offset: enough to judge a candidate entry. */
export const PROBE_BYTES = 18;
/** Bigger entries are refused on append and treated as garbage when read. */
export const MAX_ENTRY_BYTES = 16 * 2 ** 20;

const AT_CRC = 4;
const AT_VERSION = 8;
const AT_FLAGS = 9;
const AT_OFFSET = 10;
const AT_TIMESTAMP = 18;
const AT_KEY_LENGTH = 26;
const AT_KEY = 30;
const TWO_32 = 2 ** 32;

// i64 as two halves: exact for every safe integer, no BigInt on the hot path.
function writeInt64(buf: Buffer, value: number, at: number): void {
  const high = Math.floor(value / TWO_32);
  buf.writeUInt32LE(value - high * TWO_32, at);
  buf.writeInt32LE(high, at + 4);
}

function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32LE(at + 4) * TWO_32 + buf.readUInt32LE(at);
}

export interface EncodedBatch {
  buffer: Buffer;
  /** Start of each entry in buffer. */
  positions: number[];
}

/** Encodes a batch; throws LOG_INVALID_ARGUMENT / LOG_RECORD_TOO_LARGE naming the record. */
export function encodeBatch(
  records: readonly AppendRecord[],
  baseOffset: number,
  where: string,
): EncodedBatch {
  const positions: number[] = [];
  const keyBytes: number[] = [];
  let total = 0;
  records.forEach((r, i) => {
    const bad = (what: string) =>
      new LogError('LOG_INVALID_ARGUMENT', `${where}: record ${i} of the batch: ${what}`);
    if (r.key !== null && typeof r.key !== 'string') throw bad('key must be a string or null');
    if (!Buffer.isBuffer(r.value)) throw bad('value must be a Buffer');
    if (!Number.isSafeInteger(r.timestamp)) throw bad(`timestamp ${r.timestamp} is not an integer of ms`);
    const k = r.key === null ? 0 : Buffer.byteLength(r.key, 'utf8');
    const size = ENTRY_OVERHEAD + k + r.value.length;
    if (size > MAX_ENTRY_BYTES)
      throw new LogError(
        'LOG_RECORD_TOO_LARGE',
        `${where}: record ${i} of the batch takes ${size} bytes, over the limit of ${MAX_ENTRY_BYTES}`,
      );
    positions.push(total);
    keyBytes.push(k);
    total += size;
  });
  const buffer = Buffer.allocUnsafe(total);
  records.forEach((r, i) => {
    const at = positions[i] as number;
    const k = keyBytes[i] as number;
    const size = ENTRY_OVERHEAD + k + r.value.length;
    buffer.writeUInt32LE(size - 4, at);
    buffer[at + AT_VERSION] = FORMAT_VERSION;
    buffer[at + AT_FLAGS] = i === records.length - 1 ? FLAG_BATCH_END : 0;
    writeInt64(buffer, baseOffset + i, at + AT_OFFSET);
    writeInt64(buffer, r.timestamp, at + AT_TIMESTAMP);
    buffer.writeInt32LE(r.key === null ? -1 : k, at + AT_KEY_LENGTH);
    if (r.key !== null) buffer.write(r.key, at + AT_KEY, k, 'utf8');
    buffer.writeUInt32LE(r.value.length, at + AT_KEY + k);
    r.value.copy(buffer, at + AT_KEY + k + 4);
    buffer.writeUInt32LE(crc32(buffer.subarray(at + AT_VERSION, at + size)), at + AT_CRC);
  });
  return { buffer, positions };
}

export type EntryProblem = 'incomplete entry' | 'bad length' | 'bad checksum' | 'bad header';

/** Size of the valid entry at `at` (bytes before `end` only), or what is wrong with it. */
export function checkEntry(buf: Buffer, at: number, end: number): number | EntryProblem {
  if (end - at < 4) return 'incomplete entry';
  const size = buf.readUInt32LE(at) + 4;
  if (size < ENTRY_OVERHEAD || size > MAX_ENTRY_BYTES) return 'bad length';
  if (end - at < size) return 'incomplete entry';
  if (crc32(buf.subarray(at + AT_VERSION, at + size)) !== buf.readUInt32LE(at + AT_CRC))
    return 'bad checksum';
  if (buf[at + AT_VERSION] !== FORMAT_VERSION) return 'bad header';
  const keyLength = buf.readInt32LE(at + AT_KEY_LENGTH);
  const k = keyLength === -1 ? 0 : keyLength;
  if (keyLength < -1 || AT_KEY + k + 4 > size) return 'bad header';
  if (AT_KEY + k + 4 + buf.readUInt32LE(at + AT_KEY + k) !== size) return 'bad header';
  return size;
}

/**
 * Cheap test that `at` may start an entry with an offset >= minOffset, before paying for a
 * CRC; needs PROBE_BYTES from `at`.
 */
export function plausibleEntry(buf: Buffer, at: number, end: number, minOffset: number): boolean {
  if (end - at < PROBE_BYTES) return false;
  const size = buf.readUInt32LE(at) + 4;
  return (
    size >= ENTRY_OVERHEAD &&
    size <= MAX_ENTRY_BYTES &&
    buf[at + AT_VERSION] === FORMAT_VERSION &&
    readInt64(buf, at + AT_OFFSET) >= minOffset
  );
}

/** Declared size of the entry at `at` (needs 4 bytes). */
export const entrySize = (buf: Buffer, at: number) => buf.readUInt32LE(at) + 4;
export const entryOffset = (buf: Buffer, at: number) => readInt64(buf, at + AT_OFFSET);
export const entryTimestamp = (buf: Buffer, at: number) => readInt64(buf, at + AT_TIMESTAMP);
export const entryEndsBatch = (buf: Buffer, at: number) =>
  ((buf[at + AT_FLAGS] as number) & FLAG_BATCH_END) !== 0;

/**
 * The record of a checked entry. Its value is a view into `buf`, not a copy: the records of
 * one read share that buffer, which lives as long as any of them.
 */
export function decodeEntry(buf: Buffer, at: number, partition: number): LogRecord {
  const keyLength = buf.readInt32LE(at + AT_KEY_LENGTH);
  const k = keyLength === -1 ? 0 : keyLength;
  const valueAt = at + AT_KEY + k + 4;
  return {
    partition,
    offset: readInt64(buf, at + AT_OFFSET),
    timestamp: readInt64(buf, at + AT_TIMESTAMP),
    key: keyLength === -1 ? null : buf.toString('utf8', at + AT_KEY, at + AT_KEY + k),
    value: buf.subarray(valueAt, valueAt + buf.readUInt32LE(at + AT_KEY + k)),
  };
}
