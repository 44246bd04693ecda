/**
 * The live dashboard: a static page at `/` (HTML, one ES module, CSS, and the browser
 * builds of chart.js, chartjs-chart-geo and the world-atlas map, served from
 * node_modules) and its one data route, GET /api/v1/dashboard, polled every 2 s.
 *
 * The static files carry no data, so they are public; every number comes from the data
 * route, which takes the organisation from the verified JWT like every other route. The
 * files are read once, when the plugin is registered, and served from a fixed list: no
 * path from a request ever reaches the file system.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { packageRoot } from '../../util/paths.js';
import { bearerRoute, callerOf, errorResponses } from '../http.js';
import { requireAuth } from '../plugins/auth.js';

/** What the dashboard shows of one organisation (the engine figures are the engine's own). */
export interface DashboardSnapshot {
  /** Wall time of the snapshot, ISO-8601. */
  generated_at: string;
  organisation_id: number;
  engine: {
    /** Raw records processed since the engine was opened. */
    processed_records: number;
    /** Over the last sampling interval; null until two samples exist. */
    records_per_second: number | null;
    /** Event time of the latest ingested record (the virtual clock), ISO-8601; null before any. */
    event_time: string | null;
    /** Oldest first. */
    throughput: { at: string; records_per_second: number }[];
  };
  devices: {
    total: number;
    by_status: { offline: number; attached: number; online: number };
    /** Attached or Online devices per visited country; iso_numeric is the map feature's id. */
    by_country: { iso: string; iso_numeric: string | null; name: string; devices: number }[];
  };
  usage: {
    /** Wall time the figures were read from ClickHouse (they are cached for a moment). */
    read_at: string;
    ratezones: {
      ratezone: { id: number; name: string };
      traffic_type: { id: number; description: string; unit: string };
      currency: string;
      records: string;
      volume: string;
      cost: string;
    }[];
    /** Per currency, summed by ClickHouse: exact decimal text. */
    totals: { currency: string; records: string; cost: string }[];
  };
  streams: {
    id: string;
    name: string;
    type: string;
    connection_type: string;
    status: { id: number; description: string };
    error: { code: string; message: string; at: string } | null;
    lag: { records: number; seconds: number };
    delivered_records: number;
    last_success_at: string | null;
    /** Failed delivery attempts / all attempts since the server started; null before any. */
    error_rate: number | null;
    dead_lettered_batches: number;
  }[];
}

export interface DashboardSource {
  snapshot(organisationId: number): Promise<DashboardSnapshot>;
}

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const object = (properties: Record<string, unknown>) =>
  ({ type: 'object', required: Object.keys(properties), properties }) as const;

const snapshotSchema = object({
  generated_at: str,
  organisation_id: int,
  engine: object({
    processed_records: int,
    records_per_second: { type: ['number', 'null'] },
    event_time: { type: ['string', 'null'], description: 'the virtual clock: latest ingested event time' },
    throughput: { type: 'array', items: object({ at: str, records_per_second: num }) },
  }),
  devices: object({
    total: int,
    by_status: object({ offline: int, attached: int, online: int }),
    by_country: {
      type: 'array',
      items: object({ iso: str, iso_numeric: { type: ['string', 'null'] }, name: str, devices: int }),
    },
  }),
  usage: object({
    read_at: str,
    ratezones: {
      type: 'array',
      description: 'all days summed; decimals and 64-bit counts as exact strings; volume in MB (data) or SMS',
      items: object({
        ratezone: object({ id: int, name: str }),
        traffic_type: object({ id: int, description: str, unit: str }),
        currency: str,
        records: str,
        volume: str,
        cost: str,
      }),
    },
    totals: { type: 'array', items: object({ currency: str, records: str, cost: str }) },
  }),
  streams: {
    type: 'array',
    items: object({
      id: str,
      name: str,
      type: str,
      connection_type: str,
      status: object({ id: int, description: str }),
      error: { type: ['object', 'null'], properties: { code: str, message: str, at: str } },
      lag: object({ records: num, seconds: num }),
      delivered_records: int,
      last_success_at: { type: ['string', 'null'] },
      error_rate: { type: ['number', 'null'] },
      dead_lettered_batches: int,
    }),
  },
});

interface StaticFile {
  type: string;
  body: Buffer;
}

/** The page's own files live in the source tree (dist/ holds compiled TypeScript only). */
const PUBLIC = join(packageRoot(), 'src', 'api', 'dashboard', 'public');

/** The browser builds, found through the packages' entry points (their exports hide dist/ paths). */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  return {
    'vendor/chart.umd.min.js': join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
    'vendor/chartjs-chart-geo.umd.min.js': join(
      dirname(require.resolve('chartjs-chart-geo')),
      'index.umd.min.js',
    ),
    'vendor/countries-110m.json': require.resolve('world-atlas/countries-110m.json'),
  };
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

function loadFiles(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const sources: Record<string, string> = {
    'index.html': join(PUBLIC, 'index.html'),
    'dashboard.js': join(PUBLIC, 'dashboard.js'),
    'dashboard.css': join(PUBLIC, 'dashboard.css'),
    ...vendorFiles(),
  };
  for (const [name, path] of Object.entries(sources))
    files.set(name, {
      type: TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream',
      body: readFileSync(path),
    });
  return files;
}

/**
 * Only this origin's scripts, styles and fetches; nothing inline, no frames, no forms sent
 * anywhere (the token form is handled by the script: a submitted form would put the
 * token in a URL). Chart.js sizes canvases through element.style, which CSP allows.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function send(reply: FastifyReply, file: StaticFile, headers: Record<string, string> = {}): FastifyReply {
  return reply
    .headers(headers)
    .header('content-type', file.type)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .send(file.body);
}

export function dashboardPlugin(source: DashboardSource) {
  return async function dashboardRoutes(app: FastifyInstance): Promise<void> {
    const files = loadFiles();

    // Public: the page and its assets (hidden from the OpenAPI document: not an API).
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      send(reply, files.get('index.html') as StaticFile, {
        'content-security-policy': CSP,
        'x-frame-options': 'DENY',
      }),
    );
    for (const [name, file] of files)
      if (name !== 'index.html')
        app.get(`/dashboard/${name}`, { schema: { hide: true } }, async (_request, reply) =>
          send(reply, file),
        );

    // The data: authenticated in a context of its own, so the hook leaves the page public.
    await app.register(async (data) => {
      data.addHook('onRequest', requireAuth);
      data.get(
        '/api/v1/dashboard',
        {
          schema: bearerRoute(['dashboard'])(
            "What the live dashboard shows: engine throughput and clock, the organisation's devices by state and country, usage and cost per ratezone, data stream health",
            { response: { 200: snapshotSchema, ...errorResponses(401, 429, 503) } },
          ),
        },
        async (request, reply) => {
          reply.header('cache-control', 'no-store');
          return source.snapshot(callerOf(request).organisation_id);
        },
      );
    });
  };
}
