/**
 * The contract between a data stream's lane and the destination it delivers to. A sink
 * knows one destination's protocol and nothing else: batching, retries with backoff,
 * Retry-After, the stream's status and its dead letters are the lane's (src/streams/),
 * written once for every sink.
 *
 * One `write` is one attempt. It resolves when every record of the batch is accepted by
 * the destination, and otherwise rejects with a DeliveryError that says what the lane may
 * do: retry the whole batch (retriable), give up on it (permanent), or retry only the
 * records that failed (partial, with their indices).
 */
import { DataStreamerError, type ErrorKind } from '../../src/util/errors.js';

/** 1 usage records, 2 events, as in emnify's API. */
export type RecordType = 'usage' | 'events';

/** One output record as a sink receives it. */
export interface SinkRecord {
  /** Id of the record (its `id` field): consumers deduplicate on it. */
  id: number;
  /** Where the record is on the output log; the lane's cursor moves past it once delivered. */
  topic: string;
  partition: number;
  offset: number;
  /** Event time of the record, integer ms since the epoch. */
  timestamp: number;
  /** Endpoint id as a string: the partition or ordering key of keyed destinations. Null for organisation-level events. */
  key: string | null;
  /** For events: the event type id (for attributes and filters). */
  eventTypeId?: number;
  /** The record exactly as a customer receives it: emnify JSON text, one object. */
  json: string;
  /** The same text as UTF-8, when the lane read it so (a sink sends these bytes instead of encoding `json`). */
  readonly bytes?: Buffer;
}

/** A record's UTF-8 bytes: as the lane read them, or encoded from its text. */
export const recordBytes = (record: SinkRecord): Buffer => record.bytes ?? Buffer.from(record.json, 'utf8');

export interface SinkBatch {
  /** The data stream the batch belongs to (its id), for object keys and headers. */
  streamId: string;
  recordType: RecordType;
  /** The stream's batch size is 1: send a bare JSON object instead of an array (webhook). */
  bare: boolean;
  /** In log order within each partition; never empty. */
  records: SinkRecord[];
}

export interface Sink {
  /** Connects and checks what can be checked up front (credentials, the destination exists). */
  open(): Promise<void>;
  /** One attempt to deliver the batch (see the module comment). The signal aborts it (shutdown, timeout). */
  write(batch: SinkBatch, signal?: AbortSignal): Promise<void>;
  /** Delivers anything the sink buffered itself; most sinks buffer nothing. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface DeliveryErrorDetails {
  /** HTTP status or the destination's error code, for the stream's "remote status". */
  status?: number | string;
  /** The destination asked to wait this long before the next attempt (Retry-After, throttling). */
  retryAfterMs?: number;
  /** kind 'partial': indices into batch.records of the records that were not accepted. */
  failed?: number[];
  cause?: unknown;
}

/** A failed delivery attempt, classified. Codes are stable: SINK_<DESTINATION>_<WHAT>. */
export class DeliveryError extends DataStreamerError {
  readonly status: number | string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly failed: number[] | undefined;

  constructor(code: string, message: string, kind: ErrorKind, details: DeliveryErrorDetails = {}) {
    super(code, message, kind, { cause: details.cause });
    this.name = 'DeliveryError';
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.failed = details.failed;
    if (kind === 'partial' && !details.failed?.length)
      throw new Error(`DeliveryError ${code}: a partial failure must list the failed records`);
  }
}

/** What every sink gets from its stream besides its own destination config. */
export interface SinkContext {
  /** Organisation that owns the stream (AWS external id `org-<id>`, headers). */
  organisationId: number;
  /** Per-attempt timeout in ms. */
  timeoutMs: number;
  /** Wall clock in ms (signature timestamps); injectable for tests. */
  now: () => number;
}

/** A stream's `destination` as in emnify's API v2, minus connection_type. */
export interface SinkDestination<Credentials> {
  credentials: Credentials;
  /** `Json` for most destinations, `Csv` for S3 (emnify's names); each factory lists its own. */
  format: string;
}

/** How the lane should batch for this destination, when it differs from the stream's batch size. */
export interface SinkBatching {
  maxRecords?: number;
  /** Send a partial batch once its oldest record has waited this long. */
  lingerMs?: number;
}

/**
 * What the stream registry needs to know about a sink: its `connection_type` as in
 * emnify's API, the JSON Schema (draft-07) of its `destination.credentials` (beside the
 * connector as config.schema.json), its formats, which credential fields are secrets, and
 * a constructor. The registry validates credentials against the schema before `create`.
 */
export interface SinkFactory<Credentials = Record<string, unknown>> {
  connectionType: string;
  credentialsSchema: object;
  /** Allowed `destination.format` values; the first is the default. */
  formats: string[];
  /**
   * Credential fields whose values are secrets: masked when a stream is read back, never
   * logged. A string field is masked whole; in an array of `Name:value` strings (webhook
   * headers) only the values are masked.
   */
  secretFields: string[];
  /** Batching the destination asks for (S3's flush_size and rotate_interval); default: the stream's. */
  batching?(credentials: Credentials): SinkBatching;
  create(destination: SinkDestination<Credentials>, context: SinkContext): Sink;
}
