/**
 * What a failed Pub/Sub call means for the lane. Pub/Sub speaks gRPC, so the status code
 * decides; the Google client puts it on the error as a number (`code`).
 */
import type { ErrorKind } from '../../../src/util/errors.js';

/** gRPC status codes by name (google.rpc.Code). */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** Transient on Google's side or the network's: the same request may succeed later. */
const RETRIABLE = new Set([
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'ABORTED',
  'INTERNAL',
  'UNKNOWN',
  'CANCELLED',
  'DATA_LOSS',
]);

/**
 * grpc-js reports a failing credentials plugin as UNKNOWN ("Getting metadata from plugin
 * failed with error: ..."). These inner errors mean the key or ADC itself is wrong, which
 * no retry fixes; token-endpoint network errors stay retriable.
 */
const AUTH_PLUGIN_FAILURE = 'Getting metadata from plugin failed';
const BAD_CREDENTIALS = [
  'Could not load the default credentials',
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'No key or keyFile set',
  'DECODER routines',
  'PEM',
];

export interface GrpcFailure {
  /** Stable error code: SINK_PUBSUB_<gRPC status>, or SINK_PUBSUB_CLIENT_ERROR outside gRPC. */
  code: string;
  /** Status name, e.g. NOT_FOUND; the error's own code or name when it is not a gRPC status. */
  status: string;
  kind: Exclude<ErrorKind, 'partial'>;
  /** What the destination said, without the "5 NOT_FOUND: " prefix. */
  details: string;
  /** The destination asked for a pause (google.rpc.RetryInfo). */
  retryAfterMs?: number;
  /** Credentials rejected rather than a request. */
  auth: boolean;
}

interface GrpcLikeError {
  code?: unknown;
  details?: unknown;
  message?: unknown;
  statusDetails?: unknown;
}

export function classifyGrpcError(error: unknown): GrpcFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as GrpcLikeError;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const details = typeof e.details === 'string' && e.details !== '' ? e.details : message;
  const name = typeof e.code === 'number' ? STATUS_NAMES[e.code] : undefined;
  const retryAfterMs = retryDelayMs(e.statusDetails);
  const failure = (status: string, kind: GrpcFailure['kind'], auth = false): GrpcFailure => {
    const code = name ? `SINK_PUBSUB_${status}` : 'SINK_PUBSUB_CLIENT_ERROR';
    const result: GrpcFailure = { code, status, kind, details, auth };
    if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
    return result;
  };

  if (!name) {
    // Not a gRPC status: a socket or library error before any call was made. Seen ones
    // (ECONNRESET, a token endpoint that does not answer) pass with time.
    return failure(typeof e.code === 'string' ? e.code : 'ERROR', 'retriable');
  }
  if (name === 'UNAUTHENTICATED' || name === 'PERMISSION_DENIED') return failure(name, 'permanent', true);
  if (
    name === 'UNKNOWN' &&
    details.includes(AUTH_PLUGIN_FAILURE) &&
    BAD_CREDENTIALS.some((s) => details.includes(s))
  )
    return failure('UNAUTHENTICATED', 'permanent', true);
  return failure(name, RETRIABLE.has(name) ? 'retriable' : 'permanent');
}

/** google.rpc.RetryInfo, as google-gax decodes it from grpc-status-details-bin. */
function retryDelayMs(statusDetails: unknown): number | undefined {
  if (!Array.isArray(statusDetails)) return undefined;
  for (const detail of statusDetails) {
    const delay = (detail as { retryDelay?: { seconds?: unknown; nanos?: unknown } } | null)?.retryDelay;
    if (!delay) continue;
    const ms = Number(delay.seconds ?? 0) * 1000 + Number(delay.nanos ?? 0) / 1e6;
    if (Number.isFinite(ms) && ms > 0) return Math.ceil(ms);
  }
  return undefined;
}
