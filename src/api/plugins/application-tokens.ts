/**
 * /api/v1/application_token: an organisation's application tokens, created (the secret is
 * in that answer only), listed (never a secret) and revoked. Another organisation's token
 * id is "not found".
 */
import type { FastifyInstance } from 'fastify';
import { BEARER, callerOf, errorResponses, notFound } from '../http.js';
import type { TokenStore } from '../tokens.js';
import { requireAuth } from './auth.js';

const tokenSchema = {
  type: 'object',
  required: ['id', 'description', 'created_at'],
  properties: {
    id: { type: 'string' },
    description: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
} as const;

const tags = ['application tokens'];

export function applicationTokensPlugin(tokens: TokenStore) {
  return async function applicationTokens(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAuth);

    app.get(
      '/api/v1/application_token',
      {
        schema: {
          summary: "The organisation's application tokens (never their secrets)",
          tags,
          security: BEARER,
          response: { 200: { type: 'array', items: tokenSchema }, ...errorResponses(401, 429) },
        },
      },
      async (request) => tokens.list(callerOf(request).organisation_id),
    );

    app.post(
      '/api/v1/application_token',
      {
        schema: {
          summary: 'Create an application token; the answer holds its secret, shown this once',
          tags,
          security: BEARER,
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { description: { type: 'string', maxLength: 500 } },
          },
          response: {
            201: {
              ...tokenSchema,
              required: [...tokenSchema.required, 'application_token'],
              properties: { ...tokenSchema.properties, application_token: { type: 'string' } },
            },
            ...errorResponses(400, 401, 422, 429),
          },
        },
      },
      async (request, reply) => {
        const body = (request.body ?? {}) as { description?: string };
        const { token, secret } = await tokens.create(callerOf(request).organisation_id, body.description);
        reply.code(201).header('location', `/api/v1/application_token/${token.id}`);
        return { ...token, application_token: secret };
      },
    );

    app.delete(
      '/api/v1/application_token/:id',
      {
        schema: {
          summary: 'Revoke an application token: it and the auth_tokens made from it stop working',
          tags,
          security: BEARER,
          params: idParams,
          response: { 204: { type: 'null' }, ...errorResponses(400, 401, 404, 429) },
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        if (!(await tokens.revoke(callerOf(request).organisation_id, id)))
          throw notFound('application token');
        return reply.code(204).send();
      },
    );
  };
}
