import { LogError, type LogErrorDetails } from '../errors.js';

/** What kafkajs errors carry; its retriers wrap the original in `cause`. */
interface KafkaJsError extends Error {
  retriable?: boolean;
  /** Protocol error name, e.g. NOT_LEADER_OR_FOLLOWER. */
  type?: string;
  cause?: unknown;
  errors?: unknown[];
}

/** kafkajs errors about reaching brokers, whatever their `retriable` says. */
const CONNECTION = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
]);

/** Protocol errors that mean the request or the data is wrong, never the broker's state. */
const INVALID = new Set([
  'INVALID_CONFIG',
  'INVALID_PARTITIONS',
  'INVALID_REPLICATION_FACTOR',
  'INVALID_REQUEST',
  'INVALID_TOPIC_EXCEPTION',
  'INVALID_TIMESTAMP',
  'INVALID_RECORD',
  'INVALID_GROUP_ID',
  'INVALID_COMMIT_OFFSET_SIZE',
  'POLICY_VIOLATION',
]);

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * The innermost kafkajs error: the one whose `type` names the broker's answer. Retriers
 * wrap it in `cause`; createTopics gathers per-topic ones in `errors` (the first counts).
 */
export function rootOf(error: unknown): KafkaJsError | undefined {
  let e = error as KafkaJsError | undefined;
  for (let depth = 0; e && depth < 10; depth++) {
    if (e.type) return e;
    const inner = e.errors?.[0] ?? e.cause;
    if (!(inner instanceof Error) || inner === e) return e;
    e = inner as KafkaJsError;
  }
  return e;
}

/** The broker's error type (OFFSET_OUT_OF_RANGE...) behind a kafkajs error, if any. */
export const kafkaType = (error: unknown): string | undefined => rootOf(error)?.type;

/** Worth another try after a backoff: a connection problem or a retriable broker answer. */
export function isRetriable(error: unknown): boolean {
  if (error instanceof LogError) return error.kind === 'retriable';
  const root = rootOf(error);
  if (!root) return false;
  return CONNECTION.has(root.name) || (root.retriable === true && root.name === 'KafkaJSProtocolError');
}

/**
 * A LogError for a kafkajs failure. Connection problems and retriable broker answers are
 * retriable LOG_IO ("Kafka at ... is unreachable" / "is not ready"); bad requests are
 * LOG_INVALID_ARGUMENT; a record over the topic's max.message.bytes is LOG_RECORD_TOO_LARGE;
 * the rest (authorisation, unknown topic...) is permanent LOG_IO. The message names the
 * broker's error type.
 */
export function asKafkaLogError(
  error: unknown,
  context: string,
  brokers: readonly string[],
  details: LogErrorDetails = {},
): LogError {
  if (error instanceof LogError) return error;
  const root = rootOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const type = root?.type ? ` (${root.type})` : '';
  if (root && (CONNECTION.has(root.name) || isRetriable(error)))
    return new LogError(
      'LOG_IO',
      `${context}: Kafka at ${brokers.join(',')} is ${CONNECTION.has(root.name) ? 'unreachable' : 'not ready'}: ${message}${type}`,
      details,
      'retriable',
      { cause: error },
    );
  if (root?.type && TOO_LARGE.has(root.type))
    return new LogError('LOG_RECORD_TOO_LARGE', `${context}: ${message}${type}`, details, 'permanent', {
      cause: error,
    });
  if (root?.type && INVALID.has(root.type))
    return new LogError('LOG_INVALID_ARGUMENT', `${context}: ${message}${type}`, details, 'permanent', {
      cause: error,
    });
  return new LogError('LOG_IO', `${context}: ${message}${type}`, details, 'permanent', { cause: error });
}

/**
 * Runs `attempt`, trying again after a retriable failure (100 ms, doubling up to 2 s), at
 * most `retries` more times; `beforeRetry` refreshes what may be stale (metadata, a
 * coordinator). The last failure is thrown as it is.
 */
export async function withRetries<T>(
  retries: number,
  attempt: () => Promise<T>,
  beforeRetry: (error: unknown) => Promise<void> = async () => undefined,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      // kafkajs's own retrier has given up already: do not multiply its retries.
      const exhausted = error instanceof Error && error.name === 'KafkaJSNumberOfRetriesExceeded';
      if (n >= retries || exhausted || !isRetriable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** n, 2000)));
      await beforeRetry(error).catch(() => undefined);
    }
  }
}
