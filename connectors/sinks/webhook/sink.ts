import { type Dispatcher, Pool } from 'undici';
import {
  DeliveryError,
  type Sink,
  type SinkBatch,
  type SinkContext,
  type SinkDestination,
} from '../types.js';
import { classifyFailure, classifyStatus, type Interruption, type Target } from './classify.js';
import { parseWebhookConfig, type WebhookConfig, type WebhookCredentials } from './config.js';
import { encodeBody, requestHeaders } from './request.js';

/** Characters of a receiver's error answer kept in the message: enough for its reason. */
const ERROR_TEXT_CHARS = 300;
/** Bytes of an error answer read (to reuse the connection) before dropping the connection instead. */
const ERROR_BODY_BYTES = 1024 * 1024;

/**
 * Delivers each batch as one HTTP request to one URL over a keep-alive connection pool.
 * undici neither retries nor follows redirects unless told to (we install no interceptors),
 * so one `write` is exactly one request.
 */
export class WebhookSink implements Sink {
  readonly #config: WebhookConfig | undefined;
  /** Set when the credentials passed the schema but not the checks after it (reserved headers). */
  readonly #configError: DeliveryError | undefined;
  readonly #context: SinkContext;
  readonly #target: Target;
  readonly #pool: Pool | undefined;
  #closed = false;

  constructor(destination: SinkDestination<WebhookCredentials>, context: SinkContext) {
    this.#context = context;
    try {
      this.#config = parseWebhookConfig(destination.credentials, destination.format);
    } catch (error) {
      if (!(error instanceof DeliveryError)) throw error;
      this.#configError = error;
    }
    const config = this.#config;
    this.#target = {
      method: config?.method ?? 'POST',
      displayUrl: config?.displayUrl ?? '(invalid url)',
      secrets: config?.secrets ?? [],
    };
    if (config)
      this.#pool = new Pool(config.origin, {
        connect: { timeout: context.timeoutMs },
        headersTimeout: context.timeoutMs,
        bodyTimeout: context.timeoutMs,
      });
  }

  /**
   * Only checks the configuration: any request would reach the customer's receiver, which
   * may count or reject a probe, so the first write is the connection test.
   */
  async open(): Promise<void> {
    this.#ready();
  }

  async write(batch: SinkBatch, signal?: AbortSignal): Promise<void> {
    const { config, pool } = this.#ready();
    if (batch.bare && batch.records.length !== 1)
      throw new DeliveryError(
        'SINK_WEBHOOK_BATCH_INVALID',
        `webhook ${config.displayUrl}: a bare batch must hold exactly one record, got ${batch.records.length}`,
        'permanent',
      );

    const body = encodeBody(batch);
    const headers = requestHeaders(config, batch, body, this.#context.now());

    // One deadline for the whole attempt (connect, send, headers, body); undici's own
    // timeouts above only back it up. The caller's signal (shutdown) aborts it too.
    const how: Interruption = { timedOut: false, aborted: false, timeoutMs: this.#context.timeoutMs };
    const attempt = new AbortController();
    const timer = setTimeout(() => {
      how.timedOut = true;
      attempt.abort();
    }, this.#context.timeoutMs);
    const onAbort = () => {
      how.aborted = true;
      attempt.abort();
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    try {
      const {
        statusCode,
        headers: responseHeaders,
        body: responseBody,
      } = await pool
        .request({ path: config.path, method: config.method, headers, body, signal: attempt.signal })
        .catch((error: unknown) => {
          throw classifyFailure(error, how, this.#target);
        });
      if (statusCode >= 200 && statusCode < 300) {
        // Reading the answer to its end lets the connection go back to the pool. Once the
        // receiver said 2xx the records are accepted, whatever happens to the rest.
        await responseBody.dump().catch(() => {});
        return;
      }
      const text = await readExcerpt(responseBody);
      const retryAfter = responseHeaders['retry-after'];
      throw classifyStatus(
        statusCode,
        Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        text,
        this.#target,
        this.#context.now(),
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Waits for requests in flight, each bounded by its deadline.
    await this.#pool?.close();
  }

  #ready(): { config: WebhookConfig; pool: Pool } {
    if (this.#configError) throw this.#configError;
    if (!this.#config || !this.#pool) throw new Error('unreachable: no config and no config error');
    if (this.#closed)
      throw new DeliveryError(
        'SINK_WEBHOOK_CLOSED',
        `webhook ${this.#config.displayUrl}: the sink is closed`,
        'retriable',
      );
    return { config: this.#config, pool: this.#pool };
  }
}

/**
 * The start of an error answer, for the message. Never throws: the status already decided
 * the outcome. A long answer is cut off with its connection rather than read to the end.
 */
async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let seen = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (seen < ERROR_TEXT_CHARS * 4) chunks.push(chunk);
      seen += chunk.length;
      if (seen > ERROR_BODY_BYTES) break;
    }
  } catch {
    // A broken answer body still leaves its status.
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > ERROR_TEXT_CHARS ? `${text.slice(0, ERROR_TEXT_CHARS)}…` : text;
}
