import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asLogError, LogError } from '../errors.js';
import type { Log, TopicConfig } from '../types.js';
import { FileCursorStore } from './cursors.js';
import { errnoOf, mkdirDurable, writeFileAtomic } from './files.js';
import { lockDirectory } from './lock.js';
import {
  type EmbeddedLogOptions,
  type PartitionContext,
  type Recovery,
  type ResolvedOptions,
  resolveOptions,
} from './options.js';
import { Partition } from './partition.js';
import { EmbeddedTopic } from './topic.js';
import { checkInteger, checkTopicRequest } from './validate.js';

/** Content of `<dir>/<topic>/topic.json`, written once when the topic is created. */
interface TopicFile {
  version: 1;
  name: string;
  partitions: number;
}

const MAX_PARTITIONS = 10_000;

/**
 * The log in one directory of local disk, for the embedded engine: no broker, no server.
 * Layout: `<dir>/<topic>/<partition>/<baseOffset>.log` segments, `<dir>/<topic>/topic.json`,
 * `<dir>/__cursors/<group>.json`, `<dir>/LOCK`. src/log/README.md has the details.
 */
export class EmbeddedLog implements Log {
  /** Torn tails recovered while opening partitions, in the order found. */
  readonly recoveries: Recovery[] = [];
  private readonly topics = new Map<string, { partitions: number; topic: Promise<EmbeddedTopic> }>();
  /** Topics being closed: reopening one waits, or it would read files still being written. */
  private readonly closingTopics = new Map<string, Promise<void>>();
  private readonly timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly options: ResolvedOptions,
    readonly cursors: FileCursorStore,
    private readonly unlock: () => Promise<void>,
  ) {
    if (options.fsync === 'interval') {
      this.timer = setInterval(() => {
        for (const { topic } of this.topics.values())
          void topic.then(
            (t) => t.syncIfDirty(),
            () => undefined,
          );
      }, options.fsyncIntervalMs);
      // The OS has every acknowledged byte already; a pending fsync must not keep Node alive.
      this.timer.unref();
    }
  }

  static async open(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
    const resolved = resolveOptions(options);
    try {
      await mkdirDurable(resolved.dir);
      const unlock = await lockDirectory(resolved.dir);
      try {
        const cursors = await FileCursorStore.open(join(resolved.dir, '__cursors'));
        return new EmbeddedLog(resolved, cursors, unlock);
      } catch (error) {
        await unlock();
        throw error;
      }
    } catch (error) {
      throw asLogError(error, `cannot open the log in ${resolved.dir}`);
    }
  }

  get dir(): string {
    return this.options.dir;
  }

  topic(name: string, partitions: number, config: TopicConfig = {}): Promise<EmbeddedTopic> {
    try {
      this.checkOpen();
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
    const topic = this.openTopic(name, partitions, config).catch((error: unknown) => {
      throw asLogError(error, `cannot open topic ${name}`, { topic: name });
    });
    const entry = { partitions, topic };
    this.topics.set(name, entry);
    topic.catch(() => this.forget(name, entry));
    return topic;
  }

  /** Applies retention to every open topic now; resolves to the number of segments removed. */
  async enforceRetention(): Promise<number> {
    this.checkOpen();
    let removed = 0;
    for (const { topic } of this.topics.values()) removed += await (await topic).enforceRetention();
    return removed;
  }

  /** Closes every topic (fsyncing them, whatever the policy) and the cursor store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      // A topic that failed to open has nothing to close.
      const topics = [...this.topics.values()].map(({ topic }) =>
        topic.then(
          (t) => t.close(),
          () => undefined,
        ),
      );
      const results = await Promise.allSettled([
        ...topics,
        ...this.closingTopics.values(),
        this.cursors.close(),
      ]);
      await this.unlock();
      const failure = results.find((r) => r.status === 'rejected');
      if (failure) throw failure.reason;
    })();
    return this.closing;
  }

  private async openTopic(name: string, partitions: number, config: TopicConfig): Promise<EmbeddedTopic> {
    await this.closingTopics.get(name)?.catch(() => undefined);
    const dir = join(this.options.dir, name);
    const metaFile = join(dir, 'topic.json');
    const stored = await readTopicFile(metaFile);
    if (stored && stored.partitions !== partitions) throw mismatch(name, stored.partitions, partitions);
    const opened = await Promise.allSettled(
      Array.from({ length: partitions }, (_, p) =>
        Partition.open(this.context(name, p, config), stored !== undefined),
      ),
    );
    const parts = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failure = opened.find((r) => r.status === 'rejected');
    if (failure) {
      await Promise.allSettled(parts.map((p) => p.close()));
      throw failure.reason;
    }
    if (!stored) {
      // Written last, once the partitions are durable: without it, the next open creates again.
      await writeFileAtomic(
        metaFile,
        `${JSON.stringify({ version: 1, name, partitions } satisfies TopicFile)}\n`,
      );
    }
    const entry = this.topics.get(name);
    const topic = new EmbeddedTopic(name, parts, this.options.maxReadBytes, (closed) => {
      if (entry) this.forget(name, entry);
      const settled = closed.catch(() => undefined);
      this.closingTopics.set(name, settled);
      void settled.then(() => {
        if (this.closingTopics.get(name) === settled) this.closingTopics.delete(name);
      });
    });
    if (this.closing) {
      await topic.close();
      throw closedError();
    }
    return topic;
  }

  private context(topic: string, partition: number, config: TopicConfig): PartitionContext {
    const o = this.options;
    return {
      topic,
      partition,
      dir: join(o.dir, topic, String(partition)),
      fsync: o.fsync,
      segmentBytes: o.segmentBytes,
      indexIntervalBytes: o.indexIntervalBytes,
      retentionMs: config.retentionMs ?? o.retentionMs,
      retentionBytes: config.retentionBytes ?? o.retentionBytes,
      retentionClock: o.retentionClock,
      retentionFloor: config.retentionFloor,
      maxReadBytes: o.maxReadBytes,
      now: o.now,
      report: (recovery) => {
        this.recoveries.push(recovery);
        o.onRecovery?.(recovery);
      },
      onError: o.onError,
    };
  }

  private forget(name: string, entry: unknown): void {
    if (this.topics.get(name) === entry) this.topics.delete(name);
  }

  private checkOpen(): void {
    if (this.closing) throw closedError();
  }
}

export const openEmbeddedLog = (options: EmbeddedLogOptions): Promise<EmbeddedLog> =>
  EmbeddedLog.open(options);

const closedError = () => new LogError('LOG_CLOSED', 'the log is closed');

const mismatch = (name: string, has: number, asked: number) =>
  new LogError('LOG_TOPIC_MISMATCH', `topic ${name} has ${has} partitions, asked for ${asked}`, {
    topic: name,
  });

async function readTopicFile(file: string): Promise<TopicFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const content = JSON.parse(text) as TopicFile;
    checkInteger('partitions', content.partitions, 1);
    return content;
  } catch (error) {
    throw new LogError('LOG_CORRUPT', `${file} is not a valid topic file`, { file }, 'permanent', {
      cause: error,
    });
  }
}
