/**
 * PLACEHOLDER, replaced by the dashboard's author: the live dashboard at `/` and its data route.
 */
import type { FastifyInstance } from 'fastify';

export interface DashboardSource {
  snapshot(organisationId: number): Promise<unknown>;
}

export function dashboardPlugin(_source: DashboardSource) {
  return async function dashboardRoutes(_app: FastifyInstance): Promise<void> {};
}
