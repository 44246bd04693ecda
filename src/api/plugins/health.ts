/**
 * Operator routes: /health (the process answers), /ready (it can serve), /metrics
 * (Prometheus text format 0.0.4). /metrics names every organisation's streams, so it is
 * not for tenants: it needs its own bearer token (DIR/api/metrics-token with `serve`),
 * never an organisation's auth_token; without one configured it does not exist (404).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { StreamManager } from '../../streams/manager.js';
import { ApiError, errorResponses } from '../http.js';

export interface HealthOptions {
  streams: StreamManager;
  /** False while the server cannot serve (starting, closing). */
  ready?: () => boolean;
  metricsToken?: string;
}

const tags = ['operations'];
const digest = (text: string) => createHash('sha256').update(text).digest();

const label = (value: string | number) =>
  String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Every stream's delivery counters and lag, in the Prometheus text format. */
export async function metricsText(streams: StreamManager): Promise<string> {
  const families = {
    delivered: [
      'data_streamer_stream_delivered_records_total',
      'counter',
      'Records delivered to the destination',
    ],
    failed: [
      'data_streamer_stream_failed_attempts_total',
      'counter',
      'Failed delivery attempts, by error kind',
    ],
    dead: ['data_streamer_stream_dead_lettered_batches', 'gauge', 'Batches in the dead-letter store'],
    lag: ['data_streamer_stream_lag_records', 'gauge', 'Records on the log not yet delivered'],
    status: [
      'data_streamer_stream_status',
      'gauge',
      'Stream status id: 1 Running, 2 Paused, 3 Error, 4 Pending',
    ],
  } as const;
  const samples: Record<keyof typeof families, string[]> = {
    delivered: [],
    failed: [],
    dead: [],
    lag: [],
    status: [],
  };
  for (const stream of streams.all()) {
    const s = await streams.status(stream.organisation_id, stream.id);
    const labels = `stream_id="${label(stream.id)}",organisation_id="${label(stream.organisation_id)}"`;
    samples.delivered.push(`${families.delivered[0]}{${labels}} ${s.metrics.delivered_records}`);
    for (const [kind, n] of Object.entries(s.metrics.failed_attempts))
      samples.failed.push(`${families.failed[0]}{${labels},kind="${label(kind)}"} ${n}`);
    samples.dead.push(`${families.dead[0]}{${labels}} ${s.dead_lettered_batches}`);
    samples.lag.push(`${families.lag[0]}{${labels}} ${s.lag.records}`);
    samples.status.push(`${families.status[0]}{${labels}} ${s.stream.status.id}`);
  }
  const lines: string[] = [];
  for (const key of Object.keys(families) as (keyof typeof families)[]) {
    const [name, type, help] = families[key];
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples[key]);
  }
  return `${lines.join('\n')}\n`;
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
          summary: 'Prometheus metrics of every stream (operator bearer token)',
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
        return metricsText(options.streams);
      },
    );
  };
}
