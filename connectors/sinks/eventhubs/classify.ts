/**
 * What a failure of @azure/event-hubs means for the lane. The SDK translates AMQP conditions
 * and socket errors into a MessagingError with a `code` (ServerBusyError, UnauthorizedError,
 * ECONNREFUSED, ...) and its own `retryable` guess; we decide by code first, because the SDK
 * retries some errors we must not (UnauthorizedError: it hopes for rotated keys).
 */
import type { ErrorKind } from '../../../src/util/errors.js';

export interface Classified {
  code: string;
  kind: Exclude<ErrorKind, 'partial'>;
  /** What went wrong, in a few words, for the message. */
  what: string;
  /** The SDK's code (the destination's condition, translated), for the stream's remote status. */
  status: string | undefined;
  retryAfterMs?: number;
}

/** The Azure SDKs document that a client should wait at least 4 s after ServerBusy. */
const SERVER_BUSY_WAIT_MS = 4000;

const BY_CODE: Record<string, Omit<Classified, 'status'>> = {
  ServerBusyError: {
    code: 'SINK_EVENTHUBS_SERVER_BUSY',
    kind: 'retriable',
    what: 'the namespace is busy (throttled)',
    retryAfterMs: SERVER_BUSY_WAIT_MS,
  },
  ServiceUnavailableError: {
    code: 'SINK_EVENTHUBS_UNAVAILABLE',
    kind: 'retriable',
    what: 'service unavailable',
  },
  InternalServerError: {
    code: 'SINK_EVENTHUBS_UNAVAILABLE',
    kind: 'retriable',
    what: 'internal server error',
  },
  OperationTimeoutError: { code: 'SINK_EVENTHUBS_TIMEOUT', kind: 'retriable', what: 'no answer in time' },
  ConnectionLostError: { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'connection lost' },
  ConnectionForcedError: { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'connection closed' },
  DetachForcedError: { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'link detached' },
  SenderBusyError: { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'no link credit' },
  SenderNotReadyError: { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'link not ready' },
  InsufficientCreditError: { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'no link credit' },
  UnauthorizedError: { code: 'SINK_EVENTHUBS_UNAUTHORIZED', kind: 'permanent', what: 'not authorised' },
  PublisherRevokedError: {
    code: 'SINK_EVENTHUBS_UNAUTHORIZED',
    kind: 'permanent',
    what: 'publisher revoked',
  },
  MessagingEntityNotFoundError: {
    code: 'SINK_EVENTHUBS_HUB_NOT_FOUND',
    kind: 'permanent',
    what: 'event hub not found',
  },
  MessagingEntityDisabledError: {
    code: 'SINK_EVENTHUBS_HUB_DISABLED',
    kind: 'permanent',
    what: 'event hub disabled',
  },
  ArgumentError: { code: 'SINK_EVENTHUBS_INVALID_ARGUMENT', kind: 'permanent', what: 'rejected as invalid' },
  ArgumentOutOfRangeError: {
    code: 'SINK_EVENTHUBS_INVALID_ARGUMENT',
    kind: 'permanent',
    what: 'rejected as invalid',
  },
  MessageTooLargeError: {
    code: 'SINK_EVENTHUBS_MESSAGE_TOO_LARGE',
    kind: 'permanent',
    what: 'message too large',
  },
  // DNS has no such namespace; a resolver outage shows as EAI_AGAIN instead.
  ENOTFOUND: {
    code: 'SINK_EVENTHUBS_NAMESPACE_NOT_FOUND',
    kind: 'permanent',
    what: 'namespace host not found',
  },
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

export function classify(error: unknown): Classified {
  if (error instanceof AggregateError) {
    // Happy Eyeballs (several addresses tried): retriable if any attempt was.
    const inner = error.errors.map(classify);
    return inner.find((c) => c.kind === 'retriable') ?? inner[0] ?? fallback(error);
  }
  const err = (error ?? {}) as { name?: unknown; code?: unknown; retryable?: unknown };
  const name = typeof err.name === 'string' ? err.name : undefined;
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (name === 'AbortError')
    return { code: 'SINK_EVENTHUBS_ABORTED', kind: 'retriable', what: 'aborted', status: undefined };
  // The SDK's retry helper renames (not recodes) a failure it traced to a lost network.
  const known = (name === 'ConnectionLostError' && BY_CODE[name]) || (code && BY_CODE[code]);
  if (known) return { ...known, status: code ?? name };
  if (code && NETWORK_CODES.has(code))
    return { code: 'SINK_EVENTHUBS_CONNECTION', kind: 'retriable', what: 'network error', status: code };
  return fallback(error);
}

function fallback(error: unknown): Classified {
  const err = (error ?? {}) as { name?: unknown; code?: unknown; retryable?: unknown };
  const status = typeof err.code === 'string' ? err.code : undefined;
  // A MessagingError carries the SDK's judgement; anything else (TypeError, a closed client)
  // is a fault that retrying will not cure.
  const retriable = err.name === 'MessagingError' && err.retryable === true;
  return {
    code: 'SINK_EVENTHUBS_SEND_FAILED',
    kind: retriable ? 'retriable' : 'permanent',
    what: 'send failed',
    status,
  };
}
