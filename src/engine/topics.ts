/**
 * The engine's topics, in one place: what `data-streamer kafka init` creates and what the
 * engine opens. Per-partition topics have the raw topic's partition count (a processor
 * writes its outputs to its own partition); the organisation stage has one partition.
 */
import { ORGANISATION_TOPICS } from './organisation-runner.js';
import { OUTPUT_TOPICS } from './processor.js';

export interface TopicLayout {
  /** The engine's own name for it: raw, events, usage, ... */
  role: string;
  /** The name on the log: the prefix (Kafka; '' embedded) and the role. */
  name: string;
  partitions: number;
}

export function engineTopics(partitions: number, prefix = ''): TopicLayout[] {
  return [
    { role: 'raw', name: `${prefix}raw`, partitions },
    // Where sources that cannot partition by endpoint produce; re-keyed onto raw (rekey.ts).
    { role: 'ingest', name: `${prefix}ingest`, partitions },
    ...OUTPUT_TOPICS.map((role) => ({ role, name: `${prefix}${role}`, partitions })),
    ...ORGANISATION_TOPICS.map((role) => ({ role, name: `${prefix}${role}`, partitions: 1 })),
  ];
}
