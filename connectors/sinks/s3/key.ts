/**
 * The object key of a batch. It is a pure function of the batch, so a retried upload
 * overwrites the object of the failed attempt instead of adding a second copy:
 *
 *   [<prefix>/]<streamId>/<usage|events>/year=YYYY/month=MM/day=DD/hour=HH/
 *     <streamId>+<topic>+<partition>+<offset>.<csv|ndjson.gz>
 *
 * Time bucket and name come from the batch's first record (its event time in UTC, and its
 * place on the output log). emnify does not publish its own layout; this one follows the
 * Kafka Connect S3 sink that emnify's flush_size/rotate_interval names point to.
 */
import type { SinkBatch } from '../types.js';

export function objectKey(batch: SinkBatch, prefix: string | undefined, extension: string): string {
  const first = batch.records[0];
  if (!first) throw new Error('objectKey: a batch is never empty');
  const time = new Date(first.timestamp);
  const two = (n: number) => String(n).padStart(2, '0');
  const folder = prefix ? `${prefix.replace(/\/+$/, '')}/` : '';
  return (
    `${folder}${batch.streamId}/${batch.recordType}/` +
    `year=${String(time.getUTCFullYear()).padStart(4, '0')}/month=${two(time.getUTCMonth() + 1)}/` +
    `day=${two(time.getUTCDate())}/hour=${two(time.getUTCHours())}/` +
    `${batch.streamId}+${first.topic}+${first.partition}+${first.offset}.${extension}`
  );
}
