/**
 * Delivers a batch to one Azure event hub with @azure/event-hubs' EventHubProducerClient:
 * one event per record (body = the record's JSON bytes), records grouped by partition key
 * (the endpoint id) because an EventDataBatch carries a single key, each group cut into
 * batches that fit the link's max message size, at most MAX_IN_FLIGHT groups sending at once.
 *
 * The SDK's retries are off (maxRetries 0): one write is one attempt, and the lane retries.
 */
import { type EventData, type EventDataBatch, EventHubProducerClient } from '@azure/event-hubs';
import {
  DeliveryError,
  recordBytes,
  type Sink,
  type SinkBatch,
  type SinkContext,
  type SinkRecord,
} from '../types.js';
import { type Classified, classify } from './classify.js';
import { type EventHubsTarget, parseConnectionString, redact } from './connection-string.js';

export interface EventHubsCredentials {
  /** SAS connection string, normally with EntityPath (emnify's field). */
  connection_string: string;
  /** The hub, when the connection string has no EntityPath (a namespace-level policy). */
  event_hub_name?: string;
}

/** Key groups sending at once; batches of one key go one after the other, in record order. */
const MAX_IN_FLIGHT = 8;

interface PlannedBatch {
  batch: EventDataBatch;
  /** Indices into SinkBatch.records of the events in `batch`. */
  indices: number[];
}

interface SendOutcome {
  accepted: number;
  failed: number[];
  errors: unknown[];
}

export class EventHubsSink implements Sink {
  private client: EventHubProducerClient | undefined;
  private target: EventHubsTarget | undefined;

  constructor(
    private readonly credentials: EventHubsCredentials,
    private readonly context: SinkContext,
  ) {}

  /** Reads the hub's properties and opens the send link, so bad keys or a missing hub fail here. */
  async open(): Promise<void> {
    await this.close(); // a reopen after a failure starts from a fresh connection
    const { connection_string, event_hub_name } = this.credentials;
    const target = parseConnectionString(connection_string, event_hub_name);
    this.target = target;
    let client: EventHubProducerClient;
    try {
      client = new EventHubProducerClient(connection_string, target.hub, {
        retryOptions: { maxRetries: 0, timeoutInMs: this.context.timeoutMs },
      });
    } catch (error) {
      // Only a connection string the SDK cannot read gets here (its message quotes it: redacted).
      throw new DeliveryError(
        'SINK_EVENTHUBS_CONFIG',
        `Event Hubs destination: ${this.describe(error)}`,
        'permanent',
      );
    }
    try {
      await client.getEventHubProperties();
      // The first createBatch attaches the sender link: needs the Send claim, learns max_message_size.
      await client.createBatch();
    } catch (error) {
      await closeQuietly(client, this.context.timeoutMs);
      throw this.deliveryError(classify(error), `opening: ${this.describe(error)}`, error);
    }
    this.client = client;
  }

  async write(batch: SinkBatch, signal?: AbortSignal): Promise<void> {
    const client = this.client;
    if (!client)
      throw new DeliveryError('SINK_EVENTHUBS_NOT_OPEN', 'Event Hubs sink: write before open()', 'retriable');
    const groups = await this.plan(client, batch, signal);
    const outcome = await sendGroups(client, groups, signal);
    if (outcome.errors.length > 0) throw this.outcomeError(batch, groups, outcome);
  }

  /** Nothing is buffered: write resolves only once the hub accepted every event. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await closeQuietly(client, this.context.timeoutMs);
  }

  /** Groups the records by key and fills EventDataBatches; sends nothing yet. */
  private async plan(client: EventHubProducerClient, batch: SinkBatch, signal?: AbortSignal) {
    const groups: PlannedBatch[][] = [];
    const tooLarge: SinkRecord[] = [];
    let maxSize = 0;
    try {
      for (const [key, indices] of groupByKey(batch.records)) {
        const options = key === null ? { abortSignal: signal } : { partitionKey: key, abortSignal: signal };
        const group: PlannedBatch[] = [];
        let current: PlannedBatch | undefined;
        for (const index of indices) {
          const record = batch.records[index] as SinkRecord;
          const event = toEventData(batch, record);
          if (current?.batch.tryAdd(event)) {
            current.indices.push(index);
            continue;
          }
          const fresh: PlannedBatch = { batch: await client.createBatch(options), indices: [] };
          maxSize = fresh.batch.maxSizeInBytes;
          if (!fresh.batch.tryAdd(event)) {
            tooLarge.push(record);
            continue;
          }
          fresh.indices.push(index);
          group.push(fresh);
          current = fresh;
        }
        groups.push(group);
      }
    } catch (error) {
      throw this.deliveryError(classify(error), `preparing a batch: ${this.describe(error)}`, error);
    }
    if (tooLarge.length > 0) {
      const ids = tooLarge.map((record) => record.id).join(', ');
      const which = tooLarge.length === 1 ? `record ${ids} does` : `records ${ids} do`;
      throw new DeliveryError(
        'SINK_EVENTHUBS_RECORD_TOO_LARGE',
        `Event Hubs ${this.where()}: ${which} not fit in one event (the hub accepts at most ${maxSize} bytes per message); nothing was sent`,
        'permanent',
      );
    }
    return groups;
  }

  /** Nothing accepted: the first failure decides (retriable only if all are). Some accepted: partial. */
  private outcomeError(batch: SinkBatch, groups: PlannedBatch[][], outcome: SendOutcome): DeliveryError {
    const classified = outcome.errors.map(classify);
    const batches = groups.reduce((sum, group) => sum + group.length, 0);
    const firstPermanent = classified.findIndex((c) => c.kind === 'permanent');
    const lead = Math.max(firstPermanent, 0); // the first permanent failure, else the first one
    const first = classified[lead] as Classified;
    const cause = outcome.errors[lead];
    if (outcome.accepted === 0) {
      const count =
        outcome.errors.length > 1 ? ` [${outcome.errors.length} of ${batches} event batches failed]` : '';
      return this.deliveryError(first, `${this.describe(cause)}${count}`, cause);
    }
    const retryAfterMs = Math.max(0, ...classified.map((c) => c.retryAfterMs ?? 0)) || undefined;
    const detail = `${first.what} (${first.status ?? 'no code'}): ${this.describe(cause)}`;
    return new DeliveryError(
      'SINK_EVENTHUBS_PARTIAL',
      `Event Hubs ${this.where()}: ${outcome.failed.length} of ${batch.records.length} records not accepted; ${detail}`,
      'partial',
      { status: first.status, retryAfterMs, failed: outcome.failed.sort((a, b) => a - b), cause },
    );
  }

  private deliveryError(classified: Classified, detail: string, cause: unknown): DeliveryError {
    const status = classified.status ? ` (${classified.status})` : '';
    return new DeliveryError(
      classified.code,
      `Event Hubs ${this.where()}: ${classified.what}${status}: ${detail}`,
      classified.kind,
      { status: classified.status, retryAfterMs: classified.retryAfterMs, cause },
    );
  }

  /** The SDK's message, with any secret removed (it may quote a connection string). */
  private describe(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    return redact(text, this.target?.secrets ?? []);
  }

  private where(): string {
    return this.target ? `${this.target.endpoint}${this.target.hub}` : '(unparsed destination)';
  }
}

/** Record indices by key, keys in order of first appearance; null: no partition key. */
function groupByKey(records: SinkRecord[]): Map<string | null, number[]> {
  const groups = new Map<string | null, number[]>();
  records.forEach((record, index) => {
    const key = record.key === null || record.key === '' ? null : record.key;
    const group = groups.get(key);
    if (group) group.push(index);
    else groups.set(key, [index]);
  });
  return groups;
}

function toEventData(batch: SinkBatch, record: SinkRecord): EventData {
  const properties: Record<string, string | number> = {
    record_type: batch.recordType,
    record_id: record.id,
    stream_id: batch.streamId,
  };
  if (batch.recordType === 'events' && record.eventTypeId !== undefined)
    properties.event_type_id = record.eventTypeId;
  // A Buffer body goes out as one AMQP data section, byte for byte (anything else is JSON.stringified).
  return { body: recordBytes(record), contentType: 'application/json', properties };
}

/**
 * Sends the groups, MAX_IN_FLIGHT at a time. Within a group a failed batch stops the rest, so
 * an endpoint's records are never accepted out of order; all of them count as failed.
 */
async function sendGroups(
  client: EventHubProducerClient,
  groups: PlannedBatch[][],
  signal?: AbortSignal,
): Promise<SendOutcome> {
  const outcome: SendOutcome = { accepted: 0, failed: [], errors: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < groups.length) {
      const group = groups[next++] as PlannedBatch[];
      for (const [position, planned] of group.entries()) {
        try {
          await client.sendBatch(planned.batch, { abortSignal: signal });
          outcome.accepted += planned.indices.length;
        } catch (error) {
          outcome.errors.push(error);
          for (const unsent of group.slice(position)) outcome.failed.push(...unsent.indices);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, groups.length) }, worker));
  return outcome;
}

/**
 * Closing a connection that already broke can fail, or wait for a close frame that never
 * comes (rhea-promise waits up to its own operation timeout): give it `timeoutMs`, then move on.
 */
async function closeQuietly(client: EventHubProducerClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  await Promise.race([client.close().catch(() => undefined), deadline]);
  clearTimeout(timer);
}
