/**
 * GET /api/v1/organisation/usage and GET /api/v1/endpoint/{id}/usage: volume and cost per
 * UTC day, ratezone, traffic type and currency, from the `usage_daily` rollup (always read
 * with sum(...) GROUP BY: rows of one key are summed at merge time only). Sums are exact:
 * decimals leave ClickHouse as the text of the Decimal sum (toString), 64-bit counts as
 * strings. A record counts on the UTC day its usage ended (migration 003).
 *
 * Scoped like events.ts: `organisation_id = <the caller's organisation>` in every WHERE
 * clause, SQL built only from values parsed and written again here; another
 * organisation's endpoint is 404.
 */
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../storage/store.js';
import { ApiError, bearerRoute, callerOf, errorResponses } from '../http.js';
import { requireAuth } from './auth.js';
import { callersEndpoint, orgLiteral, passThrough, type QueryValue, single } from './events.js';

const tags = ['usage'];
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const USAGE_PARAMS = new Set(['from', 'until']);

const TRAFFIC: Record<number, { description: string; unit: string }> = {
  5: { description: 'Data', unit: 'MB' },
  6: { description: 'SMS', unit: 'SMS' },
};

/** A calendar date 1970-01-01..2149-06-06 (ClickHouse Date), re-written from its parts. */
function date(value: string, name: string, problems: string[]): string | undefined {
  const m = DATE.exec(value);
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const ms = Date.UTC(y, mo - 1, d);
    const back = new Date(ms);
    if (
      y >= 1970 &&
      y <= 2148 &&
      back.getUTCFullYear() === y &&
      back.getUTCMonth() === mo - 1 &&
      back.getUTCDate() === d
    )
      return back.toISOString().slice(0, 10);
  }
  problems.push(`${name}: must be a date such as 2026-01-05, got ${JSON.stringify(value.slice(0, 64))}`);
  return undefined;
}

/** The day conditions of a usage query; both ends inclusive. */
export function parseUsageQuery(query: Record<string, QueryValue>): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(query))
    if (!USAGE_PARAMS.has(name)) problems.push(`${name.slice(0, 64)}: is not a known parameter`);
  const fromText = single(query, 'from', problems);
  const from = fromText === undefined ? undefined : date(fromText, 'from', problems);
  const untilText = single(query, 'until', problems);
  const until = untilText === undefined ? undefined : date(untilText, 'until', problems);
  if (from !== undefined && until !== undefined && until < from)
    problems.push('until: must not be before from');
  if (problems.length > 0) throw new ApiError(400, 'invalid_request', problems.join('; '), problems);
  return [
    ...(from !== undefined ? [`day >= toDate('${from}')`] : []),
    ...(until !== undefined ? [`day <= toDate('${until}')`] : []),
  ];
}

export interface UsageDay {
  date: string;
  ratezone: { id: number };
  traffic_type: { id: number; description: string; unit: string };
  currency: { code: string };
  records: string;
  volume: { total: string; rx: string; tx: string };
  volume_bytes: { total: string; rx: string; tx: string };
  cost: string;
}

async function usage(store: Store, where: string[]): Promise<UsageDay[]> {
  const rows = await store.query(
    'SELECT toString(day) AS d, ratezone_id AS rz, traffic_type AS tt, toString(currency) AS cur, ' +
      'toString(sum(records)) AS n, ' +
      'toString(sum(volume_total)) AS v_total, toString(sum(volume_rx)) AS v_rx, toString(sum(volume_tx)) AS v_tx, ' +
      'toString(sum(volume_bytes_total)) AS b_total, toString(sum(volume_bytes_rx)) AS b_rx, ' +
      'toString(sum(volume_bytes_tx)) AS b_tx, toString(sum(cost)) AS c ' +
      `FROM usage_daily WHERE ${where.join(' AND ')} ` +
      'GROUP BY day, ratezone_id, traffic_type, currency ORDER BY day, ratezone_id, traffic_type, currency',
  );
  return rows.map((r) => {
    const tt = Number(r.tt);
    return {
      date: String(r.d),
      ratezone: { id: Number(r.rz) },
      traffic_type: { id: tt, ...(TRAFFIC[tt] ?? { description: 'Unknown', unit: '' }) },
      currency: { code: String(r.cur) },
      records: String(r.n),
      volume: { total: String(r.v_total), rx: String(r.v_rx), tx: String(r.v_tx) },
      volume_bytes: { total: String(r.b_total), rx: String(r.b_rx), tx: String(r.b_tx) },
      cost: String(r.c),
    };
  });
}

const triple = {
  type: 'object',
  properties: { total: { type: 'string' }, rx: { type: 'string' }, tx: { type: 'string' } },
} as const;

const usageSchema = {
  type: 'array',
  description:
    'one row per UTC day x ratezone x traffic type x currency, in that order; decimals and 64-bit counts as exact strings',
  items: {
    type: 'object',
    properties: {
      date: { type: 'string', description: 'YYYY-MM-DD, the UTC day the usage ended' },
      ratezone: { type: 'object', properties: { id: { type: 'integer' } } },
      traffic_type: {
        type: 'object',
        properties: { id: { type: 'integer' }, description: { type: 'string' }, unit: { type: 'string' } },
      },
      currency: { type: 'object', properties: { code: { type: 'string' } } },
      records: { type: 'string' },
      volume: { ...triple, description: 'MB for data, count for SMS' },
      volume_bytes: triple,
      cost: { type: 'string' },
    },
  },
} as const;

const usageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', format: 'date', description: 'first day, inclusive (YYYY-MM-DD, UTC)' },
    until: { type: 'string', format: 'date', description: 'last day, inclusive (YYYY-MM-DD, UTC)' },
  },
} as const;

export function usagePlugin(store: Store) {
  return async function usageRoutes(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAuth);
    // parseUsageQuery checks the query (every problem named); the path id is checked by hand.
    app.setValidatorCompiler(passThrough);
    const route = bearerRoute(tags);

    app.get(
      '/api/v1/organisation/usage',
      {
        schema: route("The organisation's volume and cost per day and ratezone", {
          querystring: usageQuery,
          response: { 200: usageSchema, ...errorResponses(400, 401, 429) },
        }),
      },
      async (request) => {
        const org = orgLiteral(callerOf(request).organisation_id);
        const days = parseUsageQuery(request.query as Record<string, QueryValue>);
        return usage(store, [`organisation_id = ${org}`, ...days]);
      },
    );

    app.get(
      '/api/v1/endpoint/:id/usage',
      {
        schema: route("An endpoint's volume and cost per day and ratezone", {
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
          querystring: usageQuery,
          response: { 200: usageSchema, ...errorResponses(400, 401, 404, 429) },
        }),
      },
      async (request) => {
        const org = orgLiteral(callerOf(request).organisation_id);
        const endpoint = await callersEndpoint(store, org, (request.params as { id: string }).id);
        const days = parseUsageQuery(request.query as Record<string, QueryValue>);
        return usage(store, [`organisation_id = ${org}`, `endpoint_id = ${endpoint}`, ...days]);
      },
    );
  };
}
