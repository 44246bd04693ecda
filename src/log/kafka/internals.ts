/**
 * The two pieces of kafkajs that its public API does not offer, in one place.
 *
 * kafkajs has no manual partition assignment (tulios/kafkajs#373, open since 2019): its
 * consumer joins a group, is pushed records and cannot read a partition at an offset on
 * request. Random-access reads need a Fetch request to the partition leader at a given
 * offset, which kafkajs's Cluster and Broker classes make (its consumer uses them); the
 * types of both are exported, only the Cluster factory is private. kafkajs 2.2.4 is its
 * last release (2023), so these internals do not move under us; the dependency is pinned
 * and test/log-kafka.test.ts covers every call made through them.
 */
import { createRequire } from 'node:module';
import type { Cluster, Kafka } from 'kafkajs';
import { LogError } from '../errors.js';

/** kafkajs's isolation levels: READ_COMMITTED hides aborted transactions and control records. */
export const READ_COMMITTED = 1;

/** A record as kafkajs decodes it from a fetch response. */
export interface FetchedMessage {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord?: boolean;
}

/** One partition of a fetch response. */
export interface FetchedPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  lastStableOffset: string;
  abortedTransactions: unknown[];
  messages: FetchedMessage[];
}

/** kafkajs's consumer Batch: drops records below the fetched offset, aborted ones and control records. */
interface Batch {
  /** What a reader may see. */
  messages: FetchedMessage[];
  /** Every record at or after the fetched offset, before filtering. */
  messagesWithinOffset: FetchedMessage[];
}
type BatchClass = new (topic: string, fetchedOffset: string, partition: FetchedPartition) => Batch;

const require = createRequire(import.meta.url);
const BatchOfKafkaJs = require('kafkajs/src/consumer/batch.js') as BatchClass;

export const filterFetched = (topic: string, fromOffset: number, partition: FetchedPartition): Batch =>
  new BatchOfKafkaJs(topic, String(fromOffset), partition);

const CREATE_CLUSTER = 'private:Kafka:createCluster';

/**
 * A Cluster made by the client's own private factory, so it shares the client's brokers,
 * TLS, SASL, timeouts, retry and logger. Metadata is kept for the topics added to it.
 */
export function createCluster(kafka: Kafka): Cluster {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER);
  const factory = symbol && (kafka as unknown as Record<symbol, unknown>)[symbol];
  if (typeof factory !== 'function')
    throw new LogError(
      'LOG_INVALID_ARGUMENT',
      'this kafkajs has no Cluster factory; the Kafka log needs kafkajs 2.2.x (see src/log/kafka/internals.ts)',
    );
  return (factory as (options: object) => Cluster)({
    metadataMaxAge: 300_000,
    allowAutoTopicCreation: false,
    isolationLevel: READ_COMMITTED,
  });
}
