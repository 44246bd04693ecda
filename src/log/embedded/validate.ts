import { LogError } from '../errors.js';
import { checkRetentionBytes, checkRetentionMs } from './options.js';

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,200}$/;

/** Kafka's rule for topic names, minus the `__` prefix that internal names (cursors) use. */
export function checkTopicName(name: string): void {
  if (
    typeof name !== 'string' ||
    !TOPIC_NAME.test(name) ||
    name === '.' ||
    name === '..' ||
    name.startsWith('__')
  )
    throw new LogError(
      'LOG_INVALID_ARGUMENT',
      `topic name ${JSON.stringify(name)} is not valid: 1 to 200 of A-Z a-z 0-9 . _ -, not . or .., not starting with __`,
    );
}

/** An integer >= min (offsets, counts, partitions); `what` names it in the message. */
export function checkInteger(what: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new LogError(
      'LOG_INVALID_ARGUMENT',
      `${what} must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' on'}, got ${value}`,
    );
}

/** The arguments of Log.topic(), checked alike by every log. */
export function checkTopicRequest(
  name: string,
  partitions: number,
  config: { retentionMs?: number; retentionBytes?: number },
  maxPartitions: number,
): void {
  checkTopicName(name);
  checkInteger(`partitions of topic ${name}`, partitions, 1, maxPartitions);
  checkRetentionMs(config.retentionMs ?? 0);
  checkRetentionBytes(config.retentionBytes ?? 0);
}
