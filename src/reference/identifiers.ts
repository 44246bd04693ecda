/** Number-derived identifiers of SIMs and devices (ICCID, IMEI, IP, zero-padded digits). */

/** Luhn check digit of a digit string (ICCID and IMEI use it). */
export function luhnDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/** `base` (a digit string) plus `offset`, keeping the width. Exact below 2^53. */
export function addDigits(base: string, offset: number): string {
  if (base.length <= 15) return String(Number(base) + offset).padStart(base.length, '0');
  // Longer than a safe integer: add to the last 15 digits (a fleet never wraps them).
  const head = base.slice(0, base.length - 15);
  return head + String(Number(base.slice(-15)) + offset).padStart(15, '0');
}

export function iccidAt(firstWithoutCheck: string, offset: number): string {
  const body = addDigits(firstWithoutCheck, offset);
  return body + luhnDigit(body);
}

export function imeiAt(tac: string, serial: number): string {
  const body = tac + String(serial % 1_000_000).padStart(6, '0');
  return body + luhnDigit(body);
}

export function ipv4ToNumber(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function numberToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
