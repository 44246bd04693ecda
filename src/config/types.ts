/** The configuration of a Data Streamer process, defaults applied (src/config/load.ts). */
export interface DataStreamerConfig {
  mode: 'embedded' | 'distributed';
  /**
   * Local state: snapshots and store intents (distributed: a volume shared by the replicas,
   * or per replica — see docs/configuration.md), plus the embedded log and chDB in embedded
   * mode. Default ./data/engine. Absolute once loaded.
   */
  dataDir: string;
  /** Partitions of the raw topic (and the per-partition output topics). Default 4 embedded, 6 distributed; 1..1024. */
  partitions: number;
  /** Reference data file (YAML/JSON, src/reference/loader.ts); required in distributed mode: every replica must load the same. Absolute once loaded. */
  reference?: string;
  kafka?: {
    brokers: string[];
    clientId: string;
    topicPrefix: string;
    replicationFactor: number;
    consumerGroup: string;
    ssl?: boolean;
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  };
  clickhouse?: { url: string; username?: string; password?: string; database: string };
  api: { host: string; port: number };
}

/** Every default in one place; schemas/json/config.schema.json repeats them as annotations (a test keeps them equal). */
export const DEFAULTS = {
  mode: 'embedded',
  dataDir: './data/engine',
  partitions: { embedded: 4, distributed: 6 },
  kafka: {
    clientId: 'data-streamer',
    topicPrefix: 'ds.',
    replicationFactor: 1,
    consumerGroup: 'data-streamer-engine',
    ssl: false,
  },
  clickhouse: { database: 'data_streamer' },
  api: { host: '127.0.0.1', port: 8080 },
} as const;
