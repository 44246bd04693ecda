import { describe, expect, it } from 'vitest';
import { divideHalfUp, formatDecimal, formatFixed, parseDecimal } from '../src/core/decimal.js';
import { billableBytes, dataCost, rateData, rateSms } from '../src/core/rating.js';
import { bytesToMb, mbToBytes } from '../src/core/units.js';
import { Directory } from '../src/reference/directory.js';
import type { Ratezone, Tariff } from '../src/reference/types.js';
import { smallWorld } from './fixtures.js';

// Every expectation below is computed by hand (shown in the comments), not taken from the code.

describe('exact decimals', () => {
  it('parses and formats without floats', () => {
    expect(parseDecimal('0.25')).toBe(2_500_000_000n);
    expect(parseDecimal('12')).toBe(120_000_000_000n);
    expect(parseDecimal('0.0000000001')).toBe(1n);
    expect(formatDecimal(2_500_000_000n)).toBe('0.25');
    expect(formatDecimal(1n)).toBe('0.0000000001');
    expect(formatDecimal(-15_000_000_000n)).toBe('-1.5');
    expect(formatFixed(2_197_265_625n, 6)).toBe('0.219727'); // 0.2197265625 half-up at 6 places
    for (const bad of ['1e-3', '0.12345678901', '.5', '1,5', ''])
      expect(() => parseDecimal(bad)).toThrow(RangeError);
  });

  it('rounds half up, away from zero', () => {
    expect(divideHalfUp(5n, 2n)).toBe(3n); // 2.5 -> 3
    expect(divideHalfUp(7n, 2n)).toBe(4n); // 3.5 -> 4
    expect(divideHalfUp(-5n, 2n)).toBe(-3n);
    expect(divideHalfUp(1n, 3n)).toBe(0n);
    expect(divideHalfUp(2n, 3n)).toBe(1n);
  });

  it('sums 0.1 ten thousand times to exactly 1000', () => {
    let sum = 0n;
    for (let i = 0; i < 10_000; i++) sum += parseDecimal('0.1');
    expect(formatDecimal(sum)).toBe('1000');
  });
});

describe('units: 1 KB = 1024 B, 1 MB = 1024 KB', () => {
  it('formats volumes in MB with 6 decimals', () => {
    expect(bytesToMb(1_048_576n)).toBe('1.000000');
    expect(bytesToMb(1_572_864n)).toBe('1.500000');
    expect(bytesToMb(230_400n)).toBe('0.219727'); // 225 KB = 0.2197265625 MB
    expect(bytesToMb(1n)).toBe('0.000001'); // 0.00000095 -> half-up
    expect(bytesToMb(0n)).toBe('0.000000');
    expect(bytesToMb(8_192n)).toBe('0.007813'); // 0.0078125: a tie, half-up
    expect(bytesToMb(575_000_000_000n)).toBe('548362.731934'); // 548362.73193359375
    // Past ~576 GB the arithmetic leaves doubles for BigInts; the rounding stays the same.
    expect(bytesToMb(600_000_000_000n)).toBe('572204.589844'); // 572204.58984375
    expect(bytesToMb(1_099_511_627_776n)).toBe('1048576.000000'); // 1 TB
  });

  it('turns an MB allowance into whole bytes, rounding down', () => {
    expect(mbToBytes(parseDecimal('1'))).toBe(1_048_576n);
    expect(mbToBytes(parseDecimal('0.5'))).toBe(524_288n);
    expect(mbToBytes(parseDecimal('0.0000001'))).toBe(0n); // 0.1048576 bytes
  });
});

const tariff: Tariff = {
  id: 1,
  version: 3,
  name: 'T',
  currency: 'EUR',
  data_blocksize_bytes: 1024,
  default_sms_mt_rate: '0.01',
  ratezones: [],
};
const zone: Ratezone = {
  id: 2,
  name: 'Zone B',
  operator_ids: [1],
  rates: { data_per_mb: '0.25', sms_mo: '0.07' },
};
const bundled: Ratezone = {
  id: 3,
  name: 'Europe Basic',
  operator_ids: [2],
  rates: { data_per_mb: '0.10', sms_mo: '0.07', sms_mt: '0.02' },
  inclusive_volume: { volume_mb: '1', excess_per_mb: '0.10' },
};

describe('data rating', () => {
  it('rounds every record up to whole 1 KB blocks', () => {
    expect(billableBytes(0n, 1024)).toBe(0n);
    expect(billableBytes(1n, 1024)).toBe(1024n);
    expect(billableBytes(1024n, 1024)).toBe(1024n);
    expect(billableBytes(1025n, 1024)).toBe(2048n);
    expect(billableBytes(100_000n, 1024)).toBe(100_352n); // 98 blocks
  });

  it('costs billable MB x rate, half-up to 10 decimals', () => {
    // 1 KB at 0.20/MB = 0.2 / 1024 = 0.0001953125 (exact)
    expect(formatDecimal(dataCost(1024n, '0.20'))).toBe('0.0001953125');
    // 225 KB at 0.10/MB = 0.02197265625 -> 0.0219726563
    expect(formatDecimal(dataCost(230_400n, '0.10'))).toBe('0.0219726563');
    // 100,000 B -> 98 KB = 0.095703125 MB at 0.25 = 0.02392578125 -> 0.0239257813
    const rated = rateData({ tariff, zone, rxBytes: 60_000n, txBytes: 40_000n, inclusiveUsedBytes: 0n });
    expect(rated.slices).toEqual([
      {
        rxBytes: 60_000n,
        txBytes: 40_000n,
        billableBytes: 100_352n,
        rate: '0.25',
        cost: 239_257_813n,
        inclusive: false,
      },
    ]);
  });

  it('charges nothing inside the inclusive volume, splits the record that crosses it, then charges the excess rate', () => {
    // 700,000 B -> 684 KB = 700,416 billable: inside the 1 MB (1,048,576 B) allowance.
    const first = rateData({
      tariff,
      zone: bundled,
      rxBytes: 500_000n,
      txBytes: 200_000n,
      inclusiveUsedBytes: 0n,
    });
    expect(first.slices).toEqual([
      { rxBytes: 500_000n, txBytes: 200_000n, billableBytes: 700_416n, rate: '0', cost: 0n, inclusive: true },
    ]);
    expect(first.inclusiveUsedBytes).toBe(700_416n);

    // 500,000 B -> 489 KB = 500,736 billable; 348,160 B of allowance left.
    // Inside: 348,160 B; rx share 400,000 x 348,160 / 500,000 = 278,528, tx 69,632.
    // Excess: 500,736 - 348,160 = 152,576 B = 0.1455078125 MB x 0.10 = 0.01455078125 -> 0.0145507813
    const second = rateData({
      tariff,
      zone: bundled,
      rxBytes: 400_000n,
      txBytes: 100_000n,
      inclusiveUsedBytes: 700_416n,
    });
    expect(second.slices).toEqual([
      { rxBytes: 278_528n, txBytes: 69_632n, billableBytes: 348_160n, rate: '0', cost: 0n, inclusive: true },
      {
        rxBytes: 121_472n,
        txBytes: 30_368n,
        billableBytes: 152_576n,
        rate: '0.10',
        cost: 145_507_813n,
        inclusive: false,
      },
    ]);
    expect(second.inclusiveUsedBytes).toBe(1_048_576n);

    // 10 B after the allowance: 1 KB at 0.10 = 0.00009765625 -> 0.0000976563
    const third = rateData({
      tariff,
      zone: bundled,
      rxBytes: 10n,
      txBytes: 0n,
      inclusiveUsedBytes: 1_048_576n,
    });
    expect(third.slices.map((s) => [formatDecimal(s.cost), s.inclusive])).toEqual([['0.0000976563', false]]);
  });

  it('refuses negative volumes', () => {
    expect(() => rateData({ tariff, zone, rxBytes: -1n, txBytes: 0n, inclusiveUsedBytes: 0n })).toThrow(
      RangeError,
    );
  });

  it('writes costs that add up exactly: the sum of the printed record costs is the bill', () => {
    let total = 0n;
    let printed = 0n;
    for (let k = 1; k <= 1000; k++) {
      const cost = dataCost(billableBytes(BigInt(k * 997), 1024), '0.25');
      total += cost;
      printed += parseDecimal(formatDecimal(cost));
    }
    expect(printed).toBe(total);
    // 1 KB blocks: k*997 bytes -> ceil(k*997/1024) blocks; the costs are multiples of 0.25/1024/2^10 rounded:
    // the smallest record (997 B -> 1 block) costs 0.000244140625 -> 0.0002441406
    expect(formatDecimal(dataCost(billableBytes(997n, 1024), '0.25'))).toBe('0.0002441406');
  });
});

describe('SMS rating', () => {
  it('charges MO at the zone rate and MT at the zone MT rate or the tariff default', () => {
    expect(rateSms(tariff, zone, 'MO')).toEqual({
      rxBytes: 1n,
      txBytes: 0n,
      billableBytes: 0n,
      rate: '0.07',
      cost: 700_000_000n,
      inclusive: false,
    });
    expect(rateSms(tariff, zone, 'MT')).toMatchObject({
      rxBytes: 0n,
      txBytes: 1n,
      rate: '0.01',
      cost: 100_000_000n,
    });
    expect(rateSms(tariff, bundled, 'MT')).toMatchObject({ rate: '0.02', cost: 200_000_000n });
  });
});

describe('ratezone lookup', () => {
  it('finds the selected zone of the visited operator, and none outside the tariff profile', () => {
    const dir = new Directory(smallWorld());
    expect(dir.ratezoneFor(1, 5)?.name).toBe('Zone 3'); // T-Mobile US, everywhere profile
    expect(dir.ratezoneFor(3, 4)?.name).toBe('Zone 2'); // AT&T selected by profile 3
    expect(dir.ratezoneFor(3, 5)).toBeUndefined(); // T-Mobile not selected by profile 3
  });
});
