import { LogError } from '../errors.js';

/**
 * When an append is durable (src/log/README.md says exactly what survives what):
 * - 'always': fsync before the append resolves; survives SIGKILL and power loss.
 * - 'interval': the append resolves once the OS has the bytes, a timer fsyncs every
 *   fsyncIntervalMs; survives SIGKILL, power loss may lose the last interval.
 * - 'never': fsync only on segment roll and close; survives SIGKILL, power loss may lose
 *   whatever the OS had not written back.
 */
export type FsyncPolicy = 'always' | 'interval' | 'never';

/** A torn tail found and cut off when a partition was opened. */
export interface Recovery {
  topic: string;
  partition: number;
  file: string;
  /** Byte position the segment was truncated to: the end of the last whole batch. */
  position: number;
  bytesDropped: number;
  /** Whole entries dropped because their batch was not finished (never acknowledged). */
  recordsDropped: number;
  /** What was found at the tail, with its byte position. */
  reason: string;
}

/** What time retention measures a closed segment by: see EmbeddedLogOptions.retentionClock. */
export type RetentionClock = 'record' | 'append';

export interface EmbeddedLogOptions {
  dir: string;
  /** Default 'interval'. */
  fsync?: FsyncPolicy;
  /** Default 200. */
  fsyncIntervalMs?: number;
  /** A new segment is started when a batch would take the active one past this. Default 64 MiB. */
  segmentBytes?: number;
  /** Spacing of the sparse index. Default 16 KiB. */
  indexIntervalBytes?: number;
  /** Default 7 days. */
  retentionMs?: number;
  /** Default Infinity (no limit). */
  retentionBytes?: number;
  /** Byte budget of a read when the caller gives none. Default 1 MiB. */
  maxReadBytes?: number;
  /** Clock of time retention. Default Date.now. */
  now?: () => number;
  /**
   * What time retention measures a closed segment by: its newest record's timestamp
   * ('record', Kafka's CreateTime; default), or when it was last appended to, its file's
   * modification time ('append', Kafka's LogAppendTime). The engine's records carry event
   * times, which a replay of an old capture puts days in the past: 'append' keeps them
   * for the retention time after they were written.
   */
  retentionClock?: RetentionClock;
  /** Called for each torn tail recovered (they are also listed in EmbeddedLog.recoveries). */
  onRecovery?: (recovery: Recovery) => void;
  /**
   * Failures nobody is waiting for: a timed fsync, retention run on segment roll. Default:
   * process.emitWarning. (A failed fsync also makes the partition refuse appends.)
   */
  onError?: (error: Error) => void;
}

export type ResolvedOptions = Required<Omit<EmbeddedLogOptions, 'onRecovery'>> &
  Pick<EmbeddedLogOptions, 'onRecovery'>;

const warn = (error: Error) => process.emitWarning(error);

const MiB = 2 ** 20;

/** An integer >= min, or any number >= min for durations; Infinity only where it means "no limit". */
function check(
  name: string,
  value: number,
  min: number,
  kind: 'integer' | 'limit' | 'duration' = 'integer',
): number {
  const ok =
    kind === 'duration'
      ? typeof value === 'number' && !Number.isNaN(value)
      : Number.isSafeInteger(value) || (kind === 'limit' && value === Number.POSITIVE_INFINITY);
  if (!ok || value < min)
    throw new LogError('LOG_INVALID_ARGUMENT', `option ${name} must be a number >= ${min}, got ${value}`);
  return value;
}

export function resolveOptions(o: EmbeddedLogOptions): ResolvedOptions {
  if (typeof o.dir !== 'string' || o.dir === '')
    throw new LogError('LOG_INVALID_ARGUMENT', 'option dir must name the log directory');
  const fsync = o.fsync ?? 'interval';
  if (!['always', 'interval', 'never'].includes(fsync))
    throw new LogError(
      'LOG_INVALID_ARGUMENT',
      `option fsync must be always, interval or never, got ${fsync}`,
    );
  return {
    dir: o.dir,
    fsync,
    fsyncIntervalMs: check('fsyncIntervalMs', o.fsyncIntervalMs ?? 200, 1),
    segmentBytes: check('segmentBytes', o.segmentBytes ?? 64 * MiB, 256),
    indexIntervalBytes: check('indexIntervalBytes', o.indexIntervalBytes ?? 16 * 1024, 1),
    retentionMs: checkRetentionMs(o.retentionMs ?? 7 * 24 * 3_600_000),
    retentionBytes: checkRetentionBytes(o.retentionBytes ?? Number.POSITIVE_INFINITY),
    retentionClock: o.retentionClock ?? 'record',
    maxReadBytes: check('maxReadBytes', o.maxReadBytes ?? MiB, 1),
    now: o.now ?? Date.now,
    onError: o.onError ?? warn,
    ...(o.onRecovery ? { onRecovery: o.onRecovery } : {}),
  };
}

export const checkRetentionMs = (value: number) => check('retentionMs', value, 0, 'duration');
export const checkRetentionBytes = (value: number) => check('retentionBytes', value, 0, 'limit');

/** What a partition needs to know. */
export interface PartitionContext {
  topic: string;
  partition: number;
  /** <log dir>/<topic>/<partition> */
  dir: string;
  fsync: FsyncPolicy;
  segmentBytes: number;
  indexIntervalBytes: number;
  retentionMs: number;
  retentionBytes: number;
  retentionClock: RetentionClock;
  retentionFloor: ((partition: number) => Promise<number>) | undefined;
  maxReadBytes: number;
  now: () => number;
  report: (recovery: Recovery) => void;
  onError: (error: Error) => void;
}
