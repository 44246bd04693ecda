/**
 * Operator routes: /health (the process answers), /ready (it can serve), /metrics
 * (Prometheus text format 0.0.4). /metrics names every organisation's streams, so it is
 * not for tenants: it needs its own bearer token (DIR/api/metrics-token with `serve`),
 * never an organisation's auth_token; without one configured it does not exist (404).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { StageCounts } from '../../engine/engine.js';
import { LATENCY_BUCKETS_MS } from '../../streams/lane.js';
import type { StreamManager } from '../../streams/manager.js';
import { ApiError, errorResponses } from '../http.js';

export interface HealthOptions {
  streams: StreamManager;
  /** False while the server cannot serve (starting, closing). */
  ready?: () => boolean;
  metricsToken?: string;
  /** The engine's counts per stage; without it /metrics has the streams only. */
  engine?: () => Promise<StageCounts>;
}

const tags = ['operations'];
const digest = (text: string) => createHash('sha256').update(text).digest();

const label = (value: string | number) =>
  String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** One metric family in the Prometheus text format: HELP, TYPE, then its samples. */
class Families {
  private readonly lines: string[] = [];
  add(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: string[]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
  }
  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/** The engine's stages and every stream's delivery, in the Prometheus text format. */
export async function metricsText(
  streams: StreamManager,
  engine?: () => Promise<StageCounts>,
): Promise<string> {
  const out = new Families();
  if (engine) {
    const stages = await engine();
    const prefix = 'data_streamer_engine';
    out.add(
      `${prefix}_ingested_records_total`,
      'counter',
      'Raw records and commands put on the input log since start',
      [`${prefix}_ingested_records_total ${stages.ingested}`],
    );
    out.add(`${prefix}_processed_records_total`, 'counter', 'Input records folded since start', [
      `${prefix}_processed_records_total ${stages.processed}`,
    ]);
    out.add(
      `${prefix}_output_records`,
      'gauge',
      'Records each output topic holds (events, usage, enforcement, dead-letters, organisation stage)',
      Object.entries(stages.outputs).map(
        ([topic, n]) => `${prefix}_output_records{topic="${label(topic)}"} ${n}`,
      ),
    );
    out.add(
      `${prefix}_dead_letters`,
      'gauge',
      'Input records the engine refused, with their reason, on the dead-letter topic',
      [`${prefix}_dead_letters ${stages.outputs['dead-letters'] ?? 0}`],
    );
    out.add(
      'data_streamer_storage_inserted_rows_total',
      'counter',
      'Rows inserted into ClickHouse since start',
      [`data_streamer_storage_inserted_rows_total ${stages.storedRows}`],
    );
  }
  const samples = {
    delivered: [],
    failed: [],
    dead: [],
    lag: [],
    lagSeconds: [],
    status: [],
    latency: [],
  } as Record<string, string[]>;
  const push = (key: string, line: string) => samples[key]?.push(line);
  for (const stream of streams.all()) {
    const s = await streams.status(stream.organisation_id, stream.id);
    const labels = `stream_id="${label(stream.id)}",organisation_id="${label(stream.organisation_id)}"`;
    push(
      'delivered',
      `data_streamer_stream_delivered_records_total{${labels}} ${s.metrics.delivered_records}`,
    );
    for (const [kind, n] of Object.entries(s.metrics.failed_attempts))
      push('failed', `data_streamer_stream_failed_attempts_total{${labels},kind="${label(kind)}"} ${n}`);
    push('dead', `data_streamer_stream_dead_lettered_batches{${labels}} ${s.dead_lettered_batches}`);
    push('lag', `data_streamer_stream_lag_records{${labels}} ${s.lag.records}`);
    push('lagSeconds', `data_streamer_stream_lag_seconds{${labels}} ${s.lag.seconds}`);
    push('status', `data_streamer_stream_status{${labels}} ${s.stream.status.id}`);
    const h = s.latency_histogram;
    const name = 'data_streamer_stream_delivery_seconds';
    LATENCY_BUCKETS_MS.forEach((bound, i) => {
      push('latency', `${name}_bucket{${labels},le="${bound / 1000}"} ${h.buckets[i] ?? 0}`);
    });
    push('latency', `${name}_bucket{${labels},le="+Inf"} ${h.count}`);
    push('latency', `${name}_sum{${labels}} ${h.sum_ms / 1000}`);
    push('latency', `${name}_count{${labels}} ${h.count}`);
  }
  const s = (key: string) => samples[key] ?? [];
  out.add(
    'data_streamer_stream_delivered_records_total',
    'counter',
    'Records delivered to the destination',
    s('delivered'),
  );
  out.add(
    'data_streamer_stream_failed_attempts_total',
    'counter',
    'Failed delivery attempts, by error class (retriable, permanent, partial)',
    s('failed'),
  );
  out.add(
    'data_streamer_stream_dead_lettered_batches',
    'gauge',
    'Batches in the dead-letter store',
    s('dead'),
  );
  out.add('data_streamer_stream_lag_records', 'gauge', 'Records on the log not yet delivered', s('lag'));
  out.add(
    'data_streamer_stream_lag_seconds',
    'gauge',
    'Event time between the newest record on the log and the stream cursor',
    s('lagSeconds'),
  );
  out.add(
    'data_streamer_stream_status',
    'gauge',
    'Stream status id: 1 Running, 2 Paused, 3 Error, 4 Pending',
    s('status'),
  );
  out.add(
    'data_streamer_stream_delivery_seconds',
    'histogram',
    'Time from the first delivery attempt of a batch to its success',
    s('latency'),
  );
  return out.text();
}

export function healthPlugin(options: HealthOptions) {
  const expected = options.metricsToken ? digest(options.metricsToken) : undefined;
  return async function health(app: FastifyInstance): Promise<void> {
    const status = { type: 'object', properties: { status: { type: 'string' } } } as const;
    app.get('/health', { schema: { summary: 'Liveness', tags, response: { 200: status } } }, async () => ({
      status: 'ok',
    }));
    app.get(
      '/ready',
      { schema: { summary: 'Readiness', tags, response: { 200: status, 503: status } } },
      async (_request, reply) => {
        if (options.ready && !options.ready()) return reply.code(503).send({ status: 'not ready' });
        return { status: 'ready' };
      },
    );
    app.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics of the engine stages and every stream (operator bearer token)',
          tags,
          security: [{ metricsToken: [] }],
          produces: ['text/plain'],
          response: { 200: { type: 'string' }, ...errorResponses(401, 404, 429) },
        },
      },
      async (request, reply) => {
        if (!expected) throw new ApiError(404, 'not_found', 'Route GET /metrics not found');
        const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
        // Hashes of equal length, so the comparison time says nothing about the token.
        if (!given || !timingSafeEqual(digest(given), expected))
          throw new ApiError(401, 'unauthorized', '/metrics needs the operator metrics token');
        reply.type('text/plain; version=0.0.4; charset=utf-8');
        return metricsText(options.streams, options.engine);
      },
    );
  };
}
