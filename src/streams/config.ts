/**
 * Data stream configuration: the shape of emnify's API v2 body, validated into a stored
 * DataStream. Every problem is reported with the field it is about, 422-style, and
 * credentials are checked against the sink's own schema.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import type { SinkFactory } from '../../connectors/sinks/types.js';
import { DataStreamerError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import { describeSchemaError } from '../util/schema-errors.js';

export const STATUS = { 1: 'Running', 2: 'Paused', 3: 'Error', 4: 'Pending' } as const;
export type StatusId = keyof typeof STATUS;
export const STREAM_TYPE = { 1: 'Usage', 2: 'Events' } as const;

export const DEFAULT_BATCH_SIZE = 3000;

export interface StreamFilter {
  field: 'event_type_id' | 'alert';
  value: (number | string)[] | boolean;
}

/** What a caller sends to create or replace a stream. */
export interface DataStreamInput {
  name: string;
  data_stream_type: { id: 1 | 2 };
  destination: { connection_type: string; credentials: Record<string, unknown>; format?: string };
  filters?: StreamFilter[];
  status?: { id: 1 | 2 };
  start?: string;
}

/** A stream as stored: the input made explicit, with its owner and state. */
export interface DataStream {
  id: string;
  organisation_id: number;
  name: string;
  data_stream_type: { id: 1 | 2; description: string };
  destination: { connection_type: string; credentials: Record<string, unknown>; format: string };
  filters: StreamFilter[];
  status: { id: StatusId; description: string };
  /** Records per batch (destination.credentials.size, default 3000). */
  size: number;
  /** Where reading began: "now", "earliest" or an ISO timestamp. */
  start: string;
  created_at: string;
  /** Set when the stream went to Error: why. */
  error?: { code: string; message: string; at: string };
}

/** An invalid stream body: every problem, each naming its field. HTTP APIs answer 422. */
export class StreamConfigError extends DataStreamerError {
  constructor(readonly problems: string[]) {
    super('STREAM_CONFIG_INVALID', `invalid data stream:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'StreamConfigError';
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
let streamSchema: ValidateFunction | undefined;
const credentialSchemas = new Map<string, ValidateFunction>();

function schemaErrors(validate: ValidateFunction, data: unknown, prefix = ''): string[] {
  return validate(data) ? [] : (validate.errors ?? []).map((e) => describeSchemaError(e, data, prefix));
}

/**
 * Checks a body against schemas/json/data-stream.schema.json and the sink's credentials
 * schema; returns the stream to store. Throws StreamConfigError listing every problem.
 */
export function validateStream(
  input: unknown,
  sinks: ReadonlyMap<string, SinkFactory>,
  owner: { id: string; organisationId: number; createdAt: string },
): DataStream {
  streamSchema ??= ajv.compile(
    JSON.parse(readFileSync(join(packageRoot(), 'schemas', 'json', 'data-stream.schema.json'), 'utf8')),
  );
  // Every problem at once: the checks below go on after schema errors wherever they can.
  const problems = schemaErrors(streamSchema, input);
  const body = (typeof input === 'object' && input !== null ? input : {}) as Partial<DataStreamInput>;
  const destination = (
    typeof body.destination === 'object' && body.destination !== null ? body.destination : {}
  ) as Partial<DataStreamInput['destination']>;
  const sink =
    typeof destination.connection_type === 'string' ? sinks.get(destination.connection_type) : undefined;
  if (
    destination.connection_type !== undefined &&
    !sink &&
    !problems.some((p) => p.startsWith('destination.connection_type'))
  )
    problems.push(
      `destination.connection_type: ${destination.connection_type} is not available here (available: ${[...sinks.keys()].join(', ')})`,
    );
  const { size = DEFAULT_BATCH_SIZE, ...credentials } = (
    typeof destination.credentials === 'object' && destination.credentials !== null
      ? destination.credentials
      : {}
  ) as { size?: number };
  if (sink && destination.credentials !== undefined) {
    let validate = credentialSchemas.get(sink.connectionType);
    if (!validate) {
      validate = ajv.compile(sink.credentialsSchema);
      credentialSchemas.set(sink.connectionType, validate);
    }
    problems.push(...schemaErrors(validate, credentials, 'destination.credentials'));
  }
  const format = destination.format ?? sink?.formats[0] ?? '';
  if (sink && !sink.formats.includes(format))
    problems.push(
      `destination.format: must be one of ${sink.formats.join(', ')} for ${sink.connectionType}, got "${format}"`,
    );
  const filters = Array.isArray(body.filters) ? body.filters : [];
  if (body.data_stream_type?.id === 1 && filters.length > 0)
    problems.push('filters: only event streams (data_stream_type 2) can be filtered');
  filters.forEach((f, i) => {
    if (f?.field === 'alert' && typeof f.value !== 'boolean')
      problems.push(`filters[${i}].value: must be true or false for alert`);
    if (f?.field === 'event_type_id' && !Array.isArray(f.value))
      problems.push(`filters[${i}].value: must be a list of event type ids for event_type_id`);
  });
  const start = typeof body.start === 'string' ? body.start : 'now';
  const isTime = /^\d{4}-\d{2}-\d{2}T/.test(start) && !Number.isNaN(Date.parse(start));
  if (start !== 'now' && start !== 'earliest' && !isTime)
    problems.push(
      `start: must be "now", "earliest" or an ISO-8601 timestamp such as "2026-01-05T00:00:00Z", got ${JSON.stringify(start)}`,
    );
  if (problems.length > 0 || !sink || !body.data_stream_type || !body.name)
    throw new StreamConfigError([...new Set(problems)]);
  const status = (body.status?.id ?? 1) as StatusId;
  return {
    id: owner.id,
    organisation_id: owner.organisationId,
    name: body.name,
    data_stream_type: { id: body.data_stream_type.id, description: STREAM_TYPE[body.data_stream_type.id] },
    destination: { connection_type: sink.connectionType, credentials, format },
    filters,
    status: { id: status, description: STATUS[status] },
    size,
    start,
    created_at: owner.createdAt,
  };
}

const MASK = '*****';

/** The stream as it may be shown: secret credential fields masked (webhook headers keep their names). */
export function maskStream(stream: DataStream, sink: SinkFactory | undefined): DataStream {
  const credentials: Record<string, unknown> = { ...stream.destination.credentials, size: stream.size };
  for (const field of sink?.secretFields ?? []) {
    const value = credentials[field];
    if (typeof value === 'string') credentials[field] = MASK;
    else if (Array.isArray(value))
      credentials[field] = value.map((v) =>
        typeof v === 'string' && v.includes(':') ? `${v.slice(0, v.indexOf(':'))}:${MASK}` : MASK,
      );
  }
  return { ...stream, destination: { ...stream.destination, credentials } };
}

/** Event streams filter by event type and alert; usage streams take everything. */
export function matchesFilters(
  filters: readonly StreamFilter[],
  eventTypeId: number,
  alert: boolean,
): boolean {
  for (const filter of filters) {
    if (filter.field === 'alert' && alert !== filter.value) return false;
    if (
      filter.field === 'event_type_id' &&
      Array.isArray(filter.value) &&
      !filter.value.some((v) => Number(v) === eventTypeId)
    )
      return false;
  }
  return true;
}
