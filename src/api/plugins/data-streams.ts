/**
 * /api/v2/data_stream: emnify's API v2 for data streams (list, create, read, patch,
 * delete, restart, lookups) and ours beside it (status, redrive, replay). Every call is
 * scoped to the caller's organisation by the StreamManager: another organisation's stream
 * is "not found" (404), exactly as a stream that does not exist.
 *
 * Stream bodies are checked by the manager, not by fastify: it reports every problem at
 * once, each naming its field, sink credentials included (422, invalid_data_stream). The
 * schema below is the one it uses, shown in the OpenAPI document.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { STATUS, STREAM_TYPE } from '../../streams/config.js';
import type { StreamManager } from '../../streams/manager.js';
import { packageRoot } from '../../util/paths.js';
import { ApiError, BEARER, callerOf, errorResponses } from '../http.js';
import { requireAuth } from './auth.js';

const tags = ['data streams'];
const BASE = '/api/v2/data_stream';

function streamBodySchema(): Record<string, unknown> {
  const {
    $schema: _s,
    $id: _id,
    ...schema
  } = JSON.parse(
    readFileSync(join(packageRoot(), 'schemas', 'json', 'data-stream.schema.json'), 'utf8'),
  ) as Record<string, unknown>;
  return schema;
}

const idParams = {
  type: 'object',
  required: ['data_stream_id'],
  properties: { data_stream_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
} as const;

const dataStreamSchema = {
  type: 'object',
  description: 'A data stream; secret credential fields are masked as *****.',
  properties: {
    id: { type: 'string' },
    organisation_id: { type: 'integer' },
    name: { type: 'string' },
    data_stream_type: {
      type: 'object',
      properties: { id: { type: 'integer' }, description: { type: 'string' } },
    },
    destination: {
      type: 'object',
      properties: {
        connection_type: { type: 'string' },
        credentials: { type: 'object', additionalProperties: true },
        format: { type: 'string' },
      },
    },
    filters: { type: 'array', items: { type: 'object', additionalProperties: true } },
    status: { type: 'object', properties: { id: { type: 'integer' }, description: { type: 'string' } } },
    size: { type: 'integer' },
    start: { type: 'string' },
    created_at: { type: 'string' },
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, at: { type: 'string' } },
    },
  },
} as const;

const statusSchema = {
  type: 'object',
  properties: {
    stream: dataStreamSchema,
    metrics: {
      type: 'object',
      additionalProperties: true,
      description:
        'delivered records and batches, failed attempts by kind, dead-lettered batches, in flight, last success and error, latency p50/p99',
    },
    lag: { type: 'object', properties: { records: { type: 'number' }, seconds: { type: 'number' } } },
    dead_lettered_batches: { type: 'integer' },
  },
} as const;

const lookupSchema = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: true,
    properties: { id: {}, description: { type: 'string' } },
  },
} as const;

/**
 * Create and patch take any JSON object here; the manager checks its fields. Params still
 * go through Ajv.
 */
const paramsAjv = new Ajv({ allErrors: true, coerceTypes: false, strict: false });
function streamBodyCompiler({ schema, httpPart }: { schema: object; httpPart?: string }) {
  if (httpPart !== 'body') return paramsAjv.compile(schema);
  return (data: unknown) =>
    typeof data === 'object' && data !== null && !Array.isArray(data)
      ? true
      : {
          error: new ApiError(422, 'invalid_data_stream', 'body: must be a JSON object', [
            'body: must be a JSON object',
          ]),
        };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function instant(value: string, field: string, problems: string[]): number {
  const ms = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    problems.push(
      `${field}: must be an ISO-8601 time such as 2026-01-05T00:00:00Z, got ${JSON.stringify(value.slice(0, 64))}`,
    );
  return ms;
}

export function dataStreamsPlugin(
  streams: StreamManager,
  connectionTypes: readonly { type: string; formats: readonly string[] }[],
) {
  return async function dataStreams(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAuth);
    const route = (summary: string, schema: FastifySchema): FastifySchema => ({
      summary,
      tags,
      security: BEARER,
      ...schema,
    });
    const body = streamBodySchema();

    app.get(
      BASE,
      {
        schema: route("The organisation's data streams", {
          response: { 200: { type: 'array', items: dataStreamSchema }, ...errorResponses(401, 429) },
        }),
      },
      async (request) => streams.list(callerOf(request).organisation_id),
    );

    app.post(
      BASE,
      {
        validatorCompiler: streamBodyCompiler,
        schema: route('Create a data stream (201, Location header)', {
          body,
          response: { 201: dataStreamSchema, ...errorResponses(400, 401, 422, 429) },
        }),
      },
      async (request, reply) => {
        const stream = await streams.create(callerOf(request).organisation_id, request.body);
        reply.code(201).header('location', `${BASE}/${stream.id}`);
        return stream;
      },
    );

    // Lookups, as emnify has them (static paths win over /:data_stream_id).
    const lookup = (path: string, summary: string, values: () => unknown[]) =>
      app.get(
        `${BASE}/${path}`,
        { schema: route(summary, { response: { 200: lookupSchema, ...errorResponses(401, 429) } }) },
        async () => values(),
      );
    lookup('status', 'Lookup: stream statuses', () =>
      Object.entries(STATUS).map(([id, description]) => ({ id: Number(id), description })),
    );
    lookup('type', 'Lookup: stream types', () =>
      Object.entries(STREAM_TYPE).map(([id, description]) => ({ id: Number(id), description })),
    );
    lookup('connection_type', 'Lookup: connection types available here', () =>
      connectionTypes.map((c, i) => ({ id: i + 1, description: c.type, formats: c.formats })),
    );
    lookup('filter_field_type', 'Lookup: filter fields', () => [
      { id: 1, description: 'event_type_id' },
      { id: 2, description: 'alert' },
    ]);

    app.get(
      `${BASE}/:data_stream_id`,
      {
        schema: route('A data stream', {
          params: idParams,
          response: { 200: dataStreamSchema, ...errorResponses(400, 401, 404, 429) },
        }),
      },
      async (request) =>
        streams.get(
          callerOf(request).organisation_id,
          (request.params as { data_stream_id: string }).data_stream_id,
        ),
    );

    app.patch(
      `${BASE}/:data_stream_id`,
      {
        validatorCompiler: streamBodyCompiler,
        schema: route(
          'Change a data stream (202); {"status":{"id":2}} pauses it, {"status":{"id":1}} resumes',
          {
            params: idParams,
            body: { ...body, required: [] },
            response: { 202: dataStreamSchema, ...errorResponses(400, 401, 404, 422, 429) },
          },
        ),
      },
      async (request, reply) => {
        const { data_stream_id } = request.params as { data_stream_id: string };
        const stream = await streams.update(
          callerOf(request).organisation_id,
          data_stream_id,
          request.body as Record<string, unknown>,
        );
        reply.code(202);
        return stream;
      },
    );

    app.delete(
      `${BASE}/:data_stream_id`,
      {
        schema: route('Delete a data stream and its dead-lettered batches (202)', {
          params: idParams,
          response: { 202: { type: 'null' }, ...errorResponses(400, 401, 404, 429) },
        }),
      },
      async (request, reply) => {
        await streams.delete(
          callerOf(request).organisation_id,
          (request.params as { data_stream_id: string }).data_stream_id,
        );
        return reply.code(202).send();
      },
    );

    app.post(
      `${BASE}/:data_stream_id/restart`,
      {
        schema: route(
          'Out of Error (or Paused): running again from its cursor (202); skip_failed moves past the dead-lettered batches',
          {
            params: idParams,
            body: {
              type: ['object', 'null'],
              additionalProperties: false,
              properties: { skip_failed: { type: 'boolean' } },
            },
            response: { 202: dataStreamSchema, ...errorResponses(400, 401, 404, 422, 429) },
          },
        ),
      },
      async (request, reply) => {
        const { data_stream_id } = request.params as { data_stream_id: string };
        const skipFailed = (request.body as { skip_failed?: boolean } | null)?.skip_failed === true;
        const stream = await streams.restart(callerOf(request).organisation_id, data_stream_id, {
          skipFailed,
        });
        reply.code(202);
        return stream;
      },
    );

    app.get(
      `${BASE}/:data_stream_id/status`,
      {
        schema: route('Status, lag and delivery metrics of a data stream', {
          params: idParams,
          response: { 200: statusSchema, ...errorResponses(400, 401, 404, 429) },
        }),
      },
      async (request) =>
        streams.status(
          callerOf(request).organisation_id,
          (request.params as { data_stream_id: string }).data_stream_id,
        ),
    );

    const outcome = {
      type: 'object',
      properties: { batches: { type: 'integer' }, records: { type: 'integer' }, failed: { type: 'integer' } },
    } as const;

    app.post(
      `${BASE}/:data_stream_id/redrive`,
      {
        schema: route('Send the dead-lettered batches again; each one delivered leaves the store', {
          params: idParams,
          // No options yet: a body with fields is a mistake worth naming, not ignoring.
          body: { type: ['object', 'null'], additionalProperties: false, properties: {} },
          response: { 200: outcome, ...errorResponses(400, 401, 404, 422, 429) },
        }),
      },
      async (request) =>
        streams.redrive(
          callerOf(request).organisation_id,
          (request.params as { data_stream_id: string }).data_stream_id,
        ),
    );

    app.post(
      `${BASE}/:data_stream_id/replay`,
      {
        schema: route(
          'Send the records of an event-time range [from, until) again, without moving the cursor',
          {
            params: idParams,
            body: {
              type: 'object',
              additionalProperties: false,
              required: ['from', 'until'],
              properties: {
                from: { type: 'string', maxLength: 64 },
                until: { type: 'string', maxLength: 64 },
              },
            },
            response: { 200: outcome, ...errorResponses(400, 401, 404, 422, 429) },
          },
        ),
      },
      async (request) => {
        const { data_stream_id } = request.params as { data_stream_id: string };
        const range = request.body as { from: string; until: string };
        const problems: string[] = [];
        const from = instant(range.from, 'from', problems);
        const until = instant(range.until, 'until', problems);
        if (problems.length === 0 && until <= from) problems.push('until: must be after from');
        // Ownership first: another organisation's id is 404 whatever the body.
        streams.get(callerOf(request).organisation_id, data_stream_id);
        if (problems.length > 0) throw new ApiError(422, 'invalid_request', problems.join('; '), problems);
        return streams.replay(callerOf(request).organisation_id, data_stream_id, { from, until });
      },
    );
  };
}
