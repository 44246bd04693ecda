import { DataStreamerError, type ErrorKind } from '../util/errors.js';

/**
 * Stable codes of storage failures. Only STORAGE_UNAVAILABLE (and a MIGRATION_FAILED caused
 * by it) is retriable: the same call may succeed later, and repeating an insert with the
 * same token is safe.
 */
export type StorageErrorCode =
  /** ClickHouse could not be reached or answered "not now": refused, reset, timeout, 5xx, overload. */
  | 'STORAGE_UNAVAILABLE'
  /** ClickHouse refused the statement: syntax, type mismatch, unknown table, authentication. */
  | 'STORAGE_REJECTED'
  /** The embedded engine (chdb) could not be loaded on this machine. */
  | 'STORAGE_ENGINE_MISSING'
  /** The store options are wrong, or the embedded engine is bound to another data directory. */
  | 'STORAGE_CONFIG'
  /** The store was used after close(). */
  | 'STORAGE_CLOSED'
  /** A row or an insert token is malformed; nothing of the batch was sent. */
  | 'STORAGE_INVALID_INPUT'
  /** A migration statement failed; the migrations before it are applied. */
  | 'MIGRATION_FAILED'
  /** The migration files themselves are malformed (name, numbering, empty file). */
  | 'MIGRATION_INVALID'
  /** The database records migrations this build does not have, or under other names. */
  | 'MIGRATION_CONFLICT';

export interface StorageErrorDetails {
  cause?: unknown;
  /** ClickHouse's numeric error code, when ClickHouse produced the error. */
  clickhouseCode?: number;
  /** ClickHouse's error name, e.g. SYNTAX_ERROR, TYPE_MISMATCH. */
  clickhouseType?: string;
}

export class StorageError extends DataStreamerError {
  readonly clickhouseCode: number | undefined;
  readonly clickhouseType: string | undefined;

  constructor(
    override readonly code: StorageErrorCode,
    message: string,
    kind: ErrorKind = 'permanent',
    details: StorageErrorDetails = {},
  ) {
    super(code, message, kind, { cause: details.cause });
    this.name = 'StorageError';
    this.clickhouseCode = details.clickhouseCode;
    this.clickhouseType = details.clickhouseType;
  }
}

/** A migration that could not be applied, named by its file. */
export class MigrationError extends StorageError {
  constructor(
    readonly version: number,
    readonly migration: string,
    message: string,
    kind: ErrorKind,
    details: StorageErrorDetails = {},
  ) {
    super('MIGRATION_FAILED', message, kind, details);
    this.name = 'MigrationError';
  }
}

/**
 * ClickHouse errors worth retrying: overload, timeouts, lost connections, replicas or
 * Keeper away, and an insert whose outcome is unknown (retrying it with the same token is
 * exactly what deduplication is for). Every other ClickHouse error is the statement's fault.
 */
const RETRIABLE_CLICKHOUSE_TYPES = new Set([
  'TIMEOUT_EXCEEDED',
  'SOCKET_TIMEOUT',
  'NETWORK_ERROR',
  'TOO_MANY_SIMULTANEOUS_QUERIES',
  'MEMORY_LIMIT_EXCEEDED',
  'CANNOT_ALLOCATE_MEMORY',
  'TOO_MANY_PARTS',
  'TABLE_IS_READ_ONLY',
  'KEEPER_EXCEPTION',
  'ALL_CONNECTION_TRIES_FAILED',
  'ALL_REPLICAS_ARE_STALE',
  'NO_AVAILABLE_REPLICA',
  'CANNOT_SCHEDULE_TASK',
  'QUERY_WAS_CANCELLED',
  'ABORTED',
  'DEADLOCK_AVOIDED',
  'SERVER_OVERLOADED',
  'UNKNOWN_STATUS_OF_INSERT',
]);

/** Node's transport failures: the request never got a ClickHouse answer. */
const RETRIABLE_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

interface ClickHouseLike {
  code: string;
  type: string;
  message: string;
}

/** Both the HTTP client and chdb's adapter raise errors shaped {code: "62", type: "SYNTAX_ERROR"}. */
function asClickHouseError(error: unknown): ClickHouseLike | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, type } = error as Error & { code?: unknown; type?: unknown };
  if (typeof code === 'string' && /^\d+$/.test(code) && typeof type === 'string' && /^[A-Z0-9_]+$/.test(type))
    return { code, type, message: error.message };
  return undefined;
}

/**
 * Any failure of a ClickHouse call as a StorageError, classified. `operation` says what was
 * being done ("insert into usage_records") and starts the message.
 */
export function toStorageError(error: unknown, operation: string): StorageError {
  if (error instanceof StorageError) return error;
  const clickhouse = asClickHouseError(error);
  if (clickhouse) {
    const retriable = RETRIABLE_CLICKHOUSE_TYPES.has(clickhouse.type);
    return new StorageError(
      retriable ? 'STORAGE_UNAVAILABLE' : 'STORAGE_REJECTED',
      `${operation}: ClickHouse error ${clickhouse.code} ${clickhouse.type}: ${clickhouse.message.trim()}`,
      retriable ? 'retriable' : 'permanent',
      { cause: error, clickhouseCode: Number(clickhouse.code), clickhouseType: clickhouse.type },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  const systemCode = (error as { code?: unknown } | null)?.code;
  if (
    (typeof systemCode === 'string' && RETRIABLE_SYSTEM_CODES.has(systemCode)) ||
    /^Timeout error\.?$|socket hang up|aborted a request/i.test(message)
  ) {
    return new StorageError(
      'STORAGE_UNAVAILABLE',
      `${operation}: ClickHouse unreachable: ${typeof systemCode === 'string' ? `${systemCode} ` : ''}${message}`,
      'retriable',
      { cause: error },
    );
  }
  // A programming error on our side (TypeError, RangeError) will not heal by retrying.
  if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError) {
    return new StorageError('STORAGE_REJECTED', `${operation}: ${message}`, 'permanent', { cause: error });
  }
  // What is left is an HTTP error answer without a ClickHouse exception in it: a proxy's or
  // load balancer's 502/503/504 page. The client does not expose the status; such pages come
  // from the gateways in front of ClickHouse, so treat them as "not now".
  return new StorageError(
    'STORAGE_UNAVAILABLE',
    `${operation}: unexpected answer from the ClickHouse endpoint: ${message.slice(0, 500)}`,
    'retriable',
    { cause: error },
  );
}
