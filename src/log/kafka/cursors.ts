import type { Broker, Cluster } from 'kafkajs';
import { checkInteger, checkTopicName } from '../embedded/validate.js';
import { LogError } from '../errors.js';
import type { CursorStore } from '../types.js';
import { asKafkaLogError, kafkaType, withRetries } from './errors.js';
import type { ResolvedKafkaOptions } from './options.js';

/** Answers that mean "ask the group's coordinator again": it moved, or is still loading. */
const STALE_COORDINATOR = new Set([
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

/**
 * Cursors as committed offsets of Kafka consumer groups, kept by the broker in
 * __consumer_offsets: the place every Kafka tool looks (kafka-consumer-groups shows the lag),
 * replicated like any topic, and answered in one round trip to the group coordinator.
 * A compacted topic of our own would need reading in full on every open and a second
 * durability story. Commits are OffsetCommit requests as a group with no members
 * (generation -1, like Java's consumer after assign()): the coordinator answers once the
 * offset is written to __consumer_offsets with acks=all, so a commit that resolved is
 * durable on every in-sync replica. So the groups named here must not also be used by
 * consumers that join them (the broker refuses a member-less commit to an active group).
 */
export class KafkaCursorStore implements CursorStore {
  /** The coordinator of each group, found once; forgotten when it moves. */
  private readonly coordinators = new Map<string, Promise<Broker>>();
  /** Requests under way, which close waits for. */
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly options: ResolvedKafkaOptions,
  ) {}

  async get(group: string, topic: string, partition: number): Promise<number | undefined> {
    try {
      this.check(group, topic, partition);
      // kafkajs's type asks an offset of each partition; the request sends only the partition.
      const partitions = [{ partition }] as unknown as { partition: number; offset: string }[];
      const answer = await this.withCoordinator(group, (coordinator) =>
        coordinator.offsetFetch({ groupId: group, topics: [{ topic, partitions }] }),
      );
      const found = answer.responses
        .find((r) => r.topic === topic)
        ?.partitions.find((p) => p.partition === partition);
      const offset = found === undefined ? -1 : Number(found.offset);
      // -1: the group never committed for this partition (or its offsets expired).
      return offset < 0 ? undefined : offset;
    } catch (error) {
      throw asKafkaLogError(
        error,
        `cursor of group ${group} on ${topic}/${partition}`,
        this.options.brokers,
        {
          topic,
          partition,
        },
      );
    }
  }

  async commit(group: string, topic: string, partition: number, offset: number): Promise<void> {
    try {
      this.check(group, topic, partition);
      checkInteger('cursor offset', offset, 0);
      await this.withCoordinator(group, (coordinator) =>
        coordinator.offsetCommit({
          groupId: group,
          groupGenerationId: -1,
          memberId: '',
          topics: [{ topic, partitions: [{ partition, offset: String(offset) }] }],
        }),
      );
    } catch (error) {
      const context = `commit of group ${group} on ${topic}/${partition}`;
      // Kafka 4 keeps offsets of existing partitions only (the embedded log takes any).
      if (kafkaType(error) === 'UNKNOWN_TOPIC_OR_PARTITION')
        throw new LogError(
          'LOG_INVALID_ARGUMENT',
          `${context}: the topic or the partition does not exist`,
          { topic, partition, offset },
          'permanent',
          { cause: error },
        );
      throw asKafkaLogError(error, context, this.options.brokers, { topic, partition, offset });
    }
  }

  /** Waits for the requests under way; later calls fail with LOG_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }

  private withCoordinator<T>(group: string, request: (coordinator: Broker) => Promise<T>): Promise<T> {
    const done = this.request(group, request);
    this.pending.add(done);
    void done.then(
      () => this.pending.delete(done),
      () => this.pending.delete(done),
    );
    return done;
  }

  private request<T>(group: string, request: (coordinator: Broker) => Promise<T>): Promise<T> {
    return withRetries(
      this.options.retries,
      async () => {
        let coordinator = this.coordinators.get(group);
        if (!coordinator) {
          coordinator = this.cluster.findGroupCoordinator({ groupId: group });
          this.coordinators.set(group, coordinator);
        }
        try {
          return await request(await coordinator);
        } catch (error) {
          const type = kafkaType(error);
          if (!type || STALE_COORDINATOR.has(type)) this.coordinators.delete(group);
          throw error;
        }
      },
      () => this.cluster.refreshMetadata(),
    );
  }

  private check(group: string, topic: string, partition: number): void {
    if (this.closed) throw new LogError('LOG_CLOSED', 'the Kafka log is closed');
    if (typeof group !== 'string' || group.length === 0 || encodeURIComponent(group).length > 200)
      throw new LogError('LOG_INVALID_ARGUMENT', `group name ${JSON.stringify(group)} is empty or too long`);
    checkTopicName(topic);
    checkInteger('partition', partition, 0);
  }
}
