import { createHash } from 'node:crypto';

/** Namespace of our name-based session UUIDs (a fixed random UUID, RFC 9562 §5.5). */
const NAMESPACE = Buffer.from('6f1d3c2a9b8e4d7f a1c2e3f405162738'.replace(/ /g, ''), 'hex');

/**
 * The session_id of a PDP context: a version-5 UUID of the gateway address and charging
 * id, so every Create/Delete PDP event and usage record of a session carries the same id,
 * in every replay.
 */
export function sessionId(gatewayAddress: string, chargingId: number): string {
  const hash = createHash('sha1').update(NAMESPACE).update(`${gatewayAddress}/${chargingId}`).digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
