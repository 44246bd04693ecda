import {
  type Admin,
  type ITopicConfig,
  Kafka,
  type LogEntry,
  type logCreator,
  logLevel,
  Partitioners,
} from 'kafkajs';
import { SerialQueue } from '../embedded/serial.js';
import { checkTopicRequest } from '../embedded/validate.js';
import { LogError } from '../errors.js';
import type { Log, TopicConfig } from '../types.js';
import { KafkaCursorStore } from './cursors.js';
import { asKafkaLogError, withRetries } from './errors.js';
import { createCluster } from './internals.js';
import {
  type KafkaLogLevel,
  type KafkaLogOptions,
  kafkaLimit,
  type ResolvedKafkaOptions,
  resolveKafkaOptions,
} from './options.js';
import { MAX_RECORD_BYTES } from './records.js';
import { type KafkaClients, KafkaTopic } from './topic.js';

const MAX_PARTITIONS = 10_000;
const LONG_MAX = '9223372036854775807';

/**
 * kafkajs's console log, except that an error answer to one request ("[Connection]
 * Response Fetch ... offset out of range", "topic already exists", "not the leader" just
 * after a topic was created) is debug, not error: each is retried or reaches the caller as
 * a LogError, and most are part of normal operation here.
 */
const kafkaJsLogger: logCreator = (configured) => (entry: LogEntry) => {
  const demoted =
    entry.level === logLevel.ERROR &&
    (entry.namespace === 'Connection' || entry.log.message.startsWith('Failed to send messages'));
  const level = demoted ? logLevel.DEBUG : entry.level;
  if (level > configured) return;
  const text = JSON.stringify({
    level: demoted ? 'DEBUG' : entry.label,
    ...entry.log,
    message: `${entry.namespace ? `[${entry.namespace}] ` : ''}${entry.log.message}`,
  });
  if (level <= logLevel.WARN) console.error(text);
  else console.log(text);
};

const LEVELS: Record<KafkaLogLevel, logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/**
 * A kafkajs client of these options (brokers, TLS, SASL, timeouts, retries, log level):
 * the log's own, and the consumer-group membership of a replica (src/engine/group-member.ts).
 */
export function kafkaClient(options: KafkaLogOptions): Kafka {
  const o = resolveKafkaOptions(options);
  return new Kafka({
    clientId: o.clientId,
    brokers: [...o.brokers],
    connectionTimeout: o.connectionTimeoutMs,
    requestTimeout: o.requestTimeoutMs,
    retry: { retries: o.retries, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: LEVELS[o.logLevel],
    logCreator: kafkaJsLogger,
    ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
    ...(o.sasl !== undefined ? { sasl: o.sasl } : {}),
  });
}

/**
 * The log on Kafka, for distributed mode: the same interface and semantics as the embedded
 * log (src/log/README.md), with Kafka's offsets, durability and retention. One idempotent
 * producer, one admin client and one metadata/fetch cluster connection per log.
 * src/log/kafka/README.md has the design and the differences.
 */
export class KafkaLog implements Log {
  private readonly topics = new Map<string, { partitions: number; topic: Promise<KafkaTopic> }>();
  /**
   * Append queues per topic, kept across close and reopen of a topic so that appends of the
   * old and the new object never interleave (the producer's sequence numbers need that).
   */
  private readonly queues = new Map<string, SerialQueue[]>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly clients: KafkaClients,
    private readonly admin: Admin,
    readonly cursors: KafkaCursorStore,
  ) {}

  /** Connects to the brokers; rejects with a retriable LOG_IO when they cannot be reached. */
  static async open(options: KafkaLogOptions): Promise<KafkaLog> {
    const o = resolveKafkaOptions(options);
    const kafka = kafkaClient(o);
    const admin = kafka.admin();
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Every record names its partition; this only keeps kafkajs from warning.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const cluster = createCluster(kafka);
    try {
      await Promise.all([admin.connect(), producer.connect(), cluster.connect()]);
    } catch (error) {
      await Promise.allSettled([admin.disconnect(), producer.disconnect(), cluster.disconnect()]);
      throw asKafkaLogError(error, 'cannot open the Kafka log', o.brokers);
    }
    return new KafkaLog({ options: o, producer, cluster }, admin, new KafkaCursorStore(cluster, o));
  }

  get options(): ResolvedKafkaOptions {
    return this.clients.options;
  }

  /**
   * Opens the topic, creating it if missing with this many partitions, the log's
   * replication factor and the retention of `config` (else the log's). An existing
   * topic keeps its own configuration; another partition count is LOG_TOPIC_MISMATCH.
   */
  topic(name: string, partitions: number, config: TopicConfig = {}): Promise<KafkaTopic> {
    try {
      if (this.closing) throw new LogError('LOG_CLOSED', 'the Kafka log is closed');
      checkTopicRequest(name, partitions, config, MAX_PARTITIONS);
    } catch (error) {
      return Promise.reject(error);
    }
    const cached = this.topics.get(name);
    if (cached) {
      if (cached.partitions !== partitions)
        return Promise.reject(mismatch(name, cached.partitions, partitions));
      return cached.topic;
    }
    const entry = {
      partitions,
      topic: this.openTopic(name, partitions, config).catch((error: unknown) => {
        throw asKafkaLogError(error, `cannot open topic ${name}`, this.options.brokers, { topic: name });
      }),
    };
    this.topics.set(name, entry);
    entry.topic.catch(() => this.forget(name, entry));
    return entry.topic;
  }

  /** Finishes the appends and commits under way, then disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const topics = [...this.topics.values()].map(({ topic }) =>
        topic.then(
          (t) => t.close(),
          () => undefined,
        ),
      );
      await Promise.allSettled([...topics, this.cursors.close()]);
      const { producer, cluster } = this.clients;
      const results = await Promise.allSettled([
        producer.disconnect(),
        this.admin.disconnect(),
        cluster.disconnect(),
      ]);
      const failure = results.find((r) => r.status === 'rejected');
      if (failure) throw asKafkaLogError(failure.reason, 'closing the Kafka log', this.options.brokers);
    })();
    return this.closing;
  }

  /**
   * Partition counts of those of these topics that exist, without creating any (topic()
   * creates a missing one): for tools that must only look, such as `kafka topics`.
   */
  async existingTopics(names: readonly string[]): Promise<Map<string, number>> {
    const { options } = this.clients;
    try {
      return await withRetries(options.retries, async () => {
        const listed = new Set(await this.admin.listTopics());
        const present = names.filter((name) => listed.has(name));
        const counts = new Map<string, number>();
        if (present.length === 0) return counts;
        for (const topic of (await this.admin.fetchTopicMetadata({ topics: present })).topics)
          counts.set(topic.name, topic.partitions.length);
        return counts;
      });
    } catch (error) {
      throw asKafkaLogError(error, 'listing the topics', options.brokers);
    }
  }

  private async openTopic(name: string, partitions: number, config: TopicConfig): Promise<KafkaTopic> {
    const { options, cluster } = this.clients;
    // Resolves false when the topic exists already: then its partition count decides.
    await withRetries(options.retries, () =>
      this.admin.createTopics({
        waitForLeaders: true,
        timeout: options.requestTimeoutMs,
        topics: [
          {
            topic: name,
            numPartitions: partitions,
            replicationFactor: options.replicationFactor,
            configEntries: topicConfig(options, config),
          },
        ],
      }),
    );
    const actual = await withRetries(
      options.retries,
      async () => {
        await cluster.addTargetTopic(name);
        await cluster.refreshMetadata();
        const metadata = cluster.findTopicPartitionMetadata(name);
        if (metadata.length === 0 || metadata.some((p) => p.leader === undefined || p.leader < 0))
          throw new LogError('LOG_IO', `topic ${name} has no leaders yet`, { topic: name }, 'retriable');
        return metadata.length;
      },
      () => cluster.refreshMetadata(),
    );
    if (actual !== partitions) throw mismatch(name, actual, partitions);
    let queues = this.queues.get(name);
    if (!queues) {
      queues = Array.from({ length: partitions }, () => new SerialQueue());
      this.queues.set(name, queues);
    }
    const entry = this.topics.get(name);
    const topic = new KafkaTopic(name, partitions, this.clients, queues, () => {
      if (entry) this.forget(name, entry);
    });
    if (this.closing) throw new LogError('LOG_CLOSED', 'the Kafka log is closed');
    return topic;
  }

  private forget(name: string, entry: unknown): void {
    if (this.topics.get(name) === entry) this.topics.delete(name);
  }
}

export const openKafkaLog = (options: KafkaLogOptions): Promise<KafkaLog> => KafkaLog.open(options);

const mismatch = (name: string, has: number, asked: number) =>
  new LogError('LOG_TOPIC_MISMATCH', `topic ${name} has ${has} partitions, asked for ${asked}`, {
    topic: name,
  });

/**
 * Configuration of a topic this log creates. Timestamps are event times from the writer,
 * so the broker must keep them (CreateTime) and take any of them: Kafka 4 refuses by
 * default timestamps more than an hour ahead of its clock, which replays and simulations
 * of a future day have. max.message.bytes lets a record up to the log's 16 MiB limit
 * through in a batch of its own.
 */
function topicConfig(options: ResolvedKafkaOptions, config: TopicConfig): ITopicConfig['configEntries'] {
  return [
    { name: 'retention.ms', value: kafkaLimit(config.retentionMs ?? options.retentionMs) },
    { name: 'retention.bytes', value: kafkaLimit(config.retentionBytes ?? options.retentionBytes) },
    { name: 'message.timestamp.type', value: 'CreateTime' },
    { name: 'message.timestamp.before.max.ms', value: LONG_MAX },
    { name: 'message.timestamp.after.max.ms', value: LONG_MAX },
    { name: 'max.message.bytes', value: String(MAX_RECORD_BYTES + 1024) },
  ];
}
