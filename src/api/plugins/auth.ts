/**
 * POST /api/v1/authenticate: an application token in, a JWT auth_token (240 minutes) out.
 * The JWT carries the organisation and the application token's id; `requireAuth` checks
 * both on every request, so revoking the application token ends its JWTs at once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, errorResponses } from '../http.js';
import type { TokenStore } from '../tokens.js';

export const AUTH_TOKEN_MINUTES = 240;

declare module 'fastify' {
  interface FastifyInstance {
    /** The API's clock when it is not the system's (buildApi's `now`). */
    apiNow?: () => number;
  }
}

/** onRequest hook of every authenticated route group. */
export async function requireAuth(request: FastifyRequest): Promise<void> {
  if (!request.headers.authorization)
    throw new ApiError(401, 'unauthorized', 'Authorization: Bearer <auth_token> is required');
  try {
    // The `trusted` check registered with @fastify/jwt (server.ts) refuses revoked tokens.
    const now = request.server.apiNow;
    await (now ? request.jwtVerify({ clockTimestamp: now() }) : request.jwtVerify());
  } catch {
    // One answer for every failure (expired, forged, revoked): no hint for a guesser.
    throw new ApiError(401, 'unauthorized', 'the auth_token is invalid, expired or revoked');
  }
}

const authenticateSchema = {
  summary: 'Exchange an application token for an auth_token (JWT, 240 minutes)',
  tags: ['authentication'],
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      application_token: { type: 'string', minLength: 1, maxLength: 512 },
      username: { type: 'string', maxLength: 512 },
      password: { type: 'string', maxLength: 512 },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['auth_token'],
      properties: { auth_token: { type: 'string' } },
    },
    ...errorResponses(400, 401, 422, 429),
  },
} as const;

export function authPlugin(tokens: TokenStore) {
  return async function auth(app: FastifyInstance): Promise<void> {
    app.post('/api/v1/authenticate', { schema: authenticateSchema }, async (request, reply) => {
      const body = request.body as { application_token?: string; username?: string };
      if (body.application_token === undefined) {
        if (body.username !== undefined)
          throw new ApiError(
            401,
            'unauthorized',
            'username/password login is not available; use an application_token',
          );
        throw new ApiError(422, 'invalid_request', 'application_token: is required', [
          'application_token: is required',
        ]);
      }
      const token = await tokens.verify(body.application_token);
      if (!token) throw new ApiError(401, 'unauthorized', 'the application_token is invalid or revoked');
      const auth_token = await reply.jwtSign(
        { organisation_id: token.organisation_id, token_id: token.id },
        {
          sign: {
            expiresIn: `${AUTH_TOKEN_MINUTES}m`,
            ...(app.apiNow ? { clockTimestamp: app.apiNow() } : {}),
          },
        },
      );
      return { auth_token };
    });
  };
}
