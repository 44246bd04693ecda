/**
 * Environment overrides: each variable sets one field of the file's configuration (the
 * variable wins). Values are converted only as far as their type needs; the schema then
 * checks them like the file's, and an error names the variable.
 */

type Kind = 'string' | 'integer' | 'list';

export interface EnvOverride {
  name: string;
  /** Where it goes, e.g. ['kafka', 'brokers']. */
  path: readonly string[];
  kind: Kind;
}

export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { name: 'DATA_STREAMER_MODE', path: ['mode'], kind: 'string' },
  { name: 'DATA_STREAMER_DATA_DIR', path: ['dataDir'], kind: 'string' },
  { name: 'DATA_STREAMER_PARTITIONS', path: ['partitions'], kind: 'integer' },
  { name: 'DATA_STREAMER_REFERENCE', path: ['reference'], kind: 'string' },
  { name: 'DATA_STREAMER_KAFKA_BROKERS', path: ['kafka', 'brokers'], kind: 'list' },
  { name: 'DATA_STREAMER_KAFKA_TOPIC_PREFIX', path: ['kafka', 'topicPrefix'], kind: 'string' },
  { name: 'DATA_STREAMER_KAFKA_REPLICATION_FACTOR', path: ['kafka', 'replicationFactor'], kind: 'integer' },
  { name: 'DATA_STREAMER_CLICKHOUSE_URL', path: ['clickhouse', 'url'], kind: 'string' },
  { name: 'DATA_STREAMER_CLICKHOUSE_USERNAME', path: ['clickhouse', 'username'], kind: 'string' },
  { name: 'DATA_STREAMER_CLICKHOUSE_PASSWORD', path: ['clickhouse', 'password'], kind: 'string' },
  { name: 'DATA_STREAMER_CLICKHOUSE_DATABASE', path: ['clickhouse', 'database'], kind: 'string' },
  { name: 'DATA_STREAMER_API_HOST', path: ['api', 'host'], kind: 'string' },
  { name: 'DATA_STREAMER_API_PORT', path: ['api', 'port'], kind: 'integer' },
];

/** A whole number becomes a number; anything else stays text, for the schema to refuse with the variable's name. */
function convert(text: string, kind: Kind): unknown {
  if (kind === 'integer') return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
  if (kind === 'list')
    return text
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  return text;
}

/**
 * Writes the set variables into `config` (a copy of the file's object) and returns which
 * dotted path each one set. An empty variable counts as unset (compose's `NAME=`).
 */
export function applyEnv(config: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, string> {
  const sources = new Map<string, string>();
  for (const { name, path, kind } of ENV_OVERRIDES) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    let node = config;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      // A section the file has as something else than an object: the variable replaces it.
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = convert(text, kind);
    sources.set(path.join('.'), name);
  }
  return sources;
}
