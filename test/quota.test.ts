import { describe, expect, it } from 'vitest';
import type { EngineCommand } from '../src/contracts/raw.js';
import { advanceQuota, applyQuotaCommand, consumeQuota, type Quota } from '../src/core/quota.js';
import { T0 } from './fixtures.js';

const MB = 1_048_576n;
const DAY = 86_400_000;

function command(fields: Partial<EngineCommand>): EngineCommand {
  return {
    command_id: 'c',
    timestamp: T0,
    type: 'QUOTA_ASSIGN',
    endpoint_id: 1,
    service: 'DATA',
    volume: '100',
    expiry_date: T0 + 30 * DAY,
    threshold_percentage: 15,
    action_on_exhaustion: 'BLOCK',
    peak_throughput: null,
    auto_refill: false,
    issued_by: null,
    ...fields,
  };
}

function assign(fields: Partial<EngineCommand> = {}): Quota {
  const { quota } = applyQuotaCommand(undefined, command(fields));
  if (!quota) throw new Error('no quota');
  return quota;
}

describe('data quota', () => {
  it('assigns with event 56 and emnify camelCase detail', () => {
    const { quota, effects } = applyQuotaCommand(undefined, command({}));
    expect(quota?.remaining).toBe(100n * MB);
    expect(effects).toEqual([
      {
        event: 'DATA_QUOTA_ASSIGNED',
        description: 'Data quota of 100.000000 MB assigned.',
        detail: {
          quota: {
            status: { id: 1, description: 'ACTIVE' },
            action_on_exhaustion: { id: 1, description: 'Block', peak_throughput: null },
            volume: 100,
            expiryDate: '2026-02-04T00:00:00.000Z',
            lastVolumeAdded: 100,
            lastStatusChangeDate: '2026-01-05T00:00:00.000Z',
            autoRefill: 0,
            thresholdPercentage: 15,
            thresholdVolume: 15,
          },
        },
      },
    ]);
  });

  it('fires the threshold once below 15 MB left of 100 MB, then used up with a block', () => {
    const quota = assign();
    expect(consumeQuota(quota, 80n * MB, T0 + 1)).toEqual([]); // 20 MB left: above 15
    const threshold = consumeQuota(quota, 6n * MB, T0 + 2); // 14 MB left
    expect(threshold.map((e) => [e.event, e.detail])).toEqual([
      ['DATA_QUOTA_THRESHOLD', { quota: { threshold_percentage: 15, threshold_volume: 15, volume: 14 } }],
    ]);
    expect(consumeQuota(quota, 1n * MB, T0 + 3)).toEqual([]); // fires once
    const usedUp = consumeQuota(quota, 13n * MB, T0 + 4);
    expect(usedUp.map((e) => [e.event, e.enforce])).toEqual([
      ['DATA_QUOTA_USED_UP', { action: 'BLOCK', peakThroughput: null, reason: 'Data quota used up' }],
    ]);
    expect(quota.status).toBe('EXHAUSTED');
    // Usage in flight after the block still counts, silently.
    expect(consumeQuota(quota, 5n * MB, T0 + 5)).toEqual([]);
    expect(quota.remaining).toBe(-5n * MB);
  });

  it('throttles at the peak throughput instead when so configured', () => {
    const quota = assign({ action_on_exhaustion: 'THROTTLE', peak_throughput: 128_000, volume: '1' });
    // One record past the threshold and past the end: both events, threshold first.
    const effects = consumeQuota(quota, 2n * MB, T0 + 1);
    expect(effects.map((e) => e.event)).toEqual(['DATA_QUOTA_THRESHOLD', 'DATA_QUOTA_USED_UP']);
    const effect = effects[1];
    expect(effect?.description).toBe('Data quota used up; throughput is limited to 128 kbit/s.');
    expect(effect?.enforce).toEqual({
      action: 'THROTTLE',
      peakThroughput: 128_000,
      reason: 'Data quota used up',
    });
  });

  it('expires at its expiry date with event 60 and a block, whatever is left', () => {
    const quota = assign({ expiry_date: T0 + DAY });
    expect(advanceQuota(quota, T0 + DAY - 1)).toEqual([]);
    const effects = advanceQuota(quota, T0 + DAY);
    expect(effects.map((e) => [e.event, e.enforce?.action])).toEqual([['DATA_QUOTA_EXPIRED', 'BLOCK']]);
    expect(quota.status).toBe('EXPIRED');
    expect(advanceQuota(quota, T0 + 2 * DAY)).toEqual([]);
  });

  it('refills daily at midnight UTC of event time and unblocks an exhausted quota', () => {
    const quota = assign({ auto_refill: true, volume: '10' });
    consumeQuota(quota, 10n * MB, T0 + 3_600_000);
    expect(quota.status).toBe('EXHAUSTED');
    expect(advanceQuota(quota, T0 + DAY - 1)).toEqual([]); // still the same day
    const effects = advanceQuota(quota, T0 + DAY);
    expect(effects.map((e) => [e.event, e.enforce?.action])).toEqual([['DATA_QUOTA_ASSIGNED', 'UNBLOCK']]);
    expect(quota.remaining).toBe(10n * MB);
    expect(quota.status).toBe('ACTIVE');
    expect(advanceQuota(quota, T0 + DAY + 5)).toEqual([]); // once per day
  });

  it('tops up an exhausted quota and lifts the block (event 56, then a disconnect to apply it)', () => {
    const quota = assign({ volume: '1' });
    consumeQuota(quota, 2n * MB, T0 + 1);
    const { quota: after, effects } = applyQuotaCommand(
      quota,
      command({ type: 'QUOTA_TOP_UP', volume: '5', timestamp: T0 + 10 }),
    );
    expect(after?.remaining).toBe(5n * MB); // nothing carried over from below zero
    expect(effects.map((e) => [e.event, e.enforce?.action])).toEqual([
      ['DATA_QUOTA_ASSIGNED', undefined],
      ['GENERIC', 'UNBLOCK'],
    ]);
  });

  it('lifts the block of an exhausted quota when it is deleted', () => {
    const quota = assign({ volume: '1' });
    consumeQuota(quota, 2n * MB, T0 + 1);
    const { effects } = applyQuotaCommand(quota, command({ type: 'QUOTA_DELETE', timestamp: T0 + 2 }));
    expect(effects.map((e) => [e.event, e.enforce?.action])).toEqual([['DATA_QUOTA_DELETED', 'UNBLOCK']]);
  });

  it('refuses a fractional SMS quota', () => {
    expect(() => applyQuotaCommand(undefined, command({ service: 'SMS', volume: '0.5' }))).toThrow(
      /is not a whole number/,
    );
  });

  it('deletes with event 57, and refuses broken commands with the field named', () => {
    expect(
      applyQuotaCommand(assign(), command({ type: 'QUOTA_DELETE' })).effects.map((e) => e.event),
    ).toEqual(['DATA_QUOTA_DELETED']);
    expect(() => applyQuotaCommand(undefined, command({ volume: null }))).toThrow(
      'QUOTA_ASSIGN: volume is required',
    );
    expect(() => applyQuotaCommand(undefined, command({ threshold_percentage: 120 }))).toThrow(
      /threshold_percentage must be 0..100/,
    );
    expect(() =>
      applyQuotaCommand(undefined, command({ action_on_exhaustion: 'THROTTLE', peak_throughput: 100 })),
    ).toThrow(/peak_throughput must be 64000/);
    expect(() => applyQuotaCommand(undefined, command({ type: 'QUOTA_TOP_UP' }))).toThrow(
      /has no DATA quota to top up/,
    );
  });
});

describe('SMS quota', () => {
  it('counts messages: 10 assigned, the tenth uses it up (event 21)', () => {
    const quota = assign({ service: 'SMS', volume: '10', threshold_percentage: 20 });
    const effects = [];
    for (let k = 0; k < 10; k++) effects.push(...consumeQuota(quota, 1n, T0 + k));
    // 20% of 10 = 2: fires when 1 is left (strictly below 2), used up at 0.
    expect(effects.map((e) => e.event)).toEqual(['SMS_QUOTA_THRESHOLD', 'SMS_QUOTA_USED_UP']);
    expect(effects[0]?.detail).toEqual({
      quota: { threshold_percentage: 20, threshold_volume: 2, volume: 1 },
    });
  });
});
