/**
 * The management API: one fastify instance, one encapsulated plugin per route group
 * (authentication, application tokens, data streams, operations), an OpenAPI document at
 * /api/docs. Cross-cutting parts live here: JWT verification, rate limiting per token,
 * body parsing limits and one error shape for every failure.
 *
 * Tenancy: every authenticated route takes the organisation from the verified JWT only,
 * never from the request; the StreamManager and the TokenStore scope every operation to it.
 */
import fastifyJwt from '@fastify/jwt';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { ErrorObject } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { StageCounts } from '../engine/engine.js';
import { StorageError } from '../storage/errors.js';
import type { Store } from '../storage/store.js';
import { StreamConfigError } from '../streams/config.js';
import { type StreamManager, StreamNotFound } from '../streams/manager.js';
import { SINKS } from '../streams/sinks.js';
import { DataStreamerError } from '../util/errors.js';
import { describeSchemaError } from '../util/schema-errors.js';
import { VERSION } from '../util/version.js';
import { type DashboardSource, dashboardPlugin } from './dashboard/plugin.js';
import { ApiError, type ApiErrorBody, type Caller } from './http.js';
import { applicationTokensPlugin } from './plugins/application-tokens.js';
import { AUTH_TOKEN_MINUTES, authPlugin } from './plugins/auth.js';
import { type ConnectivityLookup, connectivityPlugin } from './plugins/connectivity.js';
import { dataStreamsPlugin } from './plugins/data-streams.js';
import { eventsPlugin } from './plugins/events.js';
import { healthPlugin } from './plugins/health.js';
import { type QuotaBackend, quotasPlugin } from './plugins/quotas.js';
import { usagePlugin } from './plugins/usage.js';
import type { TokenStore } from './tokens.js';
import type { UserStore } from './users.js';

export interface ApiOptions {
  streams: StreamManager;
  tokens: TokenStore;
  /** Username/password logins and refresh tokens; without it only application tokens authenticate. */
  users?: UserStore;
  /** HMAC secret of the auth_tokens (HS256); at least 32 bytes. */
  jwtSecret: string | Buffer;
  /** Clock of the auth_tokens' iat/exp, in ms. */
  now?: () => number;
  /** Off by default. When on, Authorization headers, tokens and credentials are redacted. */
  logger?: boolean | { level?: string; stream?: NodeJS.WritableStream };
  /** Requests per token (or per IP before authentication) in a window. Default 600 a minute. */
  rateLimit?: { max: number; timeWindowMs: number };
  /** Bearer token of /metrics; without it /metrics is not served. */
  metricsToken?: string;
  ready?: () => boolean;
  /** Connection types the server offers (default: every sink). */
  connectionTypes?: readonly { type: string; formats: readonly string[] }[];
  /**
   * The engine's ClickHouse store (EmbeddedEngine.store), read by the event and usage
   * routes; without it those routes are not served.
   */
  store?: Store;
  /** The engine's view of an endpoint's connectivity; without it the connectivity route is not served. */
  connectivity?: ConnectivityLookup;
  /** The engine's quotas and its command input; without it the quota routes are not served. */
  quotas?: QuotaBackend;
  /** The engine's counts per stage, for /metrics. */
  stages?: () => Promise<StageCounts>;
  /** What the live dashboard at `/` shows; without it there is no dashboard. */
  dashboard?: DashboardSource;
}

/** JSON bodies nest no deeper than this: deeper ones are refused before anything walks them. */
export const MAX_JSON_DEPTH = 32;
export const BODY_LIMIT = 1024 * 1024;

const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.application_token',
  '*.auth_token',
  '*.password',
  '*.refresh_token',
  '*.credentials',
  '*.destination',
];

const TOKENS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'invalid_request',
  429: 'too_many_requests',
};

/** The depth of a JSON text's nesting, found without parsing it (strings are skipped). */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: the next character is escaped
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > limit) return depth;
    } else if (c === 125 || c === 93) depth--;
  }
  return depth;
}

function validationProblems(error: FastifyError, request: FastifyRequest): string[] {
  const context = error.validationContext ?? 'body';
  const data =
    context === 'params' ? request.params : context === 'querystring' ? request.query : request.body;
  const problems = (error.validation ?? []).map((e) =>
    describeSchemaError(e as ErrorObject, data).replace(/^\(top level\)/, context),
  );
  return problems.length > 0 ? [...new Set(problems)] : [`${context}: ${error.message}`];
}

/** Every failure as `{error_code, error_token, message}`; nothing internal leaves a 5xx. */
function errorBody(error: unknown, request: FastifyRequest): ApiErrorBody {
  if (error instanceof ApiError)
    return {
      error_code: error.statusCode,
      error_token: error.token,
      message: error.message,
      ...(error.problems ? { problems: error.problems } : {}),
    };
  if (error instanceof StreamConfigError)
    return {
      error_code: 422,
      error_token: 'invalid_data_stream',
      message: `invalid data stream: ${error.problems.join('; ')}`,
      problems: error.problems,
    };
  if (error instanceof StreamNotFound)
    return { error_code: 404, error_token: 'not_found', message: error.message };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const problems = validationProblems(fastifyError, request);
    // A body that does not fit is 422, as emnify answers; a bad path or query is 400.
    const code = (fastifyError.validationContext ?? 'body') === 'body' ? 422 : 400;
    return { error_code: code, error_token: 'invalid_request', message: problems.join('; '), problems };
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return {
      error_code: status,
      error_token: TOKENS[status] ?? 'bad_request',
      message: fastifyError.message,
    };
  // The store could not answer (a read route): unavailable for now, not the caller's fault.
  if (error instanceof StorageError)
    return {
      error_code: 503,
      error_token: 'storage_unavailable',
      message: `${error.code}: the store could not answer`,
    };
  // A destination that failed while the API used it (redrive, replay): the gateway's fault.
  if (error instanceof DataStreamerError)
    return { error_code: 502, error_token: 'destination_error', message: `${error.code}: ${error.message}` };
  return { error_code: 500, error_token: 'internal_error', message: 'internal error' };
}

function loggerOptions(logger: ApiOptions['logger']) {
  if (!logger) return false;
  const { level = 'info', stream } = logger === true ? {} : logger;
  return { level, redact: { paths: REDACT, censor: '[redacted]' }, ...(stream ? { stream } : {}) };
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(options.logger),
    bodyLimit: BODY_LIMIT,
    // No coercion and no silent removal: a wrong type or an unknown field is named in a 4xx.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
  });

  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (jsonDepth(body as string, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      done(new ApiError(400, 'bad_request', `body: nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });

  app.setErrorHandler((error, request, reply) => {
    const body = errorBody(error, request);
    if (body.error_code >= 500)
      request.log.error(
        { code: (error as FastifyError).code, message: (error as Error).message },
        'request failed',
      );
    return reply.code(body.error_code).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error_code: 404,
      error_token: 'not_found',
      message: `Route ${request.method} ${request.url.split('?')[0]} not found`,
    }),
  );

  const { tokens, users } = options;
  await app.register(fastifyJwt, {
    secret: options.jwtSecret,
    sign: { algorithm: 'HS256', expiresIn: `${AUTH_TOKEN_MINUTES}m` },
    verify: { algorithms: ['HS256'] },
    // Revoked application tokens take their JWTs with them.
    trusted: (_request, decoded) => {
      const caller = decoded as Partial<Caller>;
      return (
        typeof caller.token_id === 'string' &&
        typeof caller.organisation_id === 'number' &&
        (tokens.isActive(caller.token_id, caller.organisation_id) ||
          users?.isActive(caller.token_id, caller.organisation_id) === true)
      );
    },
  });
  // The auth_tokens' iat/exp follow the given clock (tests move it past the 240 minutes).
  if (options.now) app.decorate('apiNow', options.now);

  const limit = options.rateLimit ?? { max: 600, timeWindowMs: 60_000 };
  await app.register(rateLimit, {
    global: true,
    max: limit.max,
    timeWindow: limit.timeWindowMs,
    // After authentication: a verified token id is the key, so one busy client does not
    // starve its organisation's others; before it, the IP.
    hook: 'preHandler',
    keyGenerator: (request) => {
      const user = request.user as Caller | undefined;
      return user?.token_id ? `token:${user.token_id}` : `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, context) =>
      new ApiError(429, 'too_many_requests', `rate limit exceeded, retry in ${context.after}`),
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Data Streamer management API', version: VERSION },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          metricsToken: { type: 'http', scheme: 'bearer' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });

  const connectionTypes =
    options.connectionTypes ??
    [...SINKS.values()].map((s) => ({ type: s.connectionType, formats: s.formats }));
  await app.register(authPlugin(tokens, users));
  await app.register(applicationTokensPlugin(tokens));
  await app.register(dataStreamsPlugin(options.streams, connectionTypes));
  // Served (and in the OpenAPI document) when there is a store to read.
  if (options.store) {
    await app.register(eventsPlugin(options.store));
    await app.register(usagePlugin(options.store));
  }
  if (options.connectivity) {
    await app.register(connectivityPlugin(options.connectivity));
  }
  if (options.quotas) await app.register(quotasPlugin(options.quotas));
  if (options.dashboard) await app.register(dashboardPlugin(options.dashboard));
  await app.register(
    healthPlugin({
      streams: options.streams,
      ...(options.ready ? { ready: options.ready } : {}),
      ...(options.metricsToken ? { metricsToken: options.metricsToken } : {}),
      ...(options.stages ? { engine: options.stages } : {}),
    }),
  );
  return app;
}
