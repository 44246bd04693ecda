/** Salted scrypt hashes of secrets (token secrets, passwords): only these are stored. */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (secret: string, salt: Buffer, keylen: number) => Promise<Buffer>;
const KEY_LENGTH = 32;

export interface SecretHash {
  salt: string;
  hash: string;
}

export async function hashSecret(secret: string): Promise<SecretHash> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(secret, salt, KEY_LENGTH);
  return { salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** Compares in constant time. Given no stored hash, still spends the same work, so timing does not tell. */
export async function secretMatches(secret: string, stored: SecretHash | undefined): Promise<boolean> {
  const salt = stored ? Buffer.from(stored.salt, 'base64') : Buffer.alloc(16);
  const actual = await scryptAsync(secret, salt, KEY_LENGTH);
  if (!stored) return false;
  const expected = Buffer.from(stored.hash, 'base64');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
