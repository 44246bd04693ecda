/**
 * Application tokens: long-lived secrets an organisation exchanges for short-lived JWTs
 * (POST /api/v1/authenticate). Only a salted scrypt hash of each secret is stored, in one
 * JSON file replaced atomically; the secret is shown once, when it is created.
 *
 * A secret reads `ds_<id>_<random>`: the id finds the stored hash without trying them
 * all, the random part (32 bytes) is what is checked.
 */
import { randomBytes } from 'node:crypto';
import { SharedJsonFile } from '../util/shared-json-file.js';
import { hashSecret, type SecretHash, secretMatches } from './secret-hash.js';

export interface ApplicationToken {
  id: string;
  organisation_id: number;
  description: string;
  created_at: string;
}

type StoredToken = ApplicationToken & SecretHash;

const SECRET = /^ds_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const withoutHash = ({ salt: _salt, hash: _hash, ...token }: StoredToken): ApplicationToken => token;

export class TokenStore {
  private readonly file: SharedJsonFile<{ tokens: StoredToken[] }>;

  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = new SharedJsonFile(file, () => ({ tokens: [] }));
  }

  /** Creates a token; the secret is returned here and never again. */
  async create(
    organisationId: number,
    description = '',
  ): Promise<{ token: ApplicationToken; secret: string }> {
    const id = randomBytes(8).toString('hex');
    const random = randomBytes(32).toString('base64url');
    const token: ApplicationToken = {
      id,
      organisation_id: organisationId,
      description,
      created_at: new Date(this.now()).toISOString(),
    };
    const hashed = await hashSecret(random);
    await this.file.change((doc) => doc.tokens.push({ ...token, ...hashed }));
    return { token, secret: `ds_${id}_${random}` };
  }

  list(organisationId: number): ApplicationToken[] {
    return this.file
      .current()
      .tokens.filter((t) => t.organisation_id === organisationId)
      .map(withoutHash);
  }

  /** False when the organisation has no such token (another organisation's is "not found" too). */
  async revoke(organisationId: number, id: string): Promise<boolean> {
    if (!this.isActive(id, organisationId)) return false;
    await this.file.change((doc) => {
      doc.tokens = doc.tokens.filter((t) => t.id !== id);
    });
    return true;
  }

  /** The token a secret belongs to, or undefined: unknown, revoked or wrong. */
  async verify(secret: string): Promise<ApplicationToken | undefined> {
    const match = SECRET.exec(secret);
    if (!match) return undefined;
    const id = match[1] as string;
    const stored = this.file.current().tokens.find((t) => t.id === id);
    if (!(await secretMatches(match[2] as string, stored)) || !stored) return undefined;
    // Revoked while scrypt ran: no longer valid.
    return this.isActive(id, stored.organisation_id) ? withoutHash(stored) : undefined;
  }

  /** Checked on every request, so a revoked token's JWTs stop working at once. */
  isActive(id: string, organisationId: number): boolean {
    return this.file.current().tokens.some((t) => t.id === id && t.organisation_id === organisationId);
  }
}
