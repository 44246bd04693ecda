/**
 * Publishes a stream's records to a Google Cloud Pub/Sub topic, one message per record,
 * ordered per endpoint (ordering key = endpoint id).
 *
 * A write hands the whole batch to the client's publisher, which packs it into Publish
 * requests (up to 1000 messages / 9 MiB each, one request in flight per ordering key), and
 * waits for every message's outcome. The client's own retries are off: the lane retries.
 */
import { type CallOptions, PubSub, type Topic } from '@google-cloud/pubsub';
import { DeliveryError, type Sink, type SinkBatch, type SinkContext } from '../types.js';
import { classifyGrpcError, type GrpcFailure } from './classify.js';
import { clientConfig, type PubSubCredentials } from './client-config.js';
import { MAX_MESSAGE_BYTES, messageBytes, recordMessage } from './message.js';

const PUBLISH_PERMISSION = 'pubsub.topics.publish';

/** One record's outcome: undefined while its publish is in flight. */
type Outcome = { ok: true } | { ok: false; failure: GrpcFailure };

export class PubSubSink implements Sink {
  readonly #credentials: PubSubCredentials;
  readonly #context: SinkContext;
  readonly #topicPath: string;
  #client: PubSub | undefined;
  #topic: Topic | undefined;

  constructor(credentials: PubSubCredentials, context: SinkContext) {
    this.#credentials = credentials;
    this.#context = context;
    this.#topicPath = `projects/${credentials.cps_project}/topics/${credentials.cps_topic}`;
  }

  async open(): Promise<void> {
    if (this.#topic) return;
    const client = new PubSub(clientConfig(this.#credentials));
    const topic = client.topic(this.#credentials.cps_topic, {
      messageOrdering: true,
      // maxBytes stays under Publish's 10 MB request limit (the client caps it at 9 MiB too);
      // maxMilliseconds only matters for a batch's tail, as write() adds everything at once.
      batching: { maxMessages: 1000, maxBytes: 9 * 1024 * 1024, maxMilliseconds: 10 },
      gaxOpts: this.#callOptions(),
    });
    try {
      await this.#checkTopic(topic);
    } catch (error) {
      await client.close().catch(() => {});
      throw error;
    }
    this.#client = client;
    this.#topic = topic;
  }

  async write(batch: SinkBatch, signal?: AbortSignal): Promise<void> {
    const topic = this.#topic;
    if (!topic) {
      throw new DeliveryError(
        'SINK_PUBSUB_NOT_OPEN',
        `Pub/Sub sink for ${this.#topicPath} is not open`,
        'retriable',
      );
    }
    if (signal?.aborted) {
      throw new DeliveryError(
        'SINK_PUBSUB_ABORTED',
        `Pub/Sub publish to ${this.#topicPath} aborted`,
        'retriable',
      );
    }
    const deadline = AbortSignal.timeout(this.#context.timeoutMs);
    const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;

    const outcomes: (Outcome | undefined)[] = new Array(batch.records.length);
    let returned = false;
    const publishes = batch.records.map(async (record, i) => {
      const message = recordMessage(record, batch);
      const bytes = messageBytes(message);
      if (bytes > MAX_MESSAGE_BYTES) {
        outcomes[i] = { ok: false, failure: tooLarge(record.id, bytes) };
        return;
      }
      try {
        await topic.publishMessage(message);
        outcomes[i] = { ok: true };
      } catch (error) {
        outcomes[i] = { ok: false, failure: classifyGrpcError(error) };
        // Failed after the attempt gave up: nobody below resumes its key, so do it here.
        if (returned && message.orderingKey) topic.resumePublishing(message.orderingKey);
      }
    });
    const stopped = await settledOrStopped(Promise.all(publishes), stop);
    returned = true;

    const failed: number[] = [];
    const failures: GrpcFailure[] = [];
    const pausedKeys = new Set<string>();
    for (let i = 0; i < batch.records.length; i++) {
      const outcome = outcomes[i];
      if (outcome?.ok) continue;
      failed.push(i);
      if (!outcome) continue;
      failures.push(outcome.failure);
      const key = batch.records[i]?.key;
      if (key) pausedKeys.add(key);
    }
    // After a failed Publish the client pauses the ordering key and rejects its later
    // messages until resumed; resume now so the lane's retry of these records goes through.
    for (const key of pausedKeys) topic.resumePublishing(key);
    if (failed.length === 0) return;
    throw this.#deliveryError(
      batch.records.length,
      failed,
      failures,
      stopped ? stopReason(signal) : undefined,
    );
  }

  async flush(): Promise<void> {
    // write() waits for every message, so only the tail of an aborted write can be queued.
    await this.#topic?.flush();
  }

  async close(): Promise<void> {
    const client = this.#client;
    const topic = this.#topic;
    this.#client = undefined;
    this.#topic = undefined;
    if (!client) return;
    try {
      if (topic) await settledOrStopped(topic.flush(), AbortSignal.timeout(this.#context.timeoutMs));
    } finally {
      await client.close();
    }
  }

  /**
   * No client-side retries (the lane owns them, with backoff), and each call is bounded by
   * the attempt's timeout. retryCodes [] turns gax's retrying caller into a plain one.
   */
  #callOptions(): CallOptions {
    return { timeout: this.#context.timeoutMs, retry: { retryCodes: [] } };
  }

  /**
   * testIamPermissions needs no permission of its own, so it works for an account that may
   * only publish (roles/pubsub.publisher cannot read the topic). The emulator has no IAM
   * (UNIMPLEMENTED): there, reading the topic answers whether it exists.
   */
  async #checkTopic(topic: Topic): Promise<void> {
    let granted: boolean;
    try {
      const [permissions] = await topic.iam.testPermissions([PUBLISH_PERMISSION], this.#callOptions());
      granted = permissions[PUBLISH_PERMISSION] === true;
    } catch (error) {
      const failure = classifyGrpcError(error);
      if (failure.status !== 'UNIMPLEMENTED') throw this.#openError(failure);
      try {
        await topic.getMetadata(this.#callOptions());
        return;
      } catch (error) {
        throw this.#openError(classifyGrpcError(error));
      }
    }
    if (!granted) {
      throw new DeliveryError(
        'SINK_PUBSUB_PERMISSION_DENIED',
        `Pub/Sub topic ${this.#topicPath}: the service account lacks ${PUBLISH_PERMISSION} ` +
          '(grant it roles/pubsub.publisher on the topic)',
        'permanent',
        { status: 'PERMISSION_DENIED' },
      );
    }
  }

  #openError(failure: GrpcFailure): DeliveryError {
    return new DeliveryError(
      failure.code,
      `Pub/Sub topic ${this.#topicPath} cannot be used: ${describe(failure)}`,
      failure.kind,
      details(failure),
    );
  }

  #deliveryError(
    total: number,
    failed: number[],
    failures: GrpcFailure[],
    stopped: 'timeout' | 'aborted' | undefined,
  ): DeliveryError {
    const first = failures[0];
    const counts = `${failed.length} of ${total} records`;
    const where = `Pub/Sub publish to ${this.#topicPath}`;
    const unanswered = failed.length - failures.length;
    const why = [
      first && describe(first),
      unanswered > 0 &&
        `${unanswered} unanswered when the attempt ${stopped === 'timeout' ? 'timed out' : 'was aborted'}`,
    ]
      .filter(Boolean)
      .join('; ');
    const retryAfterMs = Math.max(0, ...failures.map((f) => f.retryAfterMs ?? 0)) || undefined;

    if (failed.length < total) {
      return new DeliveryError('SINK_PUBSUB_PARTIAL', `${where}: ${counts} not accepted: ${why}`, 'partial', {
        failed,
        status: first?.status ?? stopped,
        retryAfterMs,
      });
    }
    if (unanswered > 0 || !first) {
      const code = stopped === 'timeout' ? 'SINK_PUBSUB_TIMEOUT' : 'SINK_PUBSUB_ABORTED';
      return new DeliveryError(code, `${where}: ${counts} not accepted: ${why}`, 'retriable', {
        status: first?.status ?? stopped,
        retryAfterMs,
      });
    }
    // Every record failed and was answered: permanent only if no failure could pass later.
    const kind = failures.every((f) => f.kind === 'permanent') ? 'permanent' : 'retriable';
    const lead = failures.find((f) => f.kind === kind) ?? first;
    return new DeliveryError(lead.code, `${where}: ${counts} not accepted: ${describe(lead)}`, kind, {
      ...details(lead),
      retryAfterMs,
    });
  }
}

function describe(failure: GrpcFailure): string {
  const hint = failure.auth ? ' (check the credentials and that the account may publish to the topic)' : '';
  return `${failure.status}: ${failure.details}${hint}`;
}

function details(failure: GrpcFailure): { status: string; retryAfterMs?: number } {
  return failure.retryAfterMs === undefined
    ? { status: failure.status }
    : { status: failure.status, retryAfterMs: failure.retryAfterMs };
}

function tooLarge(recordId: number, bytes: number): GrpcFailure {
  return {
    code: 'SINK_PUBSUB_MESSAGE_TOO_LARGE',
    status: 'INVALID_ARGUMENT',
    kind: 'permanent',
    details: `record ${recordId} makes a ${bytes}-byte message, above Pub/Sub's ${MAX_MESSAGE_BYTES}-byte limit`,
    auth: false,
  };
}

function stopReason(signal: AbortSignal | undefined): 'timeout' | 'aborted' {
  return signal?.aborted ? 'aborted' : 'timeout';
}

/** Resolves false when `work` settles, true when `stop` fires first. */
async function settledOrStopped(work: Promise<unknown>, stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return true;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<boolean>((resolve) => {
    onAbort = () => resolve(true);
    stop.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work.then(() => false), stopped]);
  } finally {
    if (onAbort) stop.removeEventListener('abort', onAbort);
  }
}
