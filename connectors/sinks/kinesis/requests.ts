/**
 * Turns a batch into PutRecords requests: one Kinesis record per output record, packed in
 * batch order into requests that respect the API's limits. Pure: no I/O, no SDK client.
 */
import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { recordBytes, type SinkRecord } from '../types.js';

/**
 * PutRecords limits that every stream accepts. The SDK's documentation now mentions records
 * and requests of up to 10 MiB (a newer per-stream setting); the classic 1 MiB per record
 * and 5 MiB per request hold for every stream, so we keep to them.
 */
export const KINESIS_LIMITS = {
  recordsPerRequest: 500,
  /** Data plus partition key, in bytes. */
  requestBytes: 5 * 1024 * 1024,
  /** Data plus partition key, in bytes. */
  recordBytes: 1024 * 1024,
  /** In Unicode code points. */
  partitionKeyChars: 256,
} as const;

export type KinesisLimits = { [K in keyof typeof KINESIS_LIMITS]: number };

/** One PutRecords call: its entries and, for each, the index of its record in batch.records. */
export interface PutRecordsPlan {
  indices: number[];
  entries: PutRecordsRequestEntry[];
  /** Data plus partition keys, the size Kinesis counts against its limit. */
  bytes: number;
}

/** A record Kinesis can never accept, whatever we retry. */
export interface UnsendableRecord {
  index: number;
  id: number;
  reason: string;
}

/**
 * The endpoint id keeps one endpoint's records on one shard, in order. Records without an
 * endpoint (organisation-level events) fall back to their output partition number, as
 * emnify's Kinesis connector does with Kafka records without a key: they spread over
 * shards, and one log partition's keyless records still share a shard and its order.
 */
export function partitionKeyOf(record: SinkRecord): string {
  return record.key ? record.key : String(record.partition);
}

/**
 * Packs the records into as few requests as the limits allow, keeping batch order (each
 * request is a contiguous slice of the batch). Records that no request could carry are
 * returned instead, so the caller can fail the batch before anything is sent.
 */
export function planPutRecords(
  records: readonly SinkRecord[],
  limits: KinesisLimits = KINESIS_LIMITS,
): { requests: PutRecordsPlan[]; unsendable: UnsendableRecord[] } {
  const requests: PutRecordsPlan[] = [];
  const unsendable: UnsendableRecord[] = [];
  let current: PutRecordsPlan = { indices: [], entries: [], bytes: 0 };

  records.forEach((record, index) => {
    const key = partitionKeyOf(record);
    const keyChars = [...key].length;
    if (keyChars > limits.partitionKeyChars) {
      unsendable.push({ index, id: record.id, reason: `partition key of ${keyChars} characters` });
      return;
    }
    const data = recordBytes(record);
    const bytes = data.byteLength + Buffer.byteLength(key, 'utf8');
    if (bytes > limits.recordBytes) {
      unsendable.push({ index, id: record.id, reason: `${bytes} bytes with its partition key` });
      return;
    }
    const full =
      current.entries.length === limits.recordsPerRequest || current.bytes + bytes > limits.requestBytes;
    if (full) {
      requests.push(current);
      current = { indices: [], entries: [], bytes: 0 };
    }
    current.indices.push(index);
    current.entries.push({ Data: data, PartitionKey: key });
    current.bytes += bytes;
  });
  if (current.entries.length > 0) requests.push(current);
  return { requests, unsendable };
}
