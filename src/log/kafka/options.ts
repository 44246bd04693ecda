import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { LogError } from '../errors.js';

export type KafkaLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

export interface KafkaLogOptions {
  /** Bootstrap servers, `host:port` each. */
  brokers: readonly string[];
  /** Default 'data-streamer'. Shows in the broker's logs and quotas. */
  clientId?: string;
  /**
   * Replication factor of the topics this log creates. Default 1, which suits a single
   * test broker only: production wants 3 (with the brokers' min.insync.replicas=2), so that
   * an acknowledged append survives the loss of a broker.
   */
  replicationFactor?: number;
  /** retention.ms of the topics this log creates, unless TopicConfig says otherwise. Default 7 days. */
  retentionMs?: number;
  /** retention.bytes (per partition) of the topics this log creates. Default Infinity (-1, no limit). */
  retentionBytes?: number;
  /** Byte budget of a read that gives none. Default 1 MiB. */
  maxReadBytes?: number;
  /**
   * An append is sent as Kafka record batches of at most this many bytes (as the embedded
   * log counts them: 34 + key + value per record), so that a reader never has to fetch a
   * huge batch to get one record. Default 1 MiB, which also fits the broker's default
   * max.message.bytes on topics this log did not create.
   */
  maxBatchBytes?: number;
  /** Default 3000. */
  connectionTimeoutMs?: number;
  /** Default 30000. */
  requestTimeoutMs?: number;
  /**
   * Retries of a request that failed in a retriable way (connection lost, leader moved,
   * coordinator loading), with exponential backoff from 100 ms. Default 5.
   */
  retries?: number;
  /** kafkajs's own log (to the console). Failures reach callers as LogErrors anyway. Default 'warn'. */
  logLevel?: KafkaLogLevel;
  /** TLS: true for the system's CAs, or Node's TLS options. */
  ssl?: boolean | ConnectionOptions;
  sasl?: SASLOptions;
}

export type ResolvedKafkaOptions = Required<Omit<KafkaLogOptions, 'ssl' | 'sasl'>> &
  Pick<KafkaLogOptions, 'ssl' | 'sasl'>;

const MiB = 2 ** 20;
const BROKER = /^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/;
const LEVELS: readonly KafkaLogLevel[] = ['nothing', 'error', 'warn', 'info', 'debug'];

const invalid = (message: string) => new LogError('LOG_INVALID_ARGUMENT', `Kafka log: ${message}`);

function integer(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw invalid(`option ${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** A whole number of ms or bytes, or Infinity for "no limit" (Kafka's -1). */
function limit(name: string, value: number): number {
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0)
    throw invalid(`option ${name} must be a number >= 0 or Infinity, got ${value}`);
  return value;
}

/** Checks every option before anything connects; each message names the option. */
export function resolveKafkaOptions(o: KafkaLogOptions): ResolvedKafkaOptions {
  if (typeof o !== 'object' || o === null) throw invalid('options must be an object');
  if (!Array.isArray(o.brokers) || o.brokers.length === 0)
    throw invalid('option brokers must list at least one broker as host:port');
  for (const broker of o.brokers)
    if (typeof broker !== 'string' || !BROKER.test(broker))
      throw invalid(`option brokers: ${JSON.stringify(broker)} is not host:port`);
  const clientId = o.clientId ?? 'data-streamer';
  if (typeof clientId !== 'string' || clientId === '')
    throw invalid('option clientId must be a non-empty string');
  const logLevel = o.logLevel ?? 'warn';
  if (!LEVELS.includes(logLevel))
    throw invalid(`option logLevel must be one of ${LEVELS.join(', ')}, got ${logLevel}`);
  return {
    brokers: [...o.brokers],
    clientId,
    replicationFactor: integer('replicationFactor', o.replicationFactor ?? 1, 1),
    retentionMs: limit('retentionMs', o.retentionMs ?? 7 * 24 * 3_600_000),
    retentionBytes: limit('retentionBytes', o.retentionBytes ?? Number.POSITIVE_INFINITY),
    maxReadBytes: integer('maxReadBytes', o.maxReadBytes ?? MiB, 1),
    maxBatchBytes: integer('maxBatchBytes', o.maxBatchBytes ?? MiB, 1024),
    connectionTimeoutMs: integer('connectionTimeoutMs', o.connectionTimeoutMs ?? 3000, 1),
    requestTimeoutMs: integer('requestTimeoutMs', o.requestTimeoutMs ?? 30_000, 1),
    retries: integer('retries', o.retries ?? 5, 0),
    logLevel,
    ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
    ...(o.sasl !== undefined ? { sasl: o.sasl } : {}),
  };
}

/** Kafka's value for retention.ms / retention.bytes: whole numbers, -1 for no limit. */
export const kafkaLimit = (value: number): string =>
  value === Number.POSITIVE_INFINITY ? '-1' : String(Math.ceil(value));
