/**
 * Exact decimal arithmetic for money and volumes: a decimal is a BigInt count of
 * 10^-SCALE units. Parsing and formatting never go through floats.
 */

/** Ten decimal places: the precision of a usage record's cost (emnify: Decimal(14,10)). */
export const SCALE = 10;
const ONE = 10n ** BigInt(SCALE);

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** "0.25" -> 2500000000n. Throws on anything that is not a plain decimal with at most 10 places. */
export function parseDecimal(text: string): bigint {
  const match = DECIMAL.exec(text);
  const fraction = match?.[3] ?? '';
  if (!match || fraction.length > SCALE)
    throw new RangeError(`"${text}" is not a decimal with at most ${SCALE} places`);
  const units = BigInt(match[2] as string) * ONE + BigInt(fraction.padEnd(SCALE, '0') || '0');
  return match[1] ? -units : units;
}

/** 2500000000n -> "0.25": at most `places` decimals, trailing zeros dropped. */
export function formatDecimal(units: bigint, places = SCALE): string {
  const rounded =
    places < SCALE
      ? divideHalfUp(units, 10n ** BigInt(SCALE - places)) * 10n ** BigInt(SCALE - places)
      : units;
  const negative = rounded < 0n;
  const abs = negative ? -rounded : rounded;
  const whole = abs / ONE;
  const fraction = (abs % ONE).toString().padStart(SCALE, '0').slice(0, places).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** Like formatDecimal, but always exactly `places` decimals ("0.219727"). */
export function formatFixed(units: bigint, places: number): string {
  const text = formatDecimal(units, places);
  const [whole, fraction = ''] = text.split('.');
  return places === 0 ? (whole as string) : `${whole}.${fraction.padEnd(places, '0')}`;
}

/** numerator / denominator rounded half-up (away from zero at exactly one half). */
export function divideHalfUp(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const negative = numerator < 0n;
  const abs = negative ? -numerator : numerator;
  const quotient = (abs * 2n + denominator) / (denominator * 2n);
  return negative ? -quotient : quotient;
}

/** numerator / denominator rounded up, for non-negative values. */
export function divideCeil(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

export const DECIMAL_ONE = ONE;
