import { describe, expect, it } from 'vitest';
import { parseDecimal } from '../src/core/decimal.js';
import {
  countEndpointUsage,
  countOrganisationCost,
  extendEndpointLimit,
  newEndpointLimits,
  type OrganisationSpend,
} from '../src/core/limits.js';
import { T0 } from './fixtures.js';

const MB = 1_048_576n;
const FEB = Date.UTC(2026, 1, 1);
const policy = { dataMb: '100', sms: 10, warningPercentage: 80 };
const data = (mb: bigint, extra = 0n) => ({ dataBytes: mb * MB + extra, sms: 0n });

describe('service-profile monthly limits', () => {
  it('warns at 80% of 100 MB (event 65), blocks beyond 100 MB (event 11), not at exactly 100 MB', () => {
    const limits = newEndpointLimits(T0);
    expect(countEndpointUsage(limits, policy, data(79n), T0)).toEqual([]);
    expect(countEndpointUsage(limits, policy, data(2n), T0 + 1).map((e) => e.event)).toEqual([
      'DATA_LIMIT_WARNING',
    ]);
    expect(countEndpointUsage(limits, policy, data(19n), T0 + 2)).toEqual([]); // 100 MB: at, not beyond
    const blocked = countEndpointUsage(limits, policy, data(0n, 1n), T0 + 3);
    expect(blocked).toEqual([
      {
        event: 'ENDPOINT_BLOCKED',
        description: 'Blocking data access for endpoint, traffic limit exceeded.',
        enforce: { action: 'BLOCK', scope: 'DATA', reason: 'monthly data limit exceeded' },
      },
    ]);
    expect(countEndpointUsage(limits, policy, data(5n), T0 + 4)).toEqual([]); // blocked once
  });

  it('resets on the 1st of the month (UTC, event time) and lifts the block; a late record of the old month changes nothing', () => {
    const limits = newEndpointLimits(T0);
    countEndpointUsage(limits, policy, data(101n), T0);
    expect(limits.dataBlocked).toBe(true);
    const reset = countEndpointUsage(limits, policy, data(1n), FEB);
    expect(reset.map((e) => [e.event, e.enforce?.action])).toEqual([['GENERIC', 'UNBLOCK']]);
    expect(limits.dataBytes).toBe(1n * MB);
    expect(countEndpointUsage(limits, policy, data(500n), FEB - 1)).toEqual([]);
    expect(limits.dataBytes).toBe(1n * MB);
  });

  it('blocks SMS after the 10th message of the month', () => {
    const limits = newEndpointLimits(T0);
    const effects = [];
    for (let k = 0; k < 11; k++)
      effects.push(...countEndpointUsage(limits, policy, { dataBytes: 0n, sms: 1n }, T0 + k));
    expect(effects.map((e) => [e.event, e.enforce?.scope])).toEqual([['ENDPOINT_BLOCKED', 'SMS']]);
  });

  it("a limit extension raises this month's limit and lifts the block it covers", () => {
    const limits = newEndpointLimits(T0);
    expect(countEndpointUsage(limits, policy, data(105n), T0).map((e) => e.event)).toEqual([
      'DATA_LIMIT_WARNING',
      'ENDPOINT_BLOCKED',
    ]);
    expect(extendEndpointLimit(limits, policy, 'DATA', '10', T0 + 1).map((e) => e.enforce?.action)).toEqual([
      'UNBLOCK',
    ]);
    expect(countEndpointUsage(limits, policy, data(4n), T0 + 2)).toEqual([]); // 109 of 110 MB
    expect(countEndpointUsage(limits, policy, data(2n), T0 + 3).map((e) => e.event)).toEqual([
      'ENDPOINT_BLOCKED',
    ]);
    expect(() => extendEndpointLimit(limits, policy, 'DATA', '0', T0)).toThrow(/must be positive/);
  });
});

describe('organisation monthly cost limit', () => {
  it('blocks the organisation when the month reaches the limit exactly, and lifts it next month', () => {
    const spend: OrganisationSpend = { month: '2026-01', cost: 0n, blocked: false };
    expect(countOrganisationCost(spend, '1.00', parseDecimal('0.6'), T0)).toEqual([]);
    expect(countOrganisationCost(spend, '1.00', parseDecimal('0.3'), T0)).toEqual([]);
    const blocked = countOrganisationCost(spend, '1.00', parseDecimal('0.1'), T0);
    expect(blocked.map((e) => [e.event, e.description, e.enforce?.scope])).toEqual([
      [
        'ORGANISATION_BLOCKED',
        'Blocking services for organisation, because monthly cost limit exceeded.',
        'ALL',
      ],
    ]);
    expect(countOrganisationCost(spend, '1.00', parseDecimal('5'), T0)).toEqual([]);
    expect(
      countOrganisationCost(spend, '1.00', parseDecimal('0.01'), FEB).map((e) => e.enforce?.action),
    ).toEqual(['UNBLOCK']);
    expect(spend.cost).toBe(parseDecimal('0.01'));
  });

  it('never blocks without a limit', () => {
    const spend: OrganisationSpend = { month: '2026-01', cost: 0n, blocked: false };
    expect(countOrganisationCost(spend, undefined, parseDecimal('1000000'), T0)).toEqual([]);
  });
});

describe('organisation stage', () => {
  it('blocks every endpoint of the organisation once its month reaches the cost limit', async () => {
    const { OrganisationStage } = await import('../src/core/organisation-stage.js');
    const { Directory } = await import('../src/reference/directory.js');
    const { smallWorld } = await import('./fixtures.js');
    const world = smallWorld();
    (world.organisations[0] as { monthly_cost_limit?: string }).monthly_cost_limit = '0.50';
    const stage = new OrganisationStage(new Directory(world));
    const usage = (cost: string, end: string) =>
      ({
        record: { end_timestamp: end },
        organisationId: 1,
        currency: 'EUR',
        cost: parseDecimal(cost),
      }) as unknown as import('../src/core/fold.js').RatedUsage;
    const out = {
      events: [],
      enforcement: [],
    } as import('../src/core/organisation-stage.js').OrganisationStageOutputs;
    stage.apply(usage('0.30', '2026-01-05T10:00:00.000Z'), 0, 0, out);
    expect(out.events).toEqual([]);
    stage.apply(usage('0.20', '2026-01-05T11:00:00.000Z'), 0, 1, out);
    expect(out.events.map((e) => [e.event_type.id, e.endpoint, e.alert])).toEqual([[12, null, true]]);
    expect(out.enforcement.map((c) => [c.endpoint_id, c.action, c.scope])).toEqual(
      [1, 2, 3, 4, 5, 6].map((id) => [id, 'BLOCK', 'ALL']),
    );
    stage.apply(usage('0.01', '2026-02-01T00:00:00.000Z'), 0, 2, out);
    expect(out.enforcement.slice(6).map((c) => c.action)).toEqual(new Array(6).fill('UNBLOCK'));
  });
});
