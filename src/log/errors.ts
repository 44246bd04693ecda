import { DataStreamerError, type ErrorKind } from '../util/errors.js';

/** Stable codes of the log's errors; shared by every Log implementation. */
export type LogErrorCode =
  /** The log or topic was closed. */
  | 'LOG_CLOSED'
  /** A read or a cursor below startOffset or above endOffset: reset to one of them. */
  | 'LOG_OFFSET_OUT_OF_RANGE'
  /** Stored data failed its checks somewhere other than a recoverable torn tail. */
  | 'LOG_CORRUPT'
  /** A bad partition, offset, topic or group name, record field or option. */
  | 'LOG_INVALID_ARGUMENT'
  | 'LOG_RECORD_TOO_LARGE'
  /** The topic exists with another partition count. */
  | 'LOG_TOPIC_MISMATCH'
  /** A read, write or fsync failed; see the cause. */
  | 'LOG_IO'
  /** Another process (or another Log in this one) has the directory open. */
  | 'LOG_LOCKED';

/** Where an error happened; every field that applies is set. */
export interface LogErrorDetails {
  topic?: string;
  partition?: number;
  offset?: number;
  file?: string;
  /** Byte position in `file`. */
  position?: number;
}

export class LogError extends DataStreamerError {
  declare readonly code: LogErrorCode;

  constructor(
    code: LogErrorCode,
    message: string,
    readonly details: LogErrorDetails = {},
    kind: ErrorKind = 'permanent',
    options?: { cause?: unknown },
  ) {
    super(code, message, kind, options);
    this.name = 'LogError';
  }
}

/** `topic/partition`, the prefix of most messages. */
export const where = (topic: string, partition: number) => `${topic}/${partition}`;

/** `error` itself if it is a LogError, else a retriable LOG_IO wrapping it (fs errors). */
export function asLogError(error: unknown, context: string, details: LogErrorDetails = {}): LogError {
  if (error instanceof LogError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new LogError('LOG_IO', `${context}: ${message}`, details, 'retriable', { cause: error });
}
