import type { Broker, Cluster, Producer } from 'kafkajs';
import type { SerialQueue } from '../embedded/serial.js';
import { checkInteger } from '../embedded/validate.js';
import { LogError, type LogErrorDetails, where } from '../errors.js';
import type { AppendRecord, AppendResult, LogRecord, Topic } from '../types.js';
import { asKafkaLogError, kafkaType, withRetries } from './errors.js';
import { type FetchedPartition, filterFetched, READ_COMMITTED } from './internals.js';
import type { ResolvedKafkaOptions } from './options.js';
import { chunkBatch, toRecords } from './records.js';

/** What every topic of one KafkaLog shares. */
export interface KafkaClients {
  readonly options: ResolvedKafkaOptions;
  readonly producer: Producer;
  /** Metadata, fetch and list-offsets requests; see internals.ts. */
  readonly cluster: Cluster;
}

/** A broker refuses fetches above this (fetch.max.bytes, 50 MiB by default). */
const MAX_FETCH_BYTES = 50 * 2 ** 20;
/** ListOffsets' special timestamps. */
const EARLIEST = -2;
const LATEST = -1;

/**
 * A topic of the Kafka log. Appends go through the log's idempotent producer (acks=all),
 * one at a time per partition in call order; reads are Fetch requests to the partition's
 * leader at the asked offset (no consumer group, nothing kept between reads).
 */
export class KafkaTopic implements Topic {
  private closing: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly partitions: number,
    private readonly clients: KafkaClients,
    /** One per partition, owned by the log (they outlive a close and reopen of the topic). */
    private readonly queues: readonly SerialQueue[],
    private readonly onClose: () => void,
  ) {}

  append(partition: number, records: readonly AppendRecord[]): Promise<AppendResult> {
    return this.on(partition, async () => {
      const chunks = chunkBatch(records, this.clients.options.maxBatchBytes, where(this.name, partition));
      return (this.queues[partition] as SerialQueue).run(async () => {
        if (chunks.length === 0) {
          const end = await this.listOffset(partition, LATEST);
          return { baseOffset: end, nextOffset: end };
        }
        let baseOffset: number | undefined;
        let nextOffset = 0;
        // One produce request per chunk, in order; idempotence makes the producer's own
        // retries of a chunk safe, and the queue keeps other appends from interleaving.
        for (const chunk of chunks) {
          const [answer] = await this.clients.producer.send({
            topic: this.name,
            acks: -1,
            timeout: this.clients.options.requestTimeoutMs,
            messages: chunk.map((r) => ({
              partition,
              key: r.key,
              value: r.value,
              timestamp: String(r.timestamp),
            })),
          });
          if (!answer || answer.baseOffset === undefined)
            throw new LogError('LOG_IO', `${where(this.name, partition)}: the broker's answer has no offset`);
          const base = Number(answer.baseOffset);
          baseOffset ??= base;
          nextOffset = base + chunk.length;
        }
        return { baseOffset: baseOffset as number, nextOffset };
      });
    });
  }

  read(partition: number, fromOffset: number, maxRecords: number, maxBytes?: number): Promise<LogRecord[]> {
    return this.on(partition, async () => {
      checkInteger('fromOffset', fromOffset, 0);
      checkInteger('maxRecords', maxRecords, 1);
      if (maxBytes !== undefined) checkInteger('maxBytes', maxBytes, 1);
      const budget = maxBytes ?? this.clients.options.maxReadBytes;
      let offset = fromOffset;
      for (let rangeChecks = 0; ; ) {
        let fetched: FetchedPartition;
        try {
          fetched = await this.fetch(partition, offset, Math.min(budget, MAX_FETCH_BYTES));
        } catch (error) {
          if (kafkaType(error) !== 'OFFSET_OUT_OF_RANGE' || ++rangeChecks > 3) throw error;
          // The broker judged the offset against its high watermark then; judge it again
          // now and fail with what the partition holds, or fetch again if it is in range.
          await this.checkRange(partition, offset, error);
          continue;
        }
        const batch = filterFetched(this.name, offset, fetched);
        if (batch.messages.length > 0) return toRecords(batch.messages, partition, maxRecords, budget);
        if (fetched.messages.length === 0) return [];
        // Only offsets no reader sees (transaction markers, aborted records) or a compacted
        // gap: go on after them, so that [] means the end and nothing else.
        const last = batch.messagesWithinOffset.at(-1);
        offset = last ? Number(last.offset) + 1 : offset + 1;
      }
    });
  }

  startOffset(partition: number): Promise<number> {
    return this.on(partition, () => this.listOffset(partition, EARLIEST));
  }

  endOffset(partition: number): Promise<number> {
    return this.on(partition, () => this.listOffset(partition, LATEST));
  }

  offsetForTime(partition: number, timestamp: number): Promise<number> {
    return this.on(partition, async () => {
      if (typeof timestamp !== 'number' || !Number.isFinite(timestamp))
        throw new LogError(
          'LOG_INVALID_ARGUMENT',
          `${where(this.name, partition)}: timestamp ${timestamp} is not a number`,
        );
      // Every record has a timestamp >= 0; ListOffsets takes whole ms and keeps -1, -2 for itself.
      if (timestamp <= 0) return this.listOffset(partition, EARLIEST);
      if (timestamp > Number.MAX_SAFE_INTEGER) return this.listOffset(partition, LATEST);
      const found = await this.listOffset(partition, Math.ceil(timestamp));
      // kafkajs gives -1 when no record is that recent; the interface says endOffset.
      return found < 0 ? this.listOffset(partition, LATEST) : found;
    });
  }

  /** Waits for the appends under way; later calls fail with LOG_CLOSED. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = Promise.all(this.queues.map((q) => q.idle())).then(() => undefined);
      this.onClose();
    }
    return this.closing;
  }

  private async fetch(partition: number, offset: number, maxBytes: number): Promise<FetchedPartition> {
    const response = (await withRetries(
      this.clients.options.retries,
      async () =>
        (
          await this.leader(partition)
        ).fetch({
          isolationLevel: READ_COMMITTED,
          // Answer at once with what there is: a read never waits for new records.
          maxWaitTime: 0,
          minBytes: 1,
          maxBytes,
          topics: [{ topic: this.name, partitions: [{ partition, fetchOffset: String(offset), maxBytes }] }],
        }),
      () => this.clients.cluster.refreshMetadata(),
    )) as { responses?: { topicName: string; partitions: FetchedPartition[] }[] };
    const data = response.responses
      ?.find((r) => r.topicName === this.name)
      ?.partitions.find((p) => p.partition === partition);
    if (!data)
      throw new LogError('LOG_IO', `${where(this.name, partition)}: the fetch answer lacks the partition`, {
        topic: this.name,
        partition,
      });
    return data;
  }

  /** Throws LOG_OFFSET_OUT_OF_RANGE unless start <= offset <= end now. */
  private async checkRange(partition: number, offset: number, cause: unknown): Promise<void> {
    const start = await this.listOffset(partition, EARLIEST);
    const end = await this.listOffset(partition, LATEST);
    if (offset >= start && offset <= end) return;
    throw new LogError(
      'LOG_OFFSET_OUT_OF_RANGE',
      `${where(this.name, partition)}: offset ${offset} is out of range; the partition holds ${start} to ${end}`,
      { topic: this.name, partition, offset },
      'permanent',
      { cause },
    );
  }

  /** ListOffsets at a timestamp, or EARLIEST / LATEST (the last stable offset, read_committed). */
  private async listOffset(partition: number, timestamp: number): Promise<number> {
    const { cluster, options } = this.clients;
    const [answer] = await withRetries(
      options.retries,
      () =>
        cluster.fetchTopicsOffset([
          { topic: this.name, partitions: [{ partition }], fromTimestamp: timestamp },
        ]),
      () => cluster.refreshMetadata(),
    );
    const found = answer?.partitions.find((p) => p.partition === partition);
    if (!found)
      throw new LogError(
        'LOG_IO',
        `${where(this.name, partition)}: the list-offsets answer lacks the partition`,
        {
          topic: this.name,
          partition,
        },
      );
    return Number(found.offset);
  }

  private async leader(partition: number): Promise<Broker> {
    const { cluster } = this.clients;
    const [nodeId] = Object.keys(cluster.findLeaderForPartitions(this.name, [partition]));
    if (nodeId === undefined)
      throw new LogError(
        'LOG_IO',
        `${where(this.name, partition)}: no leader known for the partition`,
        { topic: this.name, partition },
        'retriable',
      );
    return cluster.findBroker({ nodeId });
  }

  /** Runs `task` on a valid partition of an open topic; every failure becomes a LogError. */
  private async on<T>(partition: number, task: () => Promise<T>): Promise<T> {
    const details: LogErrorDetails = { topic: this.name, partition };
    try {
      if (this.closing)
        throw new LogError('LOG_CLOSED', `topic ${this.name} is closed`, { topic: this.name });
      checkInteger(`partition of topic ${this.name}`, partition, 0, this.partitions - 1);
      return await task();
    } catch (error) {
      throw asKafkaLogError(error, where(this.name, partition), this.clients.options.brokers, details);
    }
  }
}
