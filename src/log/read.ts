/** Reading a topic to its end, the loop every reader of the log needs. */
import type { LogRecord, Topic } from './types.js';

/** The records of one partition from `offset` up to its end now, in order. */
export async function* recordsFrom(
  topic: Topic,
  partition: number,
  offset: number,
): AsyncGenerator<LogRecord> {
  for (let next = offset; ; ) {
    const batch = await topic.read(partition, next, 10_000);
    if (batch.length === 0) return;
    yield* batch;
    // Offsets may have gaps (Kafka): go on after the last record read.
    next = (batch[batch.length - 1]?.offset ?? next) + 1;
  }
}

/** Every record of a topic, partition after partition, from the oldest retained. */
export async function* topicRecords(topic: Topic): AsyncGenerator<LogRecord> {
  for (let p = 0; p < topic.partitions; p++) yield* recordsFrom(topic, p, await topic.startOffset(p));
}
