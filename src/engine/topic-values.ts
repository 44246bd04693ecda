import { topicRecords } from '../log/read.js';
import type { Topic } from '../log/types.js';

/** Every record of a topic as text, partition after partition, from the oldest retained. */
export async function* topicValues(topic: Topic): AsyncGenerator<string> {
  for await (const record of topicRecords(topic)) yield record.value.toString('utf8');
}
