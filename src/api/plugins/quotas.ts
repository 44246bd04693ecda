/**
 * /api/v1/endpoint/{id}/quota/data and /quota/sms (emnify quota management, reference
 * §4.1): GET the quota the engine holds, POST to assign it (a top-up is a POST of the new
 * total, as emnify has it), DELETE to remove it. POST and DELETE are written as command
 * records on the engine's input log, like any other input: the engine folds them in
 * order, emits the events (56..59) and enforcement commands, and a replay of the log
 * reproduces them. The answer comes once the engine has processed the command.
 *
 * Another organisation's endpoint and an unknown one answer alike (404).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { EngineCommand } from '../../contracts/raw.js';
import { type Quota, type QuotaService, quotaVolume } from '../../core/quota.js';
import { ApiError, bearerRoute, callerOf, endpointId, errorResponses } from '../http.js';
import { requireAuth } from './auth.js';

/** What the routes need of the engine. */
export interface QuotaBackend {
  quotaOf(
    endpointId: number,
    service: QuotaService,
  ): { organisationId: number; quota: Quota | undefined } | undefined;
  /** Puts the commands on the input log; resolves once the engine has processed them, with those it refused. */
  submit(commands: EngineCommand[]): Promise<{ command_id: string; reason: string }[]>;
  /** The time stamped on a command: the engine's clock (virtual in the demo, wall time in `serve`). */
  now(): number;
}

const PEAK_THROUGHPUTS = [64_000, 128_000, 256_000, 384_000];
const STATUS = { ACTIVE: 1, EXHAUSTED: 2, EXPIRED: 3 } as const;
/** Up to 1 PB of data or a billion SMS: larger is a typo, not a quota. */
const MAX_VOLUME = 1e9;
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/;

const SERVICES: Record<string, { service: QuotaService; noun: string; unit: string }> = {
  data: { service: 'DATA', noun: 'data', unit: 'MB' },
  sms: { service: 'SMS', noun: 'SMS', unit: 'SMS' },
};

const quotaSchema = {
  type: 'object',
  properties: {
    status: {
      type: 'object',
      properties: { id: { type: 'integer' }, description: { type: 'string' } },
    },
    volume: { type: 'number', description: 'remaining: MB for data (6 decimals), messages for SMS' },
    expiry_date: { type: 'string', description: 'ISO-8601 UTC' },
    auto_refill: { type: 'integer', enum: [0, 1] },
    threshold_percentage: { type: 'integer' },
    threshold_volume: { type: 'number' },
    action_on_exhaustion: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        description: { type: 'string' },
        peak_throughput: { type: ['integer', 'null'] },
      },
    },
    last_volume_added: { type: 'number' },
    last_status_change_date: { type: 'string' },
  },
} as const;

/** What a POST takes; the read-only fields of a GET answer are accepted and ignored, so a read-add-post top-up works. */
const assignSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['status', 'volume', 'expiry_date'],
  properties: {
    status: {
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'integer', const: 1 }, description: { type: 'string' } },
    },
    volume: { type: 'number', minimum: 0, maximum: MAX_VOLUME },
    expiry_date: { type: 'string', maxLength: 40 },
    auto_refill: { anyOf: [{ type: 'integer', enum: [0, 1] }, { type: 'boolean' }] },
    threshold_percentage: { type: 'integer', minimum: 0, maximum: 100 },
    action_on_exhaustion: {
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: {
        id: { type: 'integer', enum: [1, 2], description: '1 Block, 2 Throttle' },
        description: { type: 'string' },
        peak_throughput: { anyOf: [{ type: 'integer', enum: PEAK_THROUGHPUTS }, { type: 'null' }] },
      },
    },
    threshold_volume: { type: 'number' },
    last_volume_added: { type: 'number' },
    last_status_change_date: { type: 'string' },
  },
} as const;

interface AssignBody {
  volume: number;
  expiry_date: string;
  auto_refill?: 0 | 1 | boolean;
  threshold_percentage?: number;
  action_on_exhaustion?: { id: 1 | 2; peak_throughput?: number | null };
}

/** Who issued a command: a user (ids `u_...`) or an application token. */
const issuer = (tokenId: string) =>
  tokenId.startsWith('u_') ? `user ${tokenId}` : `application token ${tokenId}`;

const invalid = (problem: string) => new ApiError(422, 'invalid_request', problem, [problem]);

/** The volume as an exact decimal text: MB with at most 6 decimals, or a whole number of SMS. */
function volumeText(volume: number, service: QuotaService): string {
  const text = String(volume);
  if (service === 'SMS' && !Number.isInteger(volume))
    throw invalid(`volume: an SMS quota counts messages, ${text} is not a whole number`);
  if (!/^\d+(\.\d{1,6})?$/.test(text))
    throw invalid(`volume: must be MB with at most 6 decimals, got ${text}`);
  return text;
}

function expiryOf(text: string, now: number): number {
  const ms = ZONED_TIME.test(text) ? Date.parse(text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2')) : Number.NaN;
  if (!Number.isFinite(ms))
    throw invalid(
      `expiry_date: must be an ISO-8601 time with a zone, such as 2026-02-01T00:00:00Z, got ${JSON.stringify(text)}`,
    );
  if (ms <= now)
    throw invalid(`expiry_date: must be after the engine's time ${new Date(now).toISOString()}, got ${text}`);
  return ms;
}

function rendered(quota: Quota) {
  const volume = (amount: bigint) => Number(quotaVolume(quota, amount));
  return {
    status: { id: STATUS[quota.status], description: quota.status },
    volume: volume(quota.remaining),
    expiry_date: new Date(quota.expiry).toISOString(),
    auto_refill: quota.autoRefill ? 1 : 0,
    threshold_percentage: quota.thresholdPercentage,
    threshold_volume: volume((quota.lastVolumeAdded * BigInt(quota.thresholdPercentage)) / 100n),
    action_on_exhaustion: {
      id: quota.action === 'BLOCK' ? 1 : 2,
      description: quota.action === 'BLOCK' ? 'Block' : 'Throttle',
      peak_throughput: quota.peakThroughput,
    },
    last_volume_added: volume(quota.lastVolumeAdded),
    last_status_change_date: new Date(quota.lastStatusChange).toISOString(),
  };
}

export function quotasPlugin(backend: QuotaBackend) {
  return async function quotaRoutes(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', requireAuth);
    const route = bearerRoute(['quotas']);
    const params = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;

    /** The caller's endpoint and its quota; 404 for an unknown or foreign endpoint, or (when required) no quota. */
    const lookup = (
      raw: string,
      organisationId: number,
      which: (typeof SERVICES)[string],
      needQuota: boolean,
    ) => {
      const id = endpointId(raw);
      const found = id === undefined ? undefined : backend.quotaOf(id, which.service);
      if (id === undefined || !found || found.organisationId !== organisationId)
        throw new ApiError(404, 'not_found', `endpoint ${raw.slice(0, 64)} not found`);
      if (needQuota && !found.quota)
        throw new ApiError(404, 'not_found', `endpoint ${id} has no ${which.noun} quota`);
      return { id, quota: found.quota };
    };

    /** The checks here mirror the engine's; should they ever differ, the engine's refusal is the answer. */
    const submitted = async (command: EngineCommand) => {
      const [refused] = await backend.submit([command]);
      if (refused) throw invalid(`the engine refused the quota: ${refused.reason}`);
    };

    for (const [path, which] of Object.entries(SERVICES)) {
      const url = `/api/v1/endpoint/:id/quota/${path}`;
      const command = (
        type: EngineCommand['type'],
        endpoint: number,
        issuedBy: string,
        body?: AssignBody,
        t = backend.now(),
      ): EngineCommand => ({
        // The edge of the system: a fresh id per request, kept on the log, so replays reproduce it.
        command_id: `api-${randomUUID()}`,
        timestamp: t,
        type,
        endpoint_id: endpoint,
        service: which.service,
        volume: body ? volumeText(body.volume, which.service) : null,
        expiry_date: body ? expiryOf(body.expiry_date, t) : null,
        threshold_percentage: body?.threshold_percentage ?? null,
        action_on_exhaustion: body ? (body.action_on_exhaustion?.id === 2 ? 'THROTTLE' : 'BLOCK') : null,
        peak_throughput: body?.action_on_exhaustion?.peak_throughput ?? null,
        auto_refill: body?.auto_refill === 1 || body?.auto_refill === true,
        issued_by: issuedBy,
      });

      app.get(
        url,
        {
          schema: route(`The endpoint's ${which.noun} quota`, {
            params,
            response: { 200: quotaSchema, ...errorResponses(401, 404, 429) },
          }),
        },
        async (request) => {
          const caller = callerOf(request);
          const { quota } = lookup(
            (request.params as { id: string }).id,
            caller.organisation_id,
            which,
            true,
          );
          return rendered(quota as Quota);
        },
      );

      app.post(
        url,
        {
          schema: route(`Assign the endpoint's ${which.noun} quota, or top it up by posting the new total`, {
            params,
            body: assignSchema,
            response: { 201: quotaSchema, ...errorResponses(401, 404, 422, 429) },
          }),
        },
        async (request, reply) => {
          const caller = callerOf(request);
          const { id } = lookup((request.params as { id: string }).id, caller.organisation_id, which, false);
          const body = request.body as AssignBody;
          if (body.action_on_exhaustion?.id === 2 && body.action_on_exhaustion.peak_throughput == null)
            throw invalid(
              `action_on_exhaustion.peak_throughput: required with Throttle (2): ${PEAK_THROUGHPUTS.join(', ')}`,
            );
          await submitted(command('QUOTA_ASSIGN', id, issuer(caller.token_id), body));
          const { quota } = lookup(String(id), caller.organisation_id, which, true);
          return reply.code(201).send(rendered(quota as Quota));
        },
      );

      app.delete(
        url,
        {
          schema: route(`Delete the endpoint's ${which.noun} quota`, {
            params,
            response: { 204: { type: 'null' }, ...errorResponses(401, 404, 429) },
          }),
        },
        async (request, reply) => {
          const caller = callerOf(request);
          const { id } = lookup((request.params as { id: string }).id, caller.organisation_id, which, true);
          await submitted(command('QUOTA_DELETE', id, issuer(caller.token_id)));
          return reply.code(204).send();
        },
      );
    }
  };
}
