/**
 * Application tokens: long-lived secrets an organisation exchanges for short-lived JWTs
 * (POST /api/v1/authenticate). Only a salted scrypt hash of each secret is stored, in one
 * JSON file replaced atomically; the secret is shown once, when it is created.
 *
 * A secret reads `ds_<id>_<random>`: the id finds the stored hash without trying them
 * all, the random part (32 bytes) is what is checked.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../log/embedded/files.js';

const scryptAsync = promisify(scrypt) as (secret: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export interface ApplicationToken {
  id: string;
  organisation_id: number;
  description: string;
  created_at: string;
}

interface StoredToken extends ApplicationToken {
  salt: string;
  hash: string;
}

const SECRET = /^ds_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const KEY_LENGTH = 32;

export class TokenStore {
  private tokens = new Map<string, StoredToken>();
  private loadedMtime = -1;
  /** Writes one after the other: each one replaces the whole file. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.reload();
  }

  /** Creates a token; the secret is returned here and never again. */
  async create(
    organisationId: number,
    description = '',
  ): Promise<{ token: ApplicationToken; secret: string }> {
    const id = randomBytes(8).toString('hex');
    const random = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const hash = await scryptAsync(random, salt, KEY_LENGTH);
    const token: ApplicationToken = {
      id,
      organisation_id: organisationId,
      description,
      created_at: new Date(this.now()).toISOString(),
    };
    await this.change((tokens) =>
      tokens.set(id, { ...token, salt: salt.toString('base64'), hash: hash.toString('base64') }),
    );
    return { token, secret: `ds_${id}_${random}` };
  }

  list(organisationId: number): ApplicationToken[] {
    this.reload();
    return [...this.tokens.values()]
      .filter((t) => t.organisation_id === organisationId)
      .map(({ salt: _salt, hash: _hash, ...token }) => token);
  }

  /** False when the organisation has no such token (another organisation's is "not found" too). */
  async revoke(organisationId: number, id: string): Promise<boolean> {
    this.reload();
    if (this.tokens.get(id)?.organisation_id !== organisationId) return false;
    await this.change((tokens) => tokens.delete(id));
    return true;
  }

  /** The token a secret belongs to, or undefined: unknown, revoked or wrong. */
  async verify(secret: string): Promise<ApplicationToken | undefined> {
    const match = SECRET.exec(secret);
    if (!match) return undefined;
    this.reload();
    const stored = this.tokens.get(match[1] as string);
    if (!stored) return undefined;
    const expected = Buffer.from(stored.hash, 'base64');
    const actual = await scryptAsync(match[2] as string, Buffer.from(stored.salt, 'base64'), KEY_LENGTH);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
    // Revoked while scrypt ran: no longer valid.
    if (!this.tokens.has(stored.id)) return undefined;
    const { salt: _salt, hash: _hash, ...token } = stored;
    return token;
  }

  /** Checked on every request, so a revoked token's JWTs stop working at once. */
  isActive(id: string, organisationId: number): boolean {
    this.reload();
    return this.tokens.get(id)?.organisation_id === organisationId;
  }

  /**
   * Picks up changes another process made (the `tokens` CLI beside a running server):
   * a stat per call, a read only when the file changed.
   */
  private reload(): void {
    if (!existsSync(this.file)) {
      this.tokens = new Map();
      this.loadedMtime = -1;
      return;
    }
    const mtime = statSync(this.file).mtimeMs;
    if (mtime === this.loadedMtime) return;
    const stored = JSON.parse(readFileSync(this.file, 'utf8')) as { tokens: StoredToken[] };
    this.tokens = new Map(stored.tokens.map((t) => [t.id, t]));
    this.loadedMtime = mtime;
  }

  private change(apply: (tokens: Map<string, StoredToken>) => void): Promise<void> {
    const next = this.writing.then(async () => {
      this.reload();
      apply(this.tokens);
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, `${JSON.stringify({ tokens: [...this.tokens.values()] }, null, 2)}\n`);
      // Only hashes are inside, but nobody else has a reason to read them.
      chmodSync(this.file, 0o600);
      this.loadedMtime = statSync(this.file).mtimeMs;
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}
