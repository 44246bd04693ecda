/**
 * GET /api/v1/event and GET /api/v1/endpoint/{id}/event: the organisation's events from the
 * ClickHouse `events` table, each exactly as a data stream delivered it (the stored `json`
 * text, spliced into the answer's array), newest first (timestamp, then id, descending).
 *
 * Every query has `organisation_id = <the caller's organisation>` in its WHERE clause. The
 * Store has no bound parameters, so SQL is built only from values parsed here and written
 * again by this code: integers (BigInt, checked against UInt64), booleans and UTC times
 * re-formatted from their milliseconds. No request text reaches the SQL.
 *
 * An endpoint is the caller's when the store holds an event or a usage record of it for the
 * caller's organisation (the API has no reference data of its own); any other endpoint id is
 * 404, as an id that does not exist.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Store } from '../../storage/store.js';
import { ApiError, bearerRoute, callerOf, errorResponses, notFound } from '../http.js';
import { requireAuth } from './auth.js';

const tags = ['events'];
export const MAX_PER_PAGE = 1000;
export const DEFAULT_PER_PAGE = 100;
const MAX_PAGE = 10_000_000;
const MAX_LIST = 100;
const UINT64_MAX = 2n ** 64n - 1n;

/** Query values as fastify's parser gives them: a string, or an array when repeated. */
export type QueryValue = string | string[] | undefined;

/** One value of a non-repeatable parameter, or a problem. */
export function single(
  query: Record<string, QueryValue>,
  name: string,
  problems: string[],
): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) {
    problems.push(`${name}: must be given once`);
    return undefined;
  }
  return value;
}

/** A UInt64 as the decimal text ClickHouse reads (no sign, no leading zeros), or a problem. */
export function uint64(value: string, name: string, problems: string[]): string | undefined {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) > UINT64_MAX) {
    problems.push(`${name}: must be an unsigned integer id, got ${JSON.stringify(value.slice(0, 64))}`);
    return undefined;
  }
  return BigInt(value).toString();
}

function smallInt(
  value: string,
  name: string,
  min: number,
  max: number,
  problems: string[],
): number | undefined {
  const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) {
    problems.push(
      `${name}: must be an integer from ${min} to ${max}, got ${JSON.stringify(value.slice(0, 64))}`,
    );
    return undefined;
  }
  return n;
}

/** A repeatable or comma-separated list of small integers. */
function intList(
  query: Record<string, QueryValue>,
  name: string,
  max: number,
  problems: string[],
): number[] | undefined {
  const raw = query[name];
  if (raw === undefined) return undefined;
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(','));
  if (parts.length > MAX_LIST) {
    problems.push(`${name}: at most ${MAX_LIST} values`);
    return undefined;
  }
  const values: number[] = [];
  for (const part of parts) {
    const n = smallInt(part, name, 0, max, problems);
    if (n === undefined) return undefined;
    values.push(n);
  }
  return [...new Set(values)];
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
/** DateTime64(3) holds 1900..2299; the API takes 1970..2199. */
const MAX_MS = Date.UTC(2200, 0, 1);

function instant(value: string, name: string, problems: string[]): number | undefined {
  const ms = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (!(ms >= 0 && ms < MAX_MS)) {
    problems.push(
      `${name}: must be an ISO-8601 time from 1970 to 2199 such as 2026-01-05T00:00:00Z, got ${JSON.stringify(value.slice(0, 64))}`,
    );
    return undefined;
  }
  return ms;
}

/** A time as a ClickHouse DateTime64(3) literal, written from its milliseconds only. */
export function timeLiteral(ms: number): string {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ for 1970..2199
  return `toDateTime64('${iso.slice(0, 10)} ${iso.slice(11, 23)}', 3, 'UTC')`;
}

export interface EventQuery {
  page: number;
  perPage: number;
  /** SQL conditions besides the organisation's, each built from parsed values. */
  where: string[];
}

const EVENT_PARAMS = new Set(['page', 'per_page', 'type', 'severity', 'alert', 'endpoint', 'from', 'until']);

/** The query string of an event list, checked whole: every problem is named at once (400). */
export function parseEventQuery(query: Record<string, QueryValue>, withEndpoint: boolean): EventQuery {
  const problems: string[] = [];
  for (const name of Object.keys(query))
    if (!EVENT_PARAMS.has(name) || (name === 'endpoint' && !withEndpoint))
      problems.push(`${name.slice(0, 64)}: is not a known parameter`);
  const where: string[] = [];
  const pageText = single(query, 'page', problems);
  const page = pageText === undefined ? 1 : smallInt(pageText, 'page', 1, MAX_PAGE, problems);
  const perText = single(query, 'per_page', problems);
  const perPage =
    perText === undefined ? DEFAULT_PER_PAGE : smallInt(perText, 'per_page', 1, MAX_PER_PAGE, problems);
  const types = intList(query, 'type', 65_535, problems);
  if (types) where.push(`event_type IN (${types.join(', ')})`);
  const severities = intList(query, 'severity', 255, problems);
  if (severities) where.push(`severity IN (${severities.join(', ')})`);
  const alert = single(query, 'alert', problems);
  if (alert !== undefined) {
    if (alert === 'true' || alert === 'false') where.push(`alert = ${alert}`);
    else problems.push(`alert: must be true or false, got ${JSON.stringify(alert.slice(0, 64))}`);
  }
  if (withEndpoint) {
    const endpoint = single(query, 'endpoint', problems);
    const id = endpoint === undefined ? undefined : uint64(endpoint, 'endpoint', problems);
    if (id !== undefined) where.push(`endpoint_id = ${id}`);
  }
  const fromText = single(query, 'from', problems);
  const from = fromText === undefined ? undefined : instant(fromText, 'from', problems);
  const untilText = single(query, 'until', problems);
  const until = untilText === undefined ? undefined : instant(untilText, 'until', problems);
  if (from !== undefined) where.push(`timestamp >= ${timeLiteral(from)}`);
  if (until !== undefined) where.push(`timestamp < ${timeLiteral(until)}`);
  if (from !== undefined && until !== undefined && until <= from) problems.push('until: must be after from');
  if (problems.length > 0 || page === undefined || perPage === undefined)
    throw new ApiError(400, 'invalid_request', problems.join('; '), problems);
  return { page, perPage, where };
}

/** The organisation id of a verified caller, as SQL text (it came from the JWT as a number). */
export function orgLiteral(organisationId: number): string {
  if (!Number.isSafeInteger(organisationId) || organisationId < 0)
    throw new ApiError(401, 'unauthorized', 'the auth_token is invalid, expired or revoked');
  return String(organisationId);
}

/** Whether the organisation has any event or usage record of the endpoint (ids already checked). */
export async function endpointKnown(store: Store, org: string, endpoint: string): Promise<boolean> {
  const rows = await store.query(
    `SELECT 1 AS found FROM (` +
      `SELECT endpoint_id FROM events WHERE organisation_id = ${org} AND endpoint_id = ${endpoint} LIMIT 1 ` +
      `UNION ALL SELECT endpoint_id FROM usage_daily WHERE organisation_id = ${org} AND endpoint_id = ${endpoint} LIMIT 1` +
      `) LIMIT 1`,
  );
  return rows.length > 0;
}

/** The endpoint id of a path, or 404 (a malformed id is an id that does not exist). */
export async function callersEndpoint(store: Store, org: string, id: string): Promise<string> {
  const problems: string[] = [];
  const endpoint = uint64(id, 'id', problems);
  if (endpoint === undefined || !(await endpointKnown(store, org, endpoint))) throw notFound('endpoint');
  return endpoint;
}

const typeList = {
  description: 'event type id(s): repeat the parameter or separate with commas',
  anyOf: [
    { type: 'string', pattern: '^[0-9]+(,[0-9]+)*$' },
    { type: 'array', items: { type: 'string', pattern: '^[0-9]+(,[0-9]+)*$' } },
  ],
} as const;

function eventQuerySchema(withEndpoint: boolean) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      page: { type: 'string', pattern: '^[1-9][0-9]*$', description: 'page number, from 1 (default 1)' },
      per_page: {
        type: 'string',
        pattern: '^[1-9][0-9]*$',
        description: `events per page, 1 to ${MAX_PER_PAGE} (default ${DEFAULT_PER_PAGE})`,
      },
      type: typeList,
      severity: { ...typeList, description: 'severity id(s): 0 Info, 1 Warn, 2 Critical; repeatable' },
      alert: { type: 'string', enum: ['true', 'false'] },
      ...(withEndpoint
        ? { endpoint: { type: 'string', pattern: '^[0-9]+$', description: 'endpoint id' } }
        : {}),
      from: { type: 'string', format: 'date-time', description: 'events at or after this time' },
      until: { type: 'string', format: 'date-time', description: 'events before this time' },
    },
  };
}

const eventListSchema = {
  type: 'array',
  description: 'events in the emnify shape, exactly as delivered by a data stream',
  items: { type: 'object', additionalProperties: true },
} as const;

const pagingHeaders = {
  'X-Total-Count': { type: 'integer', description: 'events matching the filters, over all pages' },
  'X-Total-Pages': { type: 'integer' },
  'X-Current-Page': { type: 'integer' },
  'X-Count-Per-Page': { type: 'integer' },
} as const;

/** Query validation is done by parseEventQuery (every problem named); params by path checks. */
/** Routes that parse their query and path themselves (every problem named in one 400). */
export const passThrough = () => () => true;

async function sendEvents(
  store: Store,
  org: string,
  parsed: EventQuery,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const where = [`organisation_id = ${org}`, ...parsed.where].join(' AND ');
  // FINAL: a duplicate that got past the insert token is never counted or shown twice.
  const [count] = await store.query(`SELECT toString(count()) AS n FROM events FINAL WHERE ${where}`);
  const total = Number((count as { n: string } | undefined)?.n ?? '0');
  const offset = (parsed.page - 1) * parsed.perPage;
  const rows =
    offset >= total
      ? []
      : await store.query(
          `SELECT json FROM events FINAL WHERE ${where} ORDER BY timestamp DESC, id DESC ` +
            `LIMIT ${parsed.perPage} OFFSET ${offset}`,
        );
  reply
    .header('X-Total-Count', String(total))
    .header('X-Total-Pages', String(Math.ceil(total / parsed.perPage)))
    .header('X-Current-Page', String(parsed.page))
    .header('X-Count-Per-Page', String(parsed.perPage))
    .type('application/json; charset=utf-8');
  return reply.send(`[${rows.map((r) => r.json as string).join(',')}]`);
}

export function eventsPlugin(store: Store) {
  return async function events(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAuth);
    app.setValidatorCompiler(passThrough);
    const route = bearerRoute(tags);

    app.get(
      '/api/v1/event',
      {
        schema: route("The organisation's events, newest first, paged and filtered", {
          querystring: eventQuerySchema(true),
          response: { 200: { ...eventListSchema, headers: pagingHeaders }, ...errorResponses(400, 401, 429) },
        }),
      },
      async (request, reply) => {
        const org = orgLiteral(callerOf(request).organisation_id);
        const parsed = parseEventQuery(request.query as Record<string, QueryValue>, true);
        return sendEvents(store, org, parsed, reply);
      },
    );

    app.get(
      '/api/v1/endpoint/:id/event',
      {
        schema: route("An endpoint's events, newest first, paged and filtered", {
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
          querystring: eventQuerySchema(false),
          response: {
            200: { ...eventListSchema, headers: pagingHeaders },
            ...errorResponses(400, 401, 404, 429),
          },
        }),
      },
      async (request, reply) => {
        const org = orgLiteral(callerOf(request).organisation_id);
        // Ownership first: another organisation's endpoint is 404 whatever the query.
        const endpoint = await callersEndpoint(store, org, (request.params as { id: string }).id);
        const parsed = parseEventQuery(request.query as Record<string, QueryValue>, false);
        parsed.where.push(`endpoint_id = ${endpoint}`);
        return sendEvents(store, org, parsed, reply);
      },
    );
  };
}
