/**
 * What every route group shares: the error body (emnify's `{error_code, error_token,
 * message}`, plus `problems` naming each field), its JSON schema for the OpenAPI document,
 * and the caller a verified JWT stands for.
 */
import type { FastifyRequest, FastifySchema } from 'fastify';

export interface ApiErrorBody {
  error_code: number;
  error_token: string;
  message: string;
  problems?: string[];
}

/** An answer other than success, thrown by a handler; the server's error handler sends it. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly token: string,
    message: string,
    readonly problems?: string[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);

export const errorSchema = {
  type: 'object',
  required: ['error_code', 'error_token', 'message'],
  properties: {
    error_code: { type: 'integer' },
    error_token: { type: 'string' },
    message: { type: 'string' },
    problems: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** The error answers a route documents besides its success. */
export function errorResponses(...codes: number[]): Record<number, typeof errorSchema> {
  return Object.fromEntries(codes.map((code) => [code, errorSchema]));
}

/** The claims of an auth_token: whose it is and which application token it came from. */
export interface Caller {
  organisation_id: number;
  token_id: string;
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Caller;
    user: Caller;
  }
}

/** The caller of an authenticated route (the auth hook has run). */
export function callerOf(request: FastifyRequest): Caller {
  return request.user;
}

export const BEARER = [{ bearerAuth: [] }];

/** The OpenAPI part every authenticated route of a group shares: its tags and the bearer scheme. */
export function bearerRoute(tags: string[]) {
  return (summary: string, schema: FastifySchema): FastifySchema => ({
    summary,
    tags,
    security: BEARER,
    ...schema,
  });
}

/** An endpoint id in a path: a positive integer below 2^53, or undefined (answered as not found). */
export function endpointId(text: string): number | undefined {
  if (!/^[1-9]\d{0,15}$/.test(text)) return undefined;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : undefined;
}
