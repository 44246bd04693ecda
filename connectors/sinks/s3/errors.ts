/**
 * Classifies a failed S3 call (SDK service error, network error, timeout, abort) as a
 * DeliveryError. The client makes one attempt only (maxAttempts 1), so every failure ends
 * up here and the lane decides about the next attempt.
 */
import { DeliveryError } from '../types.js';

export interface S3Call {
  /** Credentials: resolving them (STS AssumeRole with role_arn, or the default chain). */
  operation: 'Credentials' | 'HeadBucket' | 'PutObject';
  bucket: string;
  roleArn?: string;
  key?: string;
  /** Keys given in the config cannot refresh themselves; role and default-chain credentials can. */
  staticCredentials: boolean;
}

/** What the SDK puts on service errors (duck-typed: STS errors look the same). */
interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

const THROTTLING = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
]);
const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'InvalidClientTokenId',
  'IncompleteSignature',
]);
const EXPIRED_CREDENTIALS = new Set(['ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired']);
/** 400s that S3 sends for conditions that pass: a slow upload, clock skew (the SDK corrects its offset). */
const TRANSIENT_400 = new Set(['RequestTimeout', 'RequestTimeTooSkewed', 'OperationAborted']);

export function classifyS3Error(err: unknown, call: S3Call): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const e = (err ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const where =
    call.operation === 'PutObject'
      ? `PutObject s3://${call.bucket}/${call.key ?? ''}`
      : call.operation === 'Credentials'
        ? `credentials for bucket ${call.bucket}${call.roleArn ? ` (assuming role ${call.roleArn})` : ''}`
        : `HeadBucket ${call.bucket}`;
  const text = (e.message && e.message !== name ? `${name}: ${e.message}` : name).slice(0, 500);
  const fail = (code: string, kind: 'retriable' | 'permanent', message: string, retryAfterMs?: number) =>
    new DeliveryError(`SINK_S3_${code}`, `S3 ${where}: ${message}`, kind, {
      status: status ?? e.code ?? name,
      cause: err,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });

  if (name === 'AbortError') return fail('ABORTED', 'retriable', `aborted (${text})`);
  // The HTTP handler renames ECONNRESET and EPIPE to TimeoutError; they are connection losses.
  if (name === 'TimeoutError' && (e.code === 'ECONNRESET' || e.code === 'EPIPE'))
    return fail('NETWORK', 'retriable', `${text} (${e.code})`);
  if (name === 'TimeoutError') return fail('TIMEOUT', 'retriable', text);
  if (name === 'CredentialsProviderError')
    return fail('NO_CREDENTIALS', 'permanent', `no AWS credentials could be loaded (${text})`);

  if (status === undefined) {
    // No HTTP answer. Socket and DNS failures carry a system error code; anything else is a bug.
    if (e.code || e.$metadata) return fail('NETWORK', 'retriable', `${text}${e.code ? ` (${e.code})` : ''}`);
    return fail('UNEXPECTED', 'permanent', text);
  }

  const answer = `HTTP ${status} ${text}`;
  if (THROTTLING.has(name) || status === 429 || status === 503)
    return fail('THROTTLED', 'retriable', answer, retryAfterMs(e.$response?.headers?.['retry-after']));
  if (status >= 500) return fail('HTTP_5XX', 'retriable', answer);
  if (status === 408 || TRANSIENT_400.has(name)) return fail('TIMEOUT', 'retriable', answer);
  if (name === 'NoSuchBucket' || (status === 404 && call.operation === 'HeadBucket'))
    return fail('BUCKET_NOT_FOUND', 'permanent', `the bucket does not exist (${answer})`);
  if (BAD_CREDENTIALS.has(name)) return fail('BAD_CREDENTIALS', 'permanent', answer);
  if (EXPIRED_CREDENTIALS.has(name))
    return call.staticCredentials
      ? fail('BAD_CREDENTIALS', 'permanent', `the configured session token has expired (${answer})`)
      : fail('CREDENTIALS_EXPIRED', 'retriable', answer);
  if (status === 403) return fail('ACCESS_DENIED', 'permanent', answer);
  if (status === 301 || name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed') {
    const region = e.$response?.headers?.['x-amz-bucket-region'];
    return fail('WRONG_REGION', 'permanent', `${answer}${region ? ` (the bucket is in ${region})` : ''}`);
  }
  // 307: a new bucket whose DNS name has not propagated yet; it settles by itself.
  if (status === 307) return fail('REDIRECT', 'retriable', answer);
  return fail('HTTP_4XX', 'permanent', answer);
}

/** Retry-After as seconds or an HTTP date; S3 itself does not send it, compatible stores may. */
function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
