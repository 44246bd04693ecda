/**
 * Endpoint data and SMS quotas (emnify quota management, reference §4.1) as a pure state
 * machine. A quota is ACTIVE until its volume is used up (EXHAUSTED: Block, or Throttle at
 * the peak throughput) or its expiry date passes (EXPIRED: service denied whatever is
 * left). With auto-refill it is refilled to the last added volume at midnight UTC of event
 * time. Each transition yields the emnify event and, where the core must act, an
 * enforcement action. Data volumes are counted in bytes, SMS in messages.
 */
import type { EngineCommand } from '../contracts/raw.js';
import { parseDecimal } from './decimal.js';
import type { EventTypeName } from './events.js';
import { bytesToMb, mbToBytes } from './units.js';

export type QuotaService = 'DATA' | 'SMS';
export type QuotaStatus = 'ACTIVE' | 'EXHAUSTED' | 'EXPIRED';

export interface Quota {
  service: QuotaService;
  status: QuotaStatus;
  /** Bytes (DATA) or messages (SMS) left. */
  remaining: bigint;
  /** The volume last assigned or topped up to: the refill amount and the threshold base. */
  lastVolumeAdded: bigint;
  thresholdPercentage: number;
  thresholdFired: boolean;
  expiry: number;
  action: 'BLOCK' | 'THROTTLE';
  peakThroughput: number | null;
  autoRefill: boolean;
  /** Day number (ms / 86,400,000) of the last refill or assignment. */
  day: number;
  lastStatusChange: number;
}

export interface QuotaEffect {
  event: EventTypeName;
  description: string;
  detail: Record<string, unknown> | null;
  /** What the core must do now, if anything. */
  enforce?: {
    action: 'BLOCK' | 'THROTTLE' | 'UNBLOCK' | 'DISCONNECT';
    peakThroughput: number | null;
    reason: string;
  };
}

const DAY = 86_400_000;
const STATUS_ID: Record<QuotaStatus, number> = { ACTIVE: 1, EXHAUSTED: 2, EXPIRED: 3 };

function units(service: QuotaService, volume: string): bigint {
  const value = parseDecimal(volume);
  if (value < 0n) throw new RangeError(`quota volume ${volume} is negative`);
  if (service === 'SMS' && value % 10_000_000_000n !== 0n)
    throw new RangeError(`an SMS quota volume counts messages: ${volume} is not a whole number`);
  return service === 'DATA' ? mbToBytes(value) : value / 10_000_000_000n;
}

/** Volume as emnify writes it in quota events: MB with 6 decimals for data, a count for SMS. */
export function quotaVolume(quota: Quota, amount = quota.remaining): string {
  return quota.service === 'DATA' ? bytesToMb(amount < 0n ? 0n : amount) : String(amount < 0n ? 0n : amount);
}

function thresholdVolume(quota: Quota): bigint {
  return (quota.lastVolumeAdded * BigInt(quota.thresholdPercentage)) / 100n;
}

/** The camelCase detail of the quota-assigned events (56, 58), as emnify writes it. */
function assignedDetail(quota: Quota): Record<string, unknown> {
  return {
    quota: {
      status: { id: STATUS_ID[quota.status], description: quota.status },
      action_on_exhaustion: {
        id: quota.action === 'BLOCK' ? 1 : 2,
        description: quota.action === 'BLOCK' ? 'Block' : 'Throttle',
        peak_throughput: quota.peakThroughput,
      },
      volume: Number(quotaVolume(quota)),
      expiryDate: new Date(quota.expiry).toISOString(),
      lastVolumeAdded: Number(quotaVolume(quota, quota.lastVolumeAdded)),
      lastStatusChangeDate: new Date(quota.lastStatusChange).toISOString(),
      autoRefill: quota.autoRefill ? 1 : 0,
      thresholdPercentage: quota.thresholdPercentage,
      thresholdVolume: Number(quotaVolume(quota, thresholdVolume(quota))),
    },
  };
}

const NAMES = {
  DATA: {
    assigned: 'DATA_QUOTA_ASSIGNED',
    deleted: 'DATA_QUOTA_DELETED',
    threshold: 'DATA_QUOTA_THRESHOLD',
    usedUp: 'DATA_QUOTA_USED_UP',
    expired: 'DATA_QUOTA_EXPIRED',
    noun: 'Data',
  },
  SMS: {
    assigned: 'SMS_QUOTA_ASSIGNED',
    deleted: 'SMS_QUOTA_DELETED',
    threshold: 'SMS_QUOTA_THRESHOLD',
    usedUp: 'SMS_QUOTA_USED_UP',
    expired: 'SMS_QUOTA_EXPIRED',
    noun: 'SMS',
  },
} as const;

/**
 * Applies an assign, top-up or delete command. Returns the new quota (undefined after a
 * delete) and the effects. Invalid commands throw a RangeError naming the field.
 */
export function applyQuotaCommand(
  current: Quota | undefined,
  command: EngineCommand,
): { quota: Quota | undefined; effects: QuotaEffect[] } {
  const service = command.service;
  const names = NAMES[service];
  const t = command.timestamp;
  if (command.type === 'QUOTA_DELETE') {
    if (!current) return { quota: undefined, effects: [] };
    const deleted: QuotaEffect = {
      event: names.deleted,
      description: `${names.noun} quota deleted.`,
      detail: null,
    };
    // A quota that was denying service takes its block with it.
    if (current.status !== 'ACTIVE')
      deleted.enforce = { action: 'UNBLOCK', peakThroughput: null, reason: `${names.noun} quota deleted` };
    return { quota: undefined, effects: [deleted] };
  }
  if (command.type !== 'QUOTA_ASSIGN' && command.type !== 'QUOTA_TOP_UP')
    return { quota: current, effects: [] };
  if (command.volume === null) throw new RangeError(`${command.type}: volume is required`);
  const amount = units(service, command.volume);
  const wasDenied = current !== undefined && current.status !== 'ACTIVE';
  let quota: Quota;
  if (command.type === 'QUOTA_TOP_UP') {
    if (!current)
      throw new RangeError(`QUOTA_TOP_UP: endpoint ${command.endpoint_id} has no ${service} quota to top up`);
    const remaining = (current.remaining > 0n ? current.remaining : 0n) + amount;
    quota = {
      ...current,
      remaining,
      lastVolumeAdded: remaining,
      thresholdFired: false,
      status: 'ACTIVE',
      expiry: command.expiry_date ?? current.expiry,
      lastStatusChange: current.status === 'ACTIVE' ? current.lastStatusChange : t,
      day: Math.floor(t / DAY),
    };
  } else {
    if (command.expiry_date === null) throw new RangeError('QUOTA_ASSIGN: expiry_date is required');
    const pct = command.threshold_percentage ?? 0;
    if (pct < 0 || pct > 100)
      throw new RangeError(`QUOTA_ASSIGN: threshold_percentage must be 0..100, got ${pct}`);
    const action = command.action_on_exhaustion ?? 'BLOCK';
    if (
      action === 'THROTTLE' &&
      ![64_000, 128_000, 256_000, 384_000].includes(command.peak_throughput ?? -1)
    ) {
      throw new RangeError(
        `QUOTA_ASSIGN: peak_throughput must be 64000, 128000, 256000 or 384000 with THROTTLE, got ${command.peak_throughput}`,
      );
    }
    quota = {
      service,
      status: 'ACTIVE',
      remaining: amount,
      lastVolumeAdded: amount,
      thresholdPercentage: pct,
      thresholdFired: false,
      expiry: command.expiry_date,
      action,
      peakThroughput: action === 'THROTTLE' ? command.peak_throughput : null,
      autoRefill: command.auto_refill,
      day: Math.floor(t / DAY),
      lastStatusChange: t,
    };
  }
  const effects: QuotaEffect[] = [
    {
      event: names.assigned,
      description: `${names.noun} quota of ${quotaVolume(quota)} ${service === 'DATA' ? 'MB' : 'SMS'} assigned.`,
      detail: assignedDetail(quota),
    },
  ];
  if (quota.expiry <= t) return { quota, effects: [...effects, ...expire(quota, t)] };
  if (wasDenied) {
    // emnify tears the session down so the new quota applies (event 0, "because quota has been updated").
    effects.push({
      event: 'GENERIC',
      description: `Disconnecting ${service === 'DATA' ? 'data' : 'SMS'} access for endpoint, because quota has been updated.`,
      detail: null,
      enforce: { action: 'UNBLOCK', peakThroughput: null, reason: `${names.noun} quota updated` },
    });
  }
  return { quota, effects };
}

function expire(quota: Quota, t: number): QuotaEffect[] {
  quota.status = 'EXPIRED';
  quota.lastStatusChange = t;
  const names = NAMES[quota.service];
  return [
    {
      event: names.expired,
      description: `${names.noun} quota expired; ${quota.service === 'DATA' ? 'data' : 'SMS'} access is denied.`,
      detail: null,
      enforce: { action: 'BLOCK', peakThroughput: null, reason: `${names.noun} quota expired` },
    },
  ];
}

/**
 * Time passes (event time): the quota expires, or is refilled at midnight UTC. Call before
 * applying usage at time t.
 */
export function advanceQuota(quota: Quota, t: number): QuotaEffect[] {
  const effects: QuotaEffect[] = [];
  const day = Math.floor(t / DAY);
  if (quota.status !== 'EXPIRED' && t >= quota.expiry) return expire(quota, Math.max(quota.expiry, 0));
  if (quota.autoRefill && day > quota.day && quota.status !== 'EXPIRED') {
    const wasExhausted = quota.status === 'EXHAUSTED';
    quota.day = day;
    quota.remaining = quota.lastVolumeAdded;
    quota.thresholdFired = false;
    if (wasExhausted) {
      quota.status = 'ACTIVE';
      quota.lastStatusChange = day * DAY;
    }
    const names = NAMES[quota.service];
    effects.push({
      event: names.assigned,
      description: `${names.noun} quota refilled to ${quotaVolume(quota)} ${quota.service === 'DATA' ? 'MB' : 'SMS'} (daily auto-refill).`,
      detail: assignedDetail(quota),
      ...(wasExhausted
        ? {
            enforce: {
              action: 'UNBLOCK' as const,
              peakThroughput: null,
              reason: `${names.noun} quota refilled`,
            },
          }
        : {}),
    });
  }
  return effects;
}

/** Usage of `amount` bytes or messages: threshold and used-up transitions. */
export function consumeQuota(quota: Quota, amount: bigint, t: number): QuotaEffect[] {
  if (quota.status !== 'ACTIVE' || amount <= 0n) {
    // Usage already in flight when the core was told to block still counts against the quota.
    if (amount > 0n) quota.remaining -= amount;
    return [];
  }
  quota.remaining -= amount;
  const names = NAMES[quota.service];
  const effects: QuotaEffect[] = [];
  const threshold = thresholdVolume(quota);
  if (!quota.thresholdFired && quota.thresholdPercentage > 0 && quota.remaining < threshold) {
    quota.thresholdFired = true;
    effects.push({
      event: names.threshold,
      description: `${names.noun} quota threshold of ${quota.thresholdPercentage}% reached: ${quotaVolume(quota)} ${quota.service === 'DATA' ? 'MB' : 'SMS'} left.`,
      detail: {
        quota: {
          threshold_percentage: quota.thresholdPercentage,
          threshold_volume: Number(quotaVolume(quota, threshold)),
          volume: Number(quotaVolume(quota)),
        },
      },
    });
  }
  if (quota.remaining <= 0n) {
    quota.status = 'EXHAUSTED';
    quota.lastStatusChange = t;
    const throttle = quota.action === 'THROTTLE';
    effects.push({
      event: names.usedUp,
      description: throttle
        ? `${names.noun} quota used up; throughput is limited to ${(quota.peakThroughput ?? 0) / 1000} kbit/s.`
        : `${names.noun} quota used up; ${quota.service === 'DATA' ? 'data' : 'SMS'} access is denied.`,
      detail: {
        quota: {
          threshold_percentage: quota.thresholdPercentage,
          threshold_volume: Number(quotaVolume(quota, threshold)),
          volume: quotaVolume(quota, 0n),
        },
      },
      enforce: {
        action: throttle ? 'THROTTLE' : 'BLOCK',
        peakThroughput: throttle ? quota.peakThroughput : null,
        reason: `${names.noun} quota used up`,
      },
    });
  }
  return effects;
}
