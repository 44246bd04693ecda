/**
 * What a failed Kinesis call or a failed PutRecords entry means for the lane: retry the
 * batch (retriable), give it up (permanent). Partial failures are assembled in sink.ts.
 */
import type { ErrorKind } from '../../../src/util/errors.js';
import { DeliveryError } from '../types.js';
import { AssumeRoleError } from './client.js';

/** Whole-call errors that say "slow down", by the name the SDK gives them (`__type`). */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'LimitExceededException',
  'KMSThrottlingException',
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);

const ACCESS_DENIED = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'ExpiredTokenException',
  'ExpiredToken',
]);

/** The stream's KMS key is unusable: nothing is written until the customer fixes it. */
const KMS_MISCONFIGURED = new Set([
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSNotFoundException',
  'KMSOptInRequired',
]);

/**
 * PutRecords entry error codes that will fail again the same way. AWS documents only
 * ProvisionedThroughputExceededException and InternalFailure (both retriable) for
 * entries; KMS errors are seen there too. Unknown codes count as retriable.
 */
export function isPermanentEntryError(code: string): boolean {
  return KMS_MISCONFIGURED.has(code) || ACCESS_DENIED.has(code) || code === 'ResourceNotFoundException';
}

/** The parts of an SDK (or Node) error we read; all optional, as anything can be thrown. */
interface ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Removes the given secret values from text that came from the destination or the SDK. */
export function scrub(text: string, secrets: readonly string[]): string {
  let clean = text;
  for (const secret of secrets) clean = clean.split(secret).join('***');
  // Destination messages are for people; a runaway one would flood the stream's status.
  return clean.length > 500 ? `${clean.slice(0, 500)}…` : clean;
}

/**
 * Classifies an error thrown by a Kinesis call (`what`, e.g. "PutRecords") on `target`
 * (describeStream()). Any error without an HTTP status is a network failure, a timeout or
 * an abort: retriable.
 */
export function classifyKinesisError(
  error: unknown,
  target: string,
  what: string,
  secrets: readonly string[],
): DeliveryError {
  if (error instanceof DeliveryError) return error;
  if (error instanceof AssumeRoleError) return classifyAssumeRole(error, target, secrets);

  const e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as ErrorLike;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const said = scrub(`${name}: ${e.message ?? ''}`, secrets);
  const fail = (code: string, kind: ErrorKind, text: string) =>
    new DeliveryError(code, `${target}: ${what} ${text} (${said})`, kind, {
      status: status ?? e.code ?? name,
      cause: error,
    });

  if (name === 'AbortError') return fail('SINK_KINESIS_ABORTED', 'retriable', 'was aborted');
  if (name === 'CredentialsProviderError')
    return fail('SINK_KINESIS_NO_CREDENTIALS', 'permanent', 'found no AWS credentials to sign with');
  if (status === undefined) {
    const timedOut = name === 'TimeoutError' || e.code === 'ETIMEDOUT';
    return timedOut
      ? fail('SINK_KINESIS_TIMEOUT', 'retriable', 'timed out')
      : fail('SINK_KINESIS_NETWORK', 'retriable', `failed on the network${e.code ? ` (${e.code})` : ''}`);
  }
  if (name === 'ResourceNotFoundException')
    return fail('SINK_KINESIS_STREAM_NOT_FOUND', 'permanent', 'found no such stream');
  if (ACCESS_DENIED.has(name))
    return fail('SINK_KINESIS_ACCESS_DENIED', 'permanent', `was denied (HTTP ${status})`);
  if (THROTTLING.has(name) || status === 429)
    return fail('SINK_KINESIS_THROTTLED', 'retriable', `was throttled (HTTP ${status})`);
  if (KMS_MISCONFIGURED.has(name))
    return fail('SINK_KINESIS_KMS', 'permanent', `failed on the stream's KMS key (HTTP ${status})`);
  // The stream is being created, resharded or updated: it will accept writes again.
  if (name === 'ResourceInUseException')
    return fail('SINK_KINESIS_STREAM_BUSY', 'retriable', `found the stream busy (HTTP ${status})`);
  if (status === 408) return fail('SINK_KINESIS_TIMEOUT', 'retriable', 'timed out (HTTP 408)');
  if (status >= 500) return fail('SINK_KINESIS_HTTP_5XX', 'retriable', `failed with HTTP ${status}`);
  if (status >= 400) return fail('SINK_KINESIS_REJECTED', 'permanent', `was rejected with HTTP ${status}`);
  // A 2xx/3xx the SDK could not read: perhaps a proxy in between; worth another try.
  return fail('SINK_KINESIS_BAD_RESPONSE', 'retriable', `got an unreadable answer (HTTP ${status})`);
}

/** STS failures: its own outages are retriable, a role that cannot be assumed is not. */
function classifyAssumeRole(
  error: AssumeRoleError,
  target: string,
  secrets: readonly string[],
): DeliveryError {
  const inner = classifyKinesisError(
    error.cause,
    `${target}: STS`,
    `AssumeRole of ${error.roleArn}`,
    secrets,
  );
  const code =
    inner.kind === 'retriable' ? 'SINK_KINESIS_ASSUME_ROLE_UNAVAILABLE' : 'SINK_KINESIS_ASSUME_ROLE';
  return new DeliveryError(code, inner.message, inner.kind, { status: inner.status, cause: error });
}
