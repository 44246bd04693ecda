import { LogError } from '../errors.js';
import type { AppendRecord, LogRecord } from '../types.js';
import type { FetchedMessage } from './internals.js';

/**
 * A record's size as the embedded log counts it on disk (34 bytes + key + value), so that
 * maxBytes and the 16 MiB record limit mean the same with either log.
 */
const RECORD_OVERHEAD = 34;
export const MAX_RECORD_BYTES = 16 * 2 ** 20;

export const recordBytes = (keyBytes: number, valueBytes: number) => RECORD_OVERHEAD + keyBytes + valueBytes;

/**
 * Checks a batch like the embedded log does, plus timestamps >= 0 (Kafka keeps -1 for "no
 * timestamp" and refuses other negative ones), and splits it into runs of at most
 * maxBatchBytes (a record bigger than that goes alone). Throws LOG_INVALID_ARGUMENT /
 * LOG_RECORD_TOO_LARGE naming the record.
 */
export function chunkBatch(
  records: readonly AppendRecord[],
  maxBatchBytes: number,
  where: string,
): AppendRecord[][] {
  if (!Array.isArray(records))
    throw new LogError('LOG_INVALID_ARGUMENT', `${where}: records must be an array`);
  const chunks: AppendRecord[][] = [];
  let chunk: AppendRecord[] = [];
  let bytes = 0;
  records.forEach((r, i) => {
    const bad = (what: string) =>
      new LogError('LOG_INVALID_ARGUMENT', `${where}: record ${i} of the batch: ${what}`);
    if (typeof r !== 'object' || r === null) throw bad('not a record');
    if (r.key !== null && typeof r.key !== 'string') throw bad('key must be a string or null');
    if (!Buffer.isBuffer(r.value)) throw bad('value must be a Buffer');
    if (!Number.isSafeInteger(r.timestamp) || r.timestamp < 0)
      throw bad(`timestamp ${r.timestamp} is not an integer of ms >= 0`);
    const size = recordBytes(r.key === null ? 0 : Buffer.byteLength(r.key, 'utf8'), r.value.length);
    if (size > MAX_RECORD_BYTES)
      throw new LogError(
        'LOG_RECORD_TOO_LARGE',
        `${where}: record ${i} of the batch takes ${size} bytes, over the limit of ${MAX_RECORD_BYTES}`,
      );
    if (chunk.length > 0 && bytes + size > maxBatchBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(r);
    bytes += size;
  });
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * The records to return from what a fetch gave: in order, at most maxRecords, within
 * maxBytes except that the first one always comes. Keys are UTF-8; a null value (a
 * tombstone, which this log never writes) reads as an empty Buffer. Values are copied out
 * of the response buffer, so a kept record does not pin the whole response in memory.
 */
export function toRecords(
  messages: readonly FetchedMessage[],
  partition: number,
  maxRecords: number,
  maxBytes: number,
): LogRecord[] {
  const out: LogRecord[] = [];
  let bytes = 0;
  for (const m of messages) {
    if (out.length >= maxRecords) break;
    const key = m.key == null ? null : m.key.toString('utf8');
    const value = m.value == null ? Buffer.alloc(0) : Buffer.from(m.value);
    const size = recordBytes(m.key?.length ?? 0, value.length);
    if (out.length > 0 && bytes + size > maxBytes) break;
    bytes += size;
    out.push({ partition, offset: Number(m.offset), key, value, timestamp: Number(m.timestamp) });
  }
  return out;
}
