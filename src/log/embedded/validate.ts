import { LogError } from '../errors.js';

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
