/**
 * Exact decimal arithmetic for money and volumes: a decimal is a BigInt count of
 * 10^-SCALE units. Parsing and formatting never go through floats. They run several times
 * per usage record, so they work on the digits directly rather than with regular
 * expressions and intermediate strings.
 */

/** Ten decimal places: the precision of a usage record's cost (emnify: Decimal(14,10)). */
export const SCALE = 10;
const ONE = 10n ** BigInt(SCALE);
/** 10^n for n = 0..SCALE. */
const POWERS = Array.from({ length: SCALE + 1 }, (_, n) => 10n ** BigInt(n));
const ZEROS = '0'.repeat(SCALE);

const MINUS = 0x2d;
const POINT = 0x2e;

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** "0.25" -> 2500000000n. Throws on anything that is not a plain decimal with at most 10 places. */
export function parseDecimal(value: string): bigint {
  const text = typeof value === 'string' ? value : String(value);
  const negative = text.charCodeAt(0) === MINUS;
  const start = negative ? 1 : 0;
  let point = -1;
  let i = start;
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (isDigit(code)) continue;
    if (code !== POINT || point !== -1) break;
    point = i;
  }
  const wholeDigits = (point === -1 ? i : point) - start;
  const places = point === -1 ? 0 : i - point - 1;
  if (i !== text.length || wholeDigits === 0 || (point !== -1 && places === 0) || places > SCALE)
    throw new RangeError(`"${text}" is not a decimal with at most ${SCALE} places`);
  const digits =
    point === -1
      ? `${text.slice(start)}${ZEROS}`
      : `${text.slice(start, point)}${text.slice(point + 1)}${ZEROS.slice(places)}`;
  const units = BigInt(digits);
  return negative ? -units : units;
}

/** The digits of |units| with the decimal point `places` from the right ("-0.05" for -5n, 2). */
function withPoint(units: bigint, places: number): string {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString();
  if (places > 0) {
    if (digits.length <= places) digits = `${'0'.repeat(places - digits.length + 1)}${digits}`;
    const cut = digits.length - places;
    digits = `${digits.slice(0, cut)}.${digits.slice(cut)}`;
  }
  return negative ? `-${digits}` : digits;
}

/** units rounded half-up to `places` (0..SCALE) decimals, counted in 10^-places. */
function roundTo(units: bigint, places: number): bigint {
  return places < SCALE ? divideHalfUp(units, POWERS[SCALE - places] as bigint) : units;
}

/** 2500000000n -> "0.25": at most `places` decimals, trailing zeros dropped. */
export function formatDecimal(units: bigint, places = SCALE): string {
  if (!Number.isInteger(places) || places < 0 || places > SCALE) return formatDecimalSlow(units, places);
  const text = withPoint(roundTo(units, places), places);
  if (places === 0) return text;
  let end = text.length;
  while (text.charCodeAt(end - 1) === 0x30) end--;
  if (text.charCodeAt(end - 1) === POINT) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** Like formatDecimal, but always exactly `places` decimals ("0.219727"). */
export function formatFixed(units: bigint, places: number): string {
  if (!Number.isInteger(places) || places < 0 || places > SCALE) {
    const text = formatDecimalSlow(units, places);
    const [whole, fraction = ''] = text.split('.');
    return places === 0 ? (whole as string) : `${whole}.${fraction.padEnd(places, '0')}`;
  }
  return withPoint(roundTo(units, places), places);
}

/** formatDecimal for `places` outside 0..SCALE, as it always was. */
function formatDecimalSlow(units: bigint, places: number): string {
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
