import type { Topic } from '../log/types.js';

/** Every record of a topic as text, partition after partition, from the oldest retained. */
export async function* topicValues(topic: Topic): AsyncGenerator<string> {
  for (let p = 0; p < topic.partitions; p++) {
    let offset = await topic.startOffset(p);
    for (;;) {
      const batch = await topic.read(p, offset, 10_000);
      if (batch.length === 0) break;
      for (const record of batch) yield record.value.toString('utf8');
      offset = (batch[batch.length - 1]?.offset ?? offset) + 1;
    }
  }
}
