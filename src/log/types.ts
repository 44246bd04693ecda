/**
 * The partitioned log the engine reads and writes: its input log (raw records, commands)
 * and its output log (events, usage records). Two implementations: the embedded log
 * (src/log/embedded, files on local disk) and, later, a Kafka-backed log. Nothing here may
 * depend on how records are stored. Offsets are per partition, start at 0 and are
 * contiguous while records exist; records before startOffset may have been removed by
 * retention.
 */

/** A record to append. */
export interface AppendRecord {
  /** The record's key (device, session...), or null. Partitioning by key is the caller's job. */
  key: string | null;
  value: Buffer;
  /** Event time, integer milliseconds since the Unix epoch. */
  timestamp: number;
}

/**
 * A record as read back. Its value may share memory with the other records of the same
 * read (the embedded log hands out views of the chunk it read): never modify it, and copy
 * it to keep one record for long without the rest.
 */
export interface LogRecord extends AppendRecord {
  partition: number;
  offset: number;
}

/** Offsets given to an appended batch: baseOffset for its first record, nextOffset after its last. */
export interface AppendResult {
  baseOffset: number;
  nextOffset: number;
}

/** Per-topic retention; both limits apply, whichever removes more. Kafka: retention.ms, retention.bytes. */
export interface TopicConfig {
  /** Records older than this (by their newest timestamp, against the log's clock) may be removed. */
  retentionMs?: number;
  /** Size each partition is brought down towards; Infinity for no limit. */
  retentionBytes?: number;
  /**
   * The lowest offset of the partition a reader still needs (embedded log): retention
   * removes no record at or above it, however old. The engine holds its topics back for
   * its own consumers this way (the fold, the organisation stage, the ClickHouse writer).
   */
  retentionFloor?: (partition: number) => Promise<number>;
}

export interface Topic {
  readonly name: string;
  readonly partitions: number;
  /**
   * Appends a batch to one partition; offsets are assigned in call order. Resolves once the
   * batch is durable under the log's durability setting. If it rejects, or the process dies
   * before it resolves, the batch may or may not have been stored: a retry can duplicate it.
   */
  append(partition: number, records: readonly AppendRecord[]): Promise<AppendResult>;
  /**
   * Up to maxRecords records from fromOffset on, and no more than maxBytes of them (always at
   * least one record when one is available, whatever its size). Empty at endOffset; rejects
   * with LOG_OFFSET_OUT_OF_RANGE below startOffset or above endOffset.
   */
  read(partition: number, fromOffset: number, maxRecords: number, maxBytes?: number): Promise<LogRecord[]>;
  /** Offset of the oldest record still held. */
  startOffset(partition: number): Promise<number>;
  /** Offset the next appended record will get; records below it are readable. */
  endOffset(partition: number): Promise<number>;
  /** First offset whose record has timestamp >= the given one; endOffset when there is none. */
  offsetForTime(partition: number, timestamp: number): Promise<number>;
  /**
   * Resolves at the next acknowledged append to any partition of this topic, or when
   * `signal` aborts. Only a log that sees every append (the embedded one, in-process) has
   * it; readers of other logs poll.
   */
  appended?(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where each consumer group is in each partition. The stored offset is the next one to
 * read (Kafka's convention), not the last one processed.
 */
export interface CursorStore {
  get(group: string, topic: string, partition: number): Promise<number | undefined>;
  /** Resolves once the cursor is durable; a crash leaves either the old or the new value. */
  commit(group: string, topic: string, partition: number, offset: number): Promise<void>;
}

export interface Log {
  /** Opens the topic, creating it with this many partitions if it does not exist. */
  topic(name: string, partitions: number, config?: TopicConfig): Promise<Topic>;
  readonly cursors: CursorStore;
  close(): Promise<void>;
}
