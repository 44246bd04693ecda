import { describe, expect, it } from 'vitest';
import { parseDecimal } from '../src/core/decimal.js';
import {
  countEndpointUsage,
  countOrganisationCost,
  extendEndpointLimit,
  newEndpointLimits,
  type OrganisationSpend,
} from '../src/core/limits.js';
import { OrganisationStage, type OrganisationStageOutputs } from '../src/core/organisation-stage.js';
import { Directory } from '../src/reference/directory.js';
import { smallWorld, T0 } from './fixtures.js';

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
    // The core keeps these apart from the endpoints' own quota and limit blocks.
    expect(new Set(out.enforcement.map((c) => c.level))).toEqual(new Set(['ORGANISATION']));
  });

  describe('the month ends for every organisation at once', () => {
    type Outputs = OrganisationStageOutputs;
    /** Organisation 1 (limit 0.50) has endpoints 1-4, organisation 2 (no limit) 5 and 6. */
    const world = smallWorld();
    world.organisations = [
      { id: 1, name: 'Test Org', currency: 'EUR', monthly_cost_limit: '0.50' },
      { id: 2, name: 'Other Org', currency: 'EUR' },
    ] as typeof world.organisations;
    for (const e of world.endpoints ?? []) if (e.id >= 5) e.organisation_id = 2;
    const dir = new Directory(world);
    const usage = (organisationId: number, cost: string, end: string) =>
      ({
        record: { end_timestamp: end },
        organisationId,
        currency: 'EUR',
        cost: parseDecimal(cost),
      }) as unknown as import('../src/core/fold.js').RatedUsage;
    const fresh = (): Outputs => ({ events: [], enforcement: [] });

    it("lifts a blocked organisation at 00:00 UTC on the 1st with another organisation's usage", () => {
      const stage = new OrganisationStage(dir);
      const out = fresh();
      stage.apply(usage(1, '0.60', '2026-01-31T10:00:00.000Z'), 0, 0, out);
      expect(out.enforcement.map((c) => c.action)).toEqual(new Array(4).fill('BLOCK'));
      // Organisation 1 is blocked and has no usage in February; organisation 2 has.
      const feb = fresh();
      stage.apply(usage(2, '0.10', '2026-02-01T00:05:00.000Z'), 0, 1, feb);
      expect(feb.events.map((e) => [e.event_type.id, e.organisation.id, e.timestamp])).toEqual([
        [0, 1, '2026-02-01T00:00:00.000Z'],
      ]);
      expect(feb.enforcement.map((c) => [c.endpoint_id, c.action, c.timestamp])).toEqual(
        [1, 2, 3, 4].map((id) => [id, 'UNBLOCK', Date.UTC(2026, 1, 1)]),
      );
      // Its February starts at zero: 0.40 more does not reach the limit, 0.10 after it does.
      const more = fresh();
      stage.apply(usage(1, '0.40', '2026-02-02T00:00:00.000Z'), 0, 2, more);
      expect(more.events).toEqual([]);
      stage.apply(usage(1, '0.10', '2026-02-02T01:00:00.000Z'), 0, 3, more);
      expect(more.events.map((e) => e.event_type.id)).toEqual([12]);
    });

    it('lifts a block as of the 1st after its month, even when the next usage is months later', () => {
      const stage = new OrganisationStage(dir);
      stage.apply(usage(1, '0.60', '2026-01-31T10:00:00.000Z'), 0, 0, fresh());
      const march = fresh();
      stage.apply(usage(2, '0.10', '2026-03-10T00:00:00.000Z'), 0, 1, march);
      expect(march.events.map((e) => [e.timestamp, e.description])).toEqual([
        ['2026-02-01T00:00:00.000Z', 'Monthly cost limit reset for 2026-02; services restored.'],
      ]);
      expect(stage.spend.get(1)).toEqual({ month: '2026-03', cost: 0n, blocked: false });
    });

    it('does not count a late record of a month that has ended', () => {
      const stage = new OrganisationStage(dir);
      const out = fresh();
      stage.apply(usage(2, '0.01', '2026-02-01T00:05:00.000Z'), 0, 0, out);
      stage.apply(usage(1, '0.60', '2026-01-31T23:59:00.000Z'), 0, 1, out);
      expect(out.events).toEqual([]);
      expect(stage.spend.get(1)).toEqual({ month: '2026-02', cost: 0n, blocked: false });
    });

    it('lifts the same way after a restart from its state', () => {
      const stage = new OrganisationStage(dir);
      stage.apply(usage(1, '0.60', '2026-01-31T10:00:00.000Z'), 0, 0, fresh());
      const restarted = new OrganisationStage(dir);
      for (const [id, spend] of stage.spend) restarted.spend.set(id, { ...spend });
      const [a, b] = [fresh(), fresh()];
      stage.apply(usage(2, '0.10', '2026-02-01T00:05:00.000Z'), 0, 1, a);
      restarted.apply(usage(2, '0.10', '2026-02-01T00:05:00.000Z'), 0, 1, b);
      expect(b).toEqual(a);
      expect(a.enforcement).toHaveLength(4);
    });

    it('lifts many blocked organisations over the next records, within the ids each record has', () => {
      const many = smallWorld();
      many.organisations = Array.from({ length: 51 }, (_, i) => ({
        id: i + 1,
        name: `Org ${i + 1}`,
        currency: 'EUR' as const,
        ...(i < 50 ? { monthly_cost_limit: '0.01' } : {}),
      })) as typeof many.organisations;
      const stage = new OrganisationStage(new Directory(many));
      for (let id = 1; id <= 50; id++)
        stage.apply(usage(id, '0.02', '2026-01-20T00:00:00.000Z'), 0, id, fresh());
      const [first, second] = [fresh(), fresh()];
      stage.apply(usage(51, '0.01', '2026-02-01T00:00:00.000Z'), 0, 100, first);
      stage.apply(usage(51, '0.01', '2026-02-01T00:01:00.000Z'), 0, 101, second);
      expect(first.events.map((e) => e.organisation.id)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
      expect(second.events.map((e) => e.organisation.id)).toEqual([49, 50]);
      const ids = [...first.events, ...second.events].map((e) => e.id);
      expect(new Set(ids).size).toBe(50);
      expect([...stage.spend.values()].every((s) => !s.blocked && s.month === '2026-02')).toBe(true);
    });
  });
});
