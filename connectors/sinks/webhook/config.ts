import { DeliveryError } from '../types.js';

/** `destination.credentials` of a RestAPI stream, as config.schema.json describes them. */
export interface WebhookCredentials {
  url: string;
  method?: 'POST' | 'PUT' | 'PATCH';
  /** "Name:value" strings, emnify's way to authenticate the webhook. */
  headers?: string[];
  /** Ours, not emnify's: signs each request with HMAC-SHA256. */
  signing_secret?: string;
}

/** The credentials parsed once, in the shape a request needs. */
export interface WebhookConfig {
  /** scheme://host:port, what the connection pool is bound to. */
  origin: string;
  /** Path and query string of each request. */
  path: string;
  /** The URL as error messages show it: without the query string, which may carry a token. */
  displayUrl: string;
  method: 'POST' | 'PUT' | 'PATCH';
  /** [name, value] pairs in the configured order; duplicates are kept. */
  headers: [string, string][];
  signingSecret: string | undefined;
  /** Every value that must never appear in a message: header values and the signing secret. */
  secrets: string[];
}

/** Headers the sink sets itself or that belong to the connection, so a configured one would clash. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
const RESERVED_PREFIX = 'x-data-streamer-';

/**
 * Checks what the schema cannot (reserved header names, the format) and splits the headers.
 * Throws a permanent DeliveryError (SINK_WEBHOOK_CONFIG) that names the field, never a value.
 */
export function parseWebhookConfig(credentials: WebhookCredentials, format: string): WebhookConfig {
  const fail = (what: string) =>
    new DeliveryError('SINK_WEBHOOK_CONFIG', `webhook destination: ${what}`, 'permanent');

  if (format !== 'Json') throw fail(`format "${format}" is not supported (only Json)`);

  let url: URL;
  try {
    url = new URL(credentials.url);
  } catch {
    throw fail('url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail('url must be http:// or https://');
  if (url.username || url.password) throw fail('url must not carry user:password@, use headers');

  const headers: [string, string][] = [];
  for (const [i, line] of (credentials.headers ?? []).entries()) {
    // Split at the first colon only: values such as URLs contain colons themselves.
    const colon = line.indexOf(':');
    if (colon < 0) throw fail(`headers[${i}] is not "Name:value"`);
    const name = line.slice(0, colon).trim();
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith(RESERVED_PREFIX))
      throw fail(`headers[${i}] sets "${name}", which the sink sets itself`);
    // Surrounding spaces are not part of a header value (RFC 9110 §5.5).
    headers.push([name, line.slice(colon + 1).trim()]);
  }

  const signingSecret = credentials.signing_secret || undefined;
  const secrets = [...headers.map(([, value]) => value), ...(signingSecret ? [signingSecret] : [])].filter(
    (s) => s.length > 0,
  );

  return {
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    displayUrl: `${url.origin}${url.pathname}`,
    method: credentials.method ?? 'POST',
    headers,
    signingSecret,
    secrets,
  };
}

/** Replaces every secret in a text we did not write (a response body, a library's message). */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains a shorter one is masked whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}
