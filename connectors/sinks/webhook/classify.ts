import { STATUS_CODES } from 'node:http';
import { DeliveryError } from '../types.js';
import { redact } from './config.js';

/** What a message needs to say where a request went. */
export interface Target {
  method: string;
  displayUrl: string;
  /** Values masked in any text we did not write (response bodies, library messages). */
  secrets: readonly string[];
}

/**
 * Maps a response status to the lane's decision, or undefined for 2xx. 408, 429 and 5xx
 * are worth retrying (with the receiver's Retry-After); redirects are not followed, so a
 * 3xx is a wrong URL, as is every other 4xx.
 */
export function classifyStatus(
  status: number,
  retryAfter: string | undefined,
  responseText: string,
  target: Target,
  nowMs: number,
): DeliveryError | undefined {
  if (status >= 200 && status < 300) return undefined;
  const text = redact(responseText.trim(), target.secrets);
  const message =
    `webhook ${target.method} ${target.displayUrl} answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd() +
    (status >= 300 && status < 400 ? ' (redirects are not followed: configure the final URL)' : '') +
    (text ? `: ${text}` : '');
  const retriable = (code: string) =>
    new DeliveryError(code, message, 'retriable', {
      status,
      retryAfterMs: parseRetryAfter(retryAfter, nowMs),
    });
  const permanent = (code: string) => new DeliveryError(code, message, 'permanent', { status });

  if (status === 408) return retriable('SINK_WEBHOOK_HTTP_408');
  if (status === 429) return retriable('SINK_WEBHOOK_HTTP_429');
  if (status >= 500 && status < 600) return retriable('SINK_WEBHOOK_HTTP_5XX');
  if (status >= 400 && status < 500) return permanent('SINK_WEBHOOK_HTTP_4XX');
  if (status >= 300 && status < 400) return permanent('SINK_WEBHOOK_HTTP_3XX');
  return permanent('SINK_WEBHOOK_HTTP_STATUS');
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from now; undefined if unusable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** How the attempt ended when no response came back. */
export interface Interruption {
  /** Our per-attempt deadline (context.timeoutMs) passed. */
  timedOut: boolean;
  /** The caller's signal aborted (shutdown). */
  aborted: boolean;
  timeoutMs: number;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ECONNABORTED',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME']);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
/** The request itself is malformed: sending it again cannot help. */
const REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_CHAR']);

/**
 * Maps a failure without a response. Network trouble, DNS and timeouts are retriable, and so
 * are TLS failures (a receiver's expired certificate gets fixed; giving up would lose data).
 * Anything unrecognised is retriable too: the lane's retry limit ends it, and nothing is lost.
 */
export function classifyFailure(error: unknown, how: Interruption, target: Target): DeliveryError {
  const where = `webhook ${target.method} ${target.displayUrl}`;
  if (how.timedOut)
    return new DeliveryError(
      'SINK_WEBHOOK_TIMEOUT',
      `${where} did not answer within ${how.timeoutMs} ms`,
      'retriable',
      { cause: error },
    );
  if (how.aborted)
    return new DeliveryError(
      'SINK_WEBHOOK_ABORTED',
      `${where} was aborted before it completed`,
      'retriable',
      {
        cause: error,
      },
    );

  const code = errorCode(error) ?? '';
  const detail = `${redact(describe(error), target.secrets)}${code ? ` (${code})` : ''}`;
  const retriable = (c: string, what: string) =>
    new DeliveryError(c, `${where} failed: ${what}: ${detail}`, 'retriable', { cause: error });

  if (TIMEOUT_CODES.has(code)) return retriable('SINK_WEBHOOK_TIMEOUT', 'timed out');
  if (DNS_CODES.has(code)) return retriable('SINK_WEBHOOK_DNS', 'host name did not resolve');
  if (CONNECTION_CODES.has(code)) return retriable('SINK_WEBHOOK_CONNECTION', 'connection failed');
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL'))
    return retriable('SINK_WEBHOOK_TLS', 'TLS handshake failed');
  if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED')
    return retriable('SINK_WEBHOOK_CLOSED', 'the sink is closed');
  if (REQUEST_CODES.has(code))
    return new DeliveryError(
      'SINK_WEBHOOK_REQUEST_INVALID',
      `${where} cannot be sent: ${detail}`,
      'permanent',
      {
        cause: error,
      },
    );
  return retriable('SINK_WEBHOOK_REQUEST_FAILED', 'unexpected error');
}

/** The code of a Node/undici error, looking inside AggregateError (happy eyeballs) and causes. */
function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors) && e.errors.length) return errorCode(e.errors[0]);
  return e.cause ? errorCode(e.cause) : undefined;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
