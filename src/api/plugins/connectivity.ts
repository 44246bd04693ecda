/**
 * GET /api/v1/endpoint/{id}/connectivity: Offline, Attached or Online, with the visited
 * operator, RAT and cell, as the engine's state holds it after the last processed record.
 * An endpoint of another organisation, or one the reference data does not know, is 404.
 */
import type { FastifyInstance } from 'fastify';
import type { EndpointConnectivity } from '../../engine/engine.js';
import { ApiError, bearerRoute, callerOf, endpointId, errorResponses } from '../http.js';
import { requireAuth } from './auth.js';

export type ConnectivityLookup = (endpointId: number) => EndpointConnectivity | undefined;

const STATUS = { Offline: 0, Attached: 1, Online: 2 } as const;

const connectivitySchema = {
  type: 'object',
  properties: {
    status: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        description: { type: 'string', enum: ['OFFLINE', 'ATTACHED', 'ONLINE'] },
      },
    },
    operator: {
      type: ['object', 'null'],
      properties: {
        id: { type: 'integer' },
        name: { type: 'string' },
        mncs: { type: 'array', items: { type: 'string' } },
        country: { type: ['string', 'null'] },
        mcc: { type: ['string', 'null'] },
      },
    },
    rat_type: { type: ['integer', 'null'], description: '3GPP RAT type of the last registration or session' },
    location: {
      type: 'object',
      properties: { lac: { type: ['integer', 'null'] }, cell_id: { type: ['integer', 'null'] } },
    },
    last_updated: { type: ['string', 'null'], description: 'event time of the last change, ISO-8601 UTC' },
  },
} as const;

export function connectivityPlugin(lookup: ConnectivityLookup) {
  return async function connectivityRoutes(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAuth);
    app.get(
      '/api/v1/endpoint/:id/connectivity',
      {
        schema: bearerRoute(['endpoints'])(
          "An endpoint's connectivity: Offline, Attached or Online, with operator, RAT and cell",
          {
            params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
            response: { 200: connectivitySchema, ...errorResponses(401, 404, 429) },
          },
        ),
      },
      async (request) => {
        const raw = (request.params as { id: string }).id;
        const id = endpointId(raw);
        const state = id === undefined ? undefined : lookup(id);
        // Unknown and foreign ids answer alike: a tenant learns nothing of another's endpoints.
        if (!state || state.organisationId !== callerOf(request).organisation_id)
          throw new ApiError(404, 'not_found', `endpoint ${raw.slice(0, 64)} not found`);
        return {
          status: { id: STATUS[state.status], description: state.status.toUpperCase() },
          operator: state.operator,
          rat_type: state.ratType,
          location: { lac: state.lac, cell_id: state.cellId },
          last_updated: state.updated === null ? null : new Date(state.updated).toISOString(),
        };
      },
    );
  };
}
