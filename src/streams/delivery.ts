/**
 * Delivery of one batch to one sink, the same for every sink: attempts with exponential
 * backoff and jitter (p-retry) until the batch is delivered, a permanent error stops it,
 * or the time budget is spent. A Retry-After from the destination replaces the backoff
 * for that wait. After a partial failure only the records that failed are sent again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';
import { DeliveryError, type Sink, type SinkBatch, type SinkRecord } from '../../connectors/sinks/types.js';
import { DataStreamerError } from '../util/errors.js';

export interface RetryPolicy {
  /** First backoff; each further one doubles, with jitter (x1 to x2), up to maxDelayMs. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Give up once this much time has passed since the first attempt. */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { minDelayMs: 500, maxDelayMs: 60_000, maxElapsedMs: 15 * 60_000 };

/** The batch could not be delivered; `records` are the ones still undelivered. */
export class DeliveryFailed extends DataStreamerError {
  constructor(
    readonly last: DeliveryError,
    readonly attempts: number,
    readonly records: SinkRecord[],
  ) {
    super(
      'STREAM_DELIVERY_FAILED',
      `${records.length} record(s) not delivered after ${attempts} attempt(s): ${last.message}`,
      last.kind === 'permanent' ? 'permanent' : 'retriable',
      { cause: last },
    );
    this.name = 'DeliveryFailed';
  }
}

/** Anything a sink throws that is not a DeliveryError is a bug or an unforeseen failure: retried, within the budget. */
function asDeliveryError(error: unknown): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DeliveryError(
    'SINK_UNEXPECTED_ERROR',
    `unexpected error from the sink: ${message}`,
    'retriable',
    {
      cause: error,
    },
  );
}

export interface DeliverOptions {
  signal?: AbortSignal;
  /** Each failed attempt, for metrics and the stream's last error. */
  onAttemptFailed?: (error: DeliveryError, attempt: number) => void;
}

/** Resolves with the number of attempts once every record is delivered; rejects with DeliveryFailed. */
export async function deliver(
  sink: Sink,
  batch: SinkBatch,
  policy: RetryPolicy,
  options: DeliverOptions = {},
): Promise<number> {
  let pending = batch;
  let attempts = 0;
  let last: DeliveryError | undefined;
  try {
    await pRetry(
      async () => {
        attempts++;
        try {
          await sink.write(pending, options.signal);
        } catch (thrown) {
          if (options.signal?.aborted) throw new AbortError(asDeliveryError(thrown));
          last = asDeliveryError(thrown);
          options.onAttemptFailed?.(last, attempts);
          if (last.kind === 'partial') {
            const failed = new Set(last.failed);
            pending = { ...pending, records: pending.records.filter((_, i) => failed.has(i)) };
          }
          throw last.kind === 'permanent' ? new AbortError(last) : last;
        }
      },
      {
        retries: Number.POSITIVE_INFINITY,
        factor: 2,
        minTimeout: policy.minDelayMs,
        maxTimeout: policy.maxDelayMs,
        randomize: true,
        maxRetryTime: policy.maxElapsedMs,
        signal: options.signal,
        // The destination said how long to wait: wait that long instead of the backoff.
        onFailedAttempt: async ({ error }) => {
          const wait = (error as DeliveryError).retryAfterMs;
          if (wait) await sleep(Math.min(wait, policy.maxDelayMs), undefined, { signal: options.signal });
        },
        shouldConsumeRetry: ({ error }) => !(error as DeliveryError).retryAfterMs,
      },
    );
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new DeliveryFailed(last ?? asDeliveryError(error), attempts, pending.records);
  }
  return attempts;
}
