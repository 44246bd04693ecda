import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Data-Streamer-Signature';

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The timestamp is signed with the
 * body so that a receiver can reject replays of an old request (see README).
 */
export function signatureHeaderValue(secret: string, unixSeconds: number, body: Buffer): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}
