import { recordBytes, type SinkBatch } from '../types.js';
import type { WebhookConfig } from './config.js';
import { SIGNATURE_HEADER, signatureHeaderValue } from './signature.js';

export const STREAM_HEADER = 'X-Data-Streamer-Stream';
export const BATCH_HEADER = 'X-Data-Streamer-Batch';

/**
 * The request body: the records' own JSON texts, never re-serialised. A JSON array of them,
 * or the bare object when the stream's batch size is 1 (`bare`, emnify's `size: 1`).
 */
export function encodeBody(batch: SinkBatch): Buffer {
  const first = batch.records[0];
  if (batch.bare) return first ? recordBytes(first) : Buffer.alloc(0);
  const texts = batch.records.map(recordBytes);
  let length = 2;
  for (const text of texts) length += text.length + 1;
  // One buffer filled in place: half the copying calls of Buffer.concat over records and commas.
  const body = Buffer.allocUnsafe(texts.length === 0 ? 2 : length - 1);
  let at = 0;
  body[at++] = 0x5b; // [
  texts.forEach((text, i) => {
    if (i > 0) body[at++] = 0x2c; // ,
    body.set(text, at);
    at += text.length;
  });
  body[at] = 0x5d; // ]
  return body;
}

/**
 * Names the batch by where its first record sits on the output log, so a retried batch
 * carries the same id and a receiver can drop it as a duplicate.
 */
export function batchId(batch: SinkBatch): string {
  const first = batch.records[0];
  return first ? `${batch.streamId}-${first.topic}-${first.partition}-${first.offset}` : batch.streamId;
}

/** Headers as undici's flat [name, value, name, value, ...] list, which keeps duplicates. */
export function requestHeaders(
  config: WebhookConfig,
  batch: SinkBatch,
  body: Buffer,
  nowMs: number,
): string[] {
  const out: string[] = [];
  for (const [name, value] of config.headers) out.push(name, value);
  out.push('Content-Type', 'application/json');
  out.push(STREAM_HEADER, batch.streamId, BATCH_HEADER, batchId(batch));
  if (config.signingSecret)
    out.push(SIGNATURE_HEADER, signatureHeaderValue(config.signingSecret, Math.floor(nowMs / 1000), body));
  return out;
}
