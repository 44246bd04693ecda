/**
 * Users of the management API: a username and password per person, for
 * POST /api/v1/authenticate `{username, password}`, which answers an auth_token and a
 * refresh_token. The refresh token (`dsr_<id>_<random>`, valid REFRESH_TOKEN_DAYS) gets
 * new auth_tokens without the password. Passwords and refresh secrets are stored as salted
 * scrypt hashes only, in DIR/api/users.json. Removing a user ends its refresh tokens and,
 * through the `trusted` check of every request, its JWTs at once; a new password ends its
 * refresh tokens (auth_tokens already issued run out within 240 minutes).
 */
import { randomBytes } from 'node:crypto';
import { UsageError } from '../util/errors.js';
import { SharedJsonFile } from '../util/shared-json-file.js';
import { hashSecret, type SecretHash, secretMatches } from './secret-hash.js';

export const REFRESH_TOKEN_DAYS = 30;
export const MIN_PASSWORD_LENGTH = 12;
const USERNAME = /^[A-Za-z0-9._@+-]{3,128}$/;
const REFRESH = /^dsr_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface User {
  /** `u_<hex>`: what a JWT of this user names as its token id. */
  id: string;
  organisation_id: number;
  username: string;
  created_at: string;
}

type StoredUser = User & SecretHash;
type StoredRefresh = SecretHash & { id: string; user_id: string; expires_at: number };

interface UsersDocument {
  users: StoredUser[];
  refresh_tokens: StoredRefresh[];
}

const withoutHash = ({ salt: _salt, hash: _hash, ...user }: StoredUser): User => user;

export class UserStore {
  private readonly file: SharedJsonFile<UsersDocument>;

  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = new SharedJsonFile(file, () => ({ users: [], refresh_tokens: [] }));
  }

  /** Adds a user; usernames are unique across organisations (they log in without naming one). */
  async add(organisationId: number, username: string, password: string): Promise<User> {
    if (!USERNAME.test(username)) throw new UsageError('username: 3..128 letters, digits or . _ @ + -');
    checkPassword(password);
    if (this.find(username)) throw new UsageError(`username: ${username} is taken`);
    const user: User = {
      id: `u_${randomBytes(8).toString('hex')}`,
      organisation_id: organisationId,
      username,
      created_at: new Date(this.now()).toISOString(),
    };
    const hashed = await hashSecret(password);
    await this.file.change((doc) => {
      if (doc.users.some((u) => u.username === username))
        throw new UsageError(`username: ${username} is taken`);
      doc.users.push({ ...user, ...hashed });
    });
    return user;
  }

  list(organisationId: number): User[] {
    return this.file
      .current()
      .users.filter((u) => u.organisation_id === organisationId)
      .map(withoutHash);
  }

  /** Sets a new password; the user's refresh tokens end. */
  async setPassword(organisationId: number, username: string, password: string): Promise<boolean> {
    checkPassword(password);
    const user = this.find(username);
    if (user?.organisation_id !== organisationId) return false;
    const hashed = await hashSecret(password);
    await this.file.change((doc) => {
      for (const u of doc.users) if (u.id === user.id) Object.assign(u, hashed);
      doc.refresh_tokens = doc.refresh_tokens.filter((r) => r.user_id !== user.id);
    });
    return true;
  }

  async remove(organisationId: number, username: string): Promise<boolean> {
    const user = this.find(username);
    if (user?.organisation_id !== organisationId) return false;
    await this.file.change((doc) => {
      doc.users = doc.users.filter((u) => u.id !== user.id);
      doc.refresh_tokens = doc.refresh_tokens.filter((r) => r.user_id !== user.id);
    });
    return true;
  }

  /** The user a username and password belong to, or undefined. Takes as long for an unknown name. */
  async login(username: string, password: string): Promise<User | undefined> {
    const stored = this.find(username);
    if (!(await secretMatches(password, stored)) || !stored) return undefined;
    return this.isActive(stored.id, stored.organisation_id) ? withoutHash(stored) : undefined;
  }

  /** A new refresh token for the user; the secret is returned here and never again. */
  async issueRefreshToken(user: User): Promise<string> {
    const id = randomBytes(8).toString('hex');
    const random = randomBytes(32).toString('base64url');
    const hashed = await hashSecret(random);
    const now = this.now();
    await this.file.change((doc) => {
      // Expired ones go whenever a new one is written: the file does not grow for ever.
      doc.refresh_tokens = doc.refresh_tokens.filter((r) => r.expires_at > now);
      doc.refresh_tokens.push({
        id,
        user_id: user.id,
        expires_at: now + REFRESH_TOKEN_DAYS * 86_400_000,
        ...hashed,
      });
    });
    return `dsr_${id}_${random}`;
  }

  /** The user of a valid, unexpired refresh token, or undefined. */
  async refresh(secret: string): Promise<User | undefined> {
    const match = REFRESH.exec(secret);
    const stored = match ? this.file.current().refresh_tokens.find((r) => r.id === match[1]) : undefined;
    if (!(await secretMatches(match?.[2] ?? secret, stored)) || !stored) return undefined;
    if (stored.expires_at <= this.now()) return undefined;
    const user = this.file.current().users.find((u) => u.id === stored.user_id);
    return user && this.file.current().refresh_tokens.some((r) => r.id === stored.id)
      ? withoutHash(user)
      : undefined;
  }

  /** Checked on every request: a removed user's JWTs stop working at once. */
  isActive(id: string, organisationId: number): boolean {
    return this.file.current().users.some((u) => u.id === id && u.organisation_id === organisationId);
  }

  private find(username: string): StoredUser | undefined {
    return this.file.current().users.find((u) => u.username === username);
  }
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > 512)
    throw new UsageError(`password: ${MIN_PASSWORD_LENGTH}..512 characters`);
}
