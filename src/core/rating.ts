/**
 * Rating: the one place where usage becomes money (docs/units.md has a worked example). Pure and exact:
 * volumes are BigInt bytes, money is BigInt in 10^-10 units of the tariff's currency.
 *
 * Data: billable bytes are the record's bytes rounded up to whole blocks of the tariff's
 * blocksize (1 KB); cost = billable MB x the ratezone's rate, rounded half-up to 10
 * decimals per usage record. Inside the endpoint's monthly inclusive volume for the zone
 * data costs nothing; beyond it, the excess rate applies; a record crossing the boundary
 * is split into two slices. SMS: one delivered message costs the zone's MO rate, or its
 * MT rate (else the tariff's default MT rate).
 */
import type { Ratezone, Tariff } from '../reference/types.js';
import { divideCeil, divideHalfUp, parseDecimal } from './decimal.js';
import { BYTES_PER_MB, mbToBytes } from './units.js';

export interface RatedSlice {
  /** Bytes the device received (downlink) and sent (uplink) in this slice. */
  rxBytes: bigint;
  txBytes: bigint;
  /** Data: bytes charged after block rounding. SMS: 0. */
  billableBytes: bigint;
  /** Decimal string of the rate applied: per MB for data, per message for SMS. */
  rate: string;
  /** 10^-10 currency units, rounded half-up for this slice. */
  cost: bigint;
  /** Inside the inclusive volume (cost 0). */
  inclusive: boolean;
}

export interface DataRatingInput {
  tariff: Tariff;
  zone: Ratezone;
  rxBytes: bigint;
  txBytes: bigint;
  /** Billable bytes of this endpoint already counted against the zone's inclusive volume this month. */
  inclusiveUsedBytes: bigint;
}

export interface DataRating {
  slices: RatedSlice[];
  /** The inclusive-volume counter after this record. */
  inclusiveUsedBytes: bigint;
}

/** Cost of `billableBytes` at `rate` per MB, half-up to 10 decimals. */
export function dataCost(billableBytes: bigint, rate: string): bigint {
  return divideHalfUp(billableBytes * parseDecimal(rate), BYTES_PER_MB);
}

/** Bytes rounded up to whole blocks. */
export function billableBytes(bytes: bigint, blocksize: number): bigint {
  const block = BigInt(blocksize);
  return divideCeil(bytes, block) * block;
}

export function rateData(input: DataRatingInput): DataRating {
  const { tariff, zone, rxBytes, txBytes } = input;
  if (rxBytes < 0n || txBytes < 0n) throw new RangeError('volumes must not be negative');
  const total = rxBytes + txBytes;
  const billable = billableBytes(total, tariff.data_blocksize_bytes);
  const allowance = zone.inclusive_volume ? mbToBytes(parseDecimal(zone.inclusive_volume.volume_mb)) : 0n;
  const left = allowance > input.inclusiveUsedBytes ? allowance - input.inclusiveUsedBytes : 0n;
  const paidRate = zone.inclusive_volume ? zone.inclusive_volume.excess_per_mb : zone.rates.data_per_mb;
  if (left === 0n || billable === 0n) {
    return {
      slices: [
        {
          rxBytes,
          txBytes,
          billableBytes: billable,
          rate: paidRate,
          cost: dataCost(billable, paidRate),
          inclusive: false,
        },
      ],
      inclusiveUsedBytes: input.inclusiveUsedBytes,
    };
  }
  if (billable <= left) {
    return {
      slices: [{ rxBytes, txBytes, billableBytes: billable, rate: '0', cost: 0n, inclusive: true }],
      inclusiveUsedBytes: input.inclusiveUsedBytes + billable,
    };
  }
  // The record crosses the end of the allowance: split its bytes (and rx/tx in proportion).
  const insideBytes = left < total ? left : total;
  const insideRx = (rxBytes * insideBytes) / (total === 0n ? 1n : total);
  const inside: RatedSlice = {
    rxBytes: insideRx,
    txBytes: insideBytes - insideRx,
    billableBytes: left,
    rate: '0',
    cost: 0n,
    inclusive: true,
  };
  const excessBillable = billable - left;
  const excess: RatedSlice = {
    rxBytes: rxBytes - insideRx,
    txBytes: txBytes - (insideBytes - insideRx),
    billableBytes: excessBillable,
    rate: paidRate,
    cost: dataCost(excessBillable, paidRate),
    inclusive: false,
  };
  return { slices: [inside, excess], inclusiveUsedBytes: allowance };
}

export function rateSms(tariff: Tariff, zone: Ratezone, direction: 'MO' | 'MT'): RatedSlice {
  const rate = direction === 'MO' ? zone.rates.sms_mo : (zone.rates.sms_mt ?? tariff.default_sms_mt_rate);
  // emnify's network view: an SMS from the device counts as rx, one towards it as tx.
  return {
    rxBytes: direction === 'MO' ? 1n : 0n,
    txBytes: direction === 'MT' ? 1n : 0n,
    billableBytes: 0n,
    rate,
    cost: parseDecimal(rate),
    inclusive: false,
  };
}
