/**
 * Distributed mode: this process is one member of a Kafka consumer group over the raw
 * topic. The group coordinator hands each member a share of the raw partitions; the
 * member's engine processes only those (processors restored from the shared snapshots,
 * outputs already on the log recognised and skipped, store ranges with the same
 * deduplication tokens), so a replica that dies is replaced by the others taking its
 * partitions over, and the result is the same as an uninterrupted run.
 *
 * The kafkajs consumer is used for membership only: its fetching is paused for good, the
 * engine reads the raw topic itself at the offsets its snapshots name. On a rebalance the
 * member stops processing at once (kafkajs announces it before rejoining), snapshots and
 * stores what it gives up, and a partition it gains waits `graceMs` before it is
 * processed, so that its former owner, if it is alive, has finished its last step.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { kafkaClient } from '../log/kafka/log.js';
import type { KafkaLogOptions } from '../log/kafka/options.js';
import { DataStreamerError } from '../util/errors.js';
import type { EmbeddedEngine } from './engine.js';
import type { Rekeyer } from './rekey.js';

export interface GroupMemberOptions {
  engine: EmbeddedEngine;
  kafka: KafkaLogOptions;
  groupId: string;
  /** How long a gained partition waits before it is processed. Default 3 s. */
  graceMs?: number;
  /** Pause when there was nothing to process. Default 200 ms. */
  idleMs?: number;
  /** Kafka's session timeout: a member silent this long is dropped and its partitions move. Default 10 s. */
  sessionTimeoutMs?: number;
  onAssignment?: (partitions: number[]) => void;
  /** A rebalance is announced: what follows the partitions (data stream lanes) stops now. */
  onRebalance?: () => void;
  /** Moves the ingest partitions this member owns onto the raw topic before each step. */
  rekeyer?: Rekeyer;
}

export class GroupMember {
  private assignment: number[] | undefined;
  private rebalancing = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Set when kafkajs gave up on the group (a crash it does not restart from). */
  private failure: Error | undefined;
  /** Partitions owned now, as the engine processes them. */
  owned: number[] = [];

  private constructor(
    private readonly options: GroupMemberOptions,
    private readonly consumer: ReturnType<Kafka['consumer']>,
  ) {}

  static async join(options: GroupMemberOptions): Promise<GroupMember> {
    const kafka = kafkaClient(options.kafka);
    const sessionTimeout = options.sessionTimeoutMs ?? 10_000;
    const consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout,
      rebalanceTimeout: sessionTimeout * 2,
      heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 10)),
      allowAutoTopicCreation: false,
    });
    const member = new GroupMember(options, consumer);
    const raw = options.engine.raw.name;
    consumer.on(consumer.events.REBALANCING, () => {
      member.rebalancing = true;
      options.onRebalance?.();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      // kafkajs restarts the consumer itself when the error is retriable; the rest stops membership.
      console.error(
        `${new Date().toISOString()} group ${options.groupId}: ${event.payload.error.message}${event.payload.restart ? ' (rejoining)' : ''}`,
      );
      member.rebalancing = true;
      options.onRebalance?.();
      if (!event.payload.restart) member.failure = event.payload.error;
    });
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      // Membership only: nothing is fetched through the consumer (paused on every join, as
      // a consumer restarted after a crash starts unpaused).
      consumer.pause([{ topic: raw }]);
      member.assignment = [...(event.payload.memberAssignment[raw] ?? [])].sort((a, b) => a - b);
      member.rebalancing = false;
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [raw], fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
    member.loop = member.run();
    return member;
  }

  private async run(): Promise<void> {
    const { engine } = this.options;
    const grace = this.options.graceMs ?? 3000;
    let unsettled = false;
    while (!this.stopped) {
      if (this.failure) {
        // No longer a member: what it owns moves to the others; this replica stops (and is restarted).
        await engine.exclusive(() => engine.settle());
        throw new DataStreamerError(
          'GROUP_MEMBERSHIP_LOST',
          `left group ${this.options.groupId}: ${this.failure.message}`,
        );
      }
      if (this.assignment) {
        const next = this.assignment;
        this.assignment = undefined;
        const gained = next.filter((p) => !this.owned.includes(p));
        // Give up first (store, snapshot), then wait for any former owner of what is gained.
        await engine.exclusive(() => engine.settle());
        const kept = next.filter((p) => this.owned.includes(p));
        await engine.exclusive(() => engine.assign(kept));
        this.owned = kept;
        if (gained.length > 0) await sleep(grace);
        if (this.assignment || this.stopped) continue;
        await engine.exclusive(() => engine.assign(next));
        this.owned = next;
        this.options.onAssignment?.(next);
      }
      if (this.rebalancing || this.owned.length === 0) {
        await sleep(50);
        continue;
      }
      const rekeyed = (await this.options.rekeyer?.step(this.owned)) ?? 0;
      const n = await engine.exclusive(() => engine.process());
      if (n > 0) unsettled = true;
      if (n === 0 && rekeyed === 0) {
        // Caught up: store and snapshot what was processed, once (not on every idle turn).
        if (unsettled) await engine.exclusive(() => engine.settle());
        unsettled = false;
        await sleep(this.options.idleMs ?? 200);
      }
    }
  }

  /** Resolves when the member stopped; rejects when it lost its membership for good. */
  get done(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  /** Leaves the group after storing and snapshotting what this member owns, so the others take over at once. */
  async leave(): Promise<void> {
    this.stopped = true;
    await this.loop?.catch(() => undefined);
    const { engine } = this.options;
    await engine.exclusive(() => engine.settle());
    await engine.exclusive(() => engine.assign([]));
    this.owned = [];
    await this.consumer.disconnect();
  }
}
