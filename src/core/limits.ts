/**
 * Monthly limits (reference §4.2 and §4.3), pure state machines over event time:
 * - service-profile traffic limits per endpoint: data MB and SMS count per calendar month
 *   (UTC); event 65 once usage passes the warning percentage of the data limit, event 11
 *   and a block when a limit is exceeded; counters reset on the 1st, which lifts the block.
 *   A limit extension adds volume to the current month's limit.
 * - the organisation's monthly cost limit: event 12 and a block of every endpoint of the
 *   organisation once the month's cost reaches it; lifted on the 1st.
 * Usage is counted in the month of its own usage time. Usage of a month that is already
 * closed (a late record) still counts toward that month's totals, but cannot block or
 * warn any more: the block for that month is over.
 */
import { parseDecimal } from './decimal.js';
import { type EventTypeName, isoMonth } from './events.js';
import { mbToBytes } from './units.js';

export function monthOf(t: number): string {
  return isoMonth(t);
}

export interface LimitEffect {
  event: EventTypeName;
  description: string;
  enforce?: { action: 'BLOCK' | 'UNBLOCK'; scope: 'DATA' | 'SMS' | 'ALL'; reason: string };
}

export interface EndpointLimits {
  /** Month (YYYY-MM) the counters below belong to: the newest month seen. */
  month: string;
  dataBytes: bigint;
  sms: bigint;
  /** Extra volume for this month from limit extensions. */
  extraDataBytes: bigint;
  extraSms: bigint;
  warned: boolean;
  dataBlocked: boolean;
  smsBlocked: boolean;
}

export interface LimitPolicy {
  /** Decimal MB, from the service profile. */
  dataMb?: string | undefined;
  sms?: number | undefined;
  warningPercentage?: number | undefined;
}

export function newEndpointLimits(t: number): EndpointLimits {
  return {
    month: monthOf(t),
    dataBytes: 0n,
    sms: 0n,
    extraDataBytes: 0n,
    extraSms: 0n,
    warned: false,
    dataBlocked: false,
    smsBlocked: false,
  };
}

/** Moves the counters to the month of t; a new month resets them and lifts blocks. */
export function rollEndpointMonth(limits: EndpointLimits, t: number): LimitEffect[] {
  const month = monthOf(t);
  if (month <= limits.month) return [];
  const effects: LimitEffect[] = [];
  if (limits.dataBlocked || limits.smsBlocked) {
    const scope = limits.dataBlocked && limits.smsBlocked ? 'ALL' : limits.dataBlocked ? 'DATA' : 'SMS';
    effects.push({
      event: 'GENERIC',
      description: `Monthly traffic limit reset for ${month}; access restored.`,
      enforce: { action: 'UNBLOCK', scope, reason: 'monthly traffic limit reset' },
    });
  }
  Object.assign(limits, newEndpointLimits(t));
  return effects;
}

/** Counts usage at time t against the endpoint's limits. */
export function countEndpointUsage(
  limits: EndpointLimits,
  policy: LimitPolicy,
  usage: { dataBytes: bigint; sms: bigint },
  t: number,
): LimitEffect[] {
  const effects = rollEndpointMonth(limits, t);
  if (monthOf(t) < limits.month) return effects; // a closed month: counted in the store, no policy action
  limits.dataBytes += usage.dataBytes;
  limits.sms += usage.sms;
  if (policy.dataMb !== undefined && usage.dataBytes > 0n) {
    const limit = mbToBytes(parseDecimal(policy.dataMb)) + limits.extraDataBytes;
    const pct = policy.warningPercentage;
    // A record that jumps past the limit still gets its warning first, as a device crossing it slowly would.
    if (pct && !limits.warned && limits.dataBytes * 100n >= limit * BigInt(pct)) {
      limits.warned = true;
      effects.push({
        event: 'DATA_LIMIT_WARNING',
        description: `Data traffic reached ${pct}% of the monthly limit of ${policy.dataMb} MB.`,
      });
    }
    if (!limits.dataBlocked && limits.dataBytes > limit) {
      limits.dataBlocked = true;
      effects.push({
        event: 'ENDPOINT_BLOCKED',
        description: 'Blocking data access for endpoint, traffic limit exceeded.',
        enforce: { action: 'BLOCK', scope: 'DATA', reason: 'monthly data limit exceeded' },
      });
    }
  }
  if (
    policy.sms !== undefined &&
    usage.sms > 0n &&
    !limits.smsBlocked &&
    limits.sms > BigInt(policy.sms) + limits.extraSms
  ) {
    limits.smsBlocked = true;
    effects.push({
      event: 'ENDPOINT_BLOCKED',
      description: 'Blocking SMS access for endpoint, traffic limit exceeded.',
      enforce: { action: 'BLOCK', scope: 'SMS', reason: 'monthly SMS limit exceeded' },
    });
  }
  return effects;
}

/** A limit extension for the rest of the month; lifts a block the extension covers. */
export function extendEndpointLimit(
  limits: EndpointLimits,
  policy: LimitPolicy,
  service: 'DATA' | 'SMS',
  volume: string,
  t: number,
): LimitEffect[] {
  const effects = rollEndpointMonth(limits, t);
  const amount = parseDecimal(volume);
  if (amount <= 0n) throw new RangeError(`LIMIT_EXTENSION: volume must be positive, got ${volume}`);
  if (service === 'DATA') {
    limits.extraDataBytes += mbToBytes(amount);
    const limit =
      policy.dataMb === undefined
        ? undefined
        : mbToBytes(parseDecimal(policy.dataMb)) + limits.extraDataBytes;
    if (limits.dataBlocked && limit !== undefined && limits.dataBytes <= limit) {
      limits.dataBlocked = false;
      effects.push({
        event: 'GENERIC',
        description: `Data limit extended by ${volume} MB for this month; access restored.`,
        enforce: { action: 'UNBLOCK', scope: 'DATA', reason: 'limit extended' },
      });
    }
  } else {
    if (amount % 10_000_000_000n !== 0n)
      throw new RangeError(
        `LIMIT_EXTENSION: an SMS extension counts messages: ${volume} is not a whole number`,
      );
    limits.extraSms += amount / 10_000_000_000n;
    if (limits.smsBlocked && policy.sms !== undefined && limits.sms <= BigInt(policy.sms) + limits.extraSms) {
      limits.smsBlocked = false;
      effects.push({
        event: 'GENERIC',
        description: `SMS limit extended by ${volume} for this month; access restored.`,
        enforce: { action: 'UNBLOCK', scope: 'SMS', reason: 'limit extended' },
      });
    }
  }
  return effects;
}

export interface OrganisationSpend {
  month: string;
  /** Cost this month in 10^-10 units of the organisation's currency. */
  cost: bigint;
  blocked: boolean;
}

/**
 * Moves an organisation's spend on to a later month: the cost starts again at zero, and a
 * block of the month before is lifted.
 */
export function startOrganisationMonth(spend: OrganisationSpend, month: string): LimitEffect[] {
  const effects: LimitEffect[] = [];
  if (spend.blocked)
    effects.push({
      event: 'GENERIC',
      description: `Monthly cost limit reset for ${month}; services restored.`,
      enforce: { action: 'UNBLOCK', scope: 'ALL', reason: 'monthly cost limit reset' },
    });
  spend.month = month;
  spend.cost = 0n;
  spend.blocked = false;
  return effects;
}

/** 00:00 UTC on the 1st of the month after `month` ("2026-01" -> 2026-02-01), ms. */
export function nextMonthStart(month: string): number {
  return Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5, 7)), 1);
}

/**
 * Adds a usage record's cost to its organisation's month. Costs in another currency than
 * the organisation's are counted by the caller separately (no exchange rates here).
 */
export function countOrganisationCost(
  spend: OrganisationSpend,
  limit: string | undefined,
  cost: bigint,
  t: number,
): LimitEffect[] {
  const month = monthOf(t);
  const effects = month > spend.month ? startOrganisationMonth(spend, month) : [];
  if (month < spend.month) return effects;
  spend.cost += cost;
  if (limit !== undefined && !spend.blocked && spend.cost >= parseDecimal(limit)) {
    spend.blocked = true;
    effects.push({
      event: 'ORGANISATION_BLOCKED',
      description: 'Blocking services for organisation, because monthly cost limit exceeded.',
      enforce: { action: 'BLOCK', scope: 'ALL', reason: 'organisation monthly cost limit exceeded' },
    });
  }
  return effects;
}
