/** What the configuration means for the parts it configures: the Kafka log and the store. */
import { join } from 'node:path';
import type { KafkaLogOptions } from '../log/kafka/options.js';
import type { StoreOptions } from '../storage/open.js';
import { ConfigError } from './errors.js';
import type { DataStreamerConfig } from './types.js';

/** The Kafka log's options (src/log/kafka/options.ts); a ConfigError in embedded mode, which has no Kafka. */
export function kafkaLogOptions(config: DataStreamerConfig): KafkaLogOptions {
  const kafka = config.kafka;
  if (config.mode !== 'distributed' || !kafka)
    throw new ConfigError('CONFIG_INVALID', 'the configuration', [
      `kafka: Kafka is used in mode distributed only, and this configuration is mode ${config.mode}`,
    ]);
  return {
    brokers: [...kafka.brokers],
    clientId: kafka.clientId,
    replicationFactor: kafka.replicationFactor,
    ...(kafka.ssl ? { ssl: true } : {}),
    ...(kafka.sasl ? { sasl: { ...kafka.sasl } } : {}),
  };
}

/**
 * Where the engine stores its outputs: chDB under <dataDir>/clickhouse (where the embedded
 * engine keeps it) or the ClickHouse server of the configuration.
 */
export function storeOptions(config: DataStreamerConfig): StoreOptions {
  if (config.mode === 'embedded') return { kind: 'embedded', dataDir: join(config.dataDir, 'clickhouse') };
  const clickhouse = config.clickhouse;
  if (!clickhouse)
    throw new ConfigError('CONFIG_INVALID', 'the configuration', [
      'clickhouse: is required in mode distributed (clickhouse.url at least)',
    ]);
  return {
    kind: 'server',
    url: clickhouse.url,
    database: clickhouse.database,
    ...(clickhouse.username !== undefined ? { username: clickhouse.username } : {}),
    ...(clickhouse.password !== undefined ? { password: clickhouse.password } : {}),
  };
}
