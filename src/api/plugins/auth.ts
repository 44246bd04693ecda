/**
 * POST /api/v1/authenticate, as emnify has it: an application token, or a username and
 * password, or a refresh token in; a JWT auth_token (240 minutes) out, and for a password
 * login a refresh_token too. The JWT carries the organisation and the id of what it came
 * from (application token or user); `requireAuth` checks both on every request, so
 * revoking the token or removing the user ends its JWTs at once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, errorResponses } from '../http.js';
import type { TokenStore } from '../tokens.js';
import { REFRESH_TOKEN_DAYS, type UserStore } from '../users.js';

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
      username: { type: 'string', minLength: 1, maxLength: 512 },
      password: { type: 'string', minLength: 1, maxLength: 512 },
      refresh_token: { type: 'string', minLength: 1, maxLength: 512 },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['auth_token'],
      properties: {
        auth_token: { type: 'string' },
        refresh_token: {
          type: 'string',
          description: `password logins only; valid ${REFRESH_TOKEN_DAYS} days`,
        },
      },
    },
    ...errorResponses(400, 401, 422, 429),
  },
} as const;

const ONE_OF = 'give one of: application_token; username and password; refresh_token';

export function authPlugin(tokens: TokenStore, users?: UserStore) {
  return async function auth(app: FastifyInstance): Promise<void> {
    app.post('/api/v1/authenticate', { schema: authenticateSchema }, async (request, reply) => {
      const body = request.body as {
        application_token?: string;
        username?: string;
        password?: string;
        refresh_token?: string;
      };
      const given = [
        body.application_token !== undefined,
        body.username !== undefined || body.password !== undefined,
        body.refresh_token !== undefined,
      ].filter(Boolean).length;
      if (given !== 1) throw new ApiError(422, 'invalid_request', `body: ${ONE_OF}`, [`body: ${ONE_OF}`]);
      const sign = (caller: { organisation_id: number; token_id: string }) =>
        reply.jwtSign(caller, {
          sign: {
            expiresIn: `${AUTH_TOKEN_MINUTES}m`,
            ...(app.apiNow ? { clockTimestamp: app.apiNow() } : {}),
          },
        });

      if (body.application_token !== undefined) {
        const token = await tokens.verify(body.application_token);
        if (!token) throw new ApiError(401, 'unauthorized', 'the application_token is invalid or revoked');
        return { auth_token: await sign({ organisation_id: token.organisation_id, token_id: token.id }) };
      }
      if (!users)
        throw new ApiError(401, 'unauthorized', 'username/password login is not set up on this server');
      if (body.refresh_token !== undefined) {
        const user = await users.refresh(body.refresh_token);
        if (!user)
          throw new ApiError(401, 'unauthorized', 'the refresh_token is invalid, expired or revoked');
        return { auth_token: await sign({ organisation_id: user.organisation_id, token_id: user.id }) };
      }
      if (body.username === undefined || body.password === undefined) {
        const missing = body.username === undefined ? 'username' : 'password';
        throw new ApiError(422, 'invalid_request', `${missing}: is required`, [`${missing}: is required`]);
      }
      const user = await users.login(body.username, body.password);
      // One answer for an unknown name and a wrong password: no hint for a guesser.
      if (!user) throw new ApiError(401, 'unauthorized', 'wrong username or password');
      return {
        auth_token: await sign({ organisation_id: user.organisation_id, token_id: user.id }),
        refresh_token: await users.issueRefreshToken(user),
      };
    });
  };
}
