/**
 * The Pub/Sub message for one record: the record's JSON text as data, its endpoint id as
 * ordering key, and attributes that let subscriptions filter without parsing the body.
 */
import type { Attributes } from '@google-cloud/pubsub';
import { recordBytes, type SinkBatch, type SinkRecord } from '../types.js';

export interface RecordMessage {
  data: Buffer;
  /** Absent for records without an endpoint (organisation-level events): no ordering for them. */
  orderingKey?: string;
  attributes: Attributes;
}

/** Pub/Sub refuses messages above 10 MB (data plus attributes and ordering key). */
export const MAX_MESSAGE_BYTES = 10_000_000;

export function recordMessage(record: SinkRecord, batch: SinkBatch): RecordMessage {
  const attributes: Attributes = {
    record_type: batch.recordType,
    record_id: String(record.id),
    stream_id: batch.streamId,
  };
  if (record.eventTypeId !== undefined) attributes.event_type_id = String(record.eventTypeId);
  const message: RecordMessage = { data: recordBytes(record), attributes };
  if (record.key) message.orderingKey = record.key;
  return message;
}

/** Size as Pub/Sub counts it against its per-message limit. */
export function messageBytes(message: RecordMessage): number {
  let bytes = message.data.byteLength + Buffer.byteLength(message.orderingKey ?? '');
  for (const [name, value] of Object.entries(message.attributes))
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  return bytes;
}
