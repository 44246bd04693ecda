/**
 * loadConfig: the config file (YAML or JSON), then the environment overrides, checked
 * against schemas/json/config.schema.json and the cross-field rules, then the defaults.
 * Pure but for reading the file (and the schema once); nothing connects here.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { describeSchemaError, formatPath, schemaValidator, valueAt } from '../util/schema-errors.js';
import { applyEnv } from './env.js';
import { ConfigError } from './errors.js';
import { type DataStreamerConfig, DEFAULTS } from './types.js';

type Raw = Record<string, unknown>;

/** Fields whose values are never put in a message. */
const SECRET = new Set(['clickhouse.password', 'kafka.sasl.password']);

const schemaErrors = schemaValidator('config.schema.json');

/** A URL with its user and password masked: URLs may carry credentials. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1***@');
}

/**
 * Reads and checks the configuration: `file` (none: defaults and environment only), then
 * every DATA_STREAMER_* variable of `env` over it. Throws a ConfigError listing every
 * problem: CONFIG_UNREADABLE for a file that cannot be read or parsed, CONFIG_INVALID for
 * the rest. Relative paths in the file are relative to the file's folder; those from the
 * environment or the defaults to the current directory.
 */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): DataStreamerConfig {
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const raw = structuredClone(fromFile) as Raw;
  const fromEnv =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? applyEnv(raw, env) : new Map();
  const source = file ?? 'the configuration';
  const where = (path: string): string => {
    for (const [set, name] of fromEnv)
      if (path === set || path.startsWith(`${set}.`) || path.startsWith(`${set}[`))
        return `${path} (from ${name})`;
    return path;
  };

  const problems = schemaErrors(raw).map((error) => describe(error, raw, where));
  if (isObject(raw)) problems.push(...crossFieldProblems(raw, where));
  if (problems.length > 0) throw new ConfigError('CONFIG_INVALID', source, [...new Set(problems)]);

  const base = (path: string) =>
    file !== undefined && !fromEnv.has(path) ? dirname(resolve(file)) : process.cwd();
  return withDefaults(raw, base);
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError('CONFIG_UNREADABLE', file, [`cannot read the config file (${code})`], {
      cause: error,
    });
  }
  const kind = /\.json$/i.test(file) ? 'JSON' : 'YAML';
  try {
    // YAML 1.2 is a superset of JSON: one parser for both, whose errors give a line and
    // column without quoting the file (which may hold a password).
    return parseYaml(text) ?? {};
  } catch (error) {
    const where =
      error instanceof YAMLParseError && error.linePos
        ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}`
        : '';
    const what = (error as Error).message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? '';
    throw new ConfigError('CONFIG_UNREADABLE', file, [`cannot be parsed as ${kind}${where}: ${what}`], {
      cause: error,
    });
  }
}

function describe(error: ErrorObject, data: unknown, where: (path: string) => string): string {
  const path = formatPath(error.instancePath);
  const shown = where(path);
  const value = valueAt(data, error.instancePath);
  if (error.keyword === 'pattern') {
    if (/^kafka\.brokers\[\d+\]$/.test(path))
      return `${shown}: must be host:port, got ${JSON.stringify(value)}`;
    if (path === 'clickhouse.url')
      return `${shown}: must be an http:// or https:// URL, got ${JSON.stringify(redactUrl(String(value)))}`;
    if (path === 'kafka.topicPrefix')
      return `${shown}: must be at most 100 of A-Z a-z 0-9 . _ - (Kafka topic names), got ${JSON.stringify(value)}`;
    if (path === 'clickhouse.database')
      return `${shown}: must be a plain database name ([A-Za-z_][A-Za-z0-9_]*), got ${JSON.stringify(value)}`;
  }
  if (error.keyword === 'minItems' && path === 'kafka.brokers')
    return `${shown}: must list at least one broker as host:port`;
  let message = describeSchemaError(error, data);
  // Values of the wrong type or size are shown: from the environment they are easy to miss.
  if (['type', 'minimum', 'maximum', 'minLength', 'maxLength'].includes(error.keyword))
    message += `, got ${JSON.stringify(value)}`;
  // describeSchemaError names the path first; put the variable's name beside it.
  const text = message.startsWith(`${path}:`) ? `${shown}${message.slice(path.length)}` : message;
  return SECRET.has(path) ? text.replace(/, got .*$/s, '') : text;
}

function crossFieldProblems(raw: Raw, where: (path: string) => string): string[] {
  const problems: string[] = [];
  const mode = (raw.mode as string | undefined) ?? DEFAULTS.mode;
  // The schema's errors are reported beside these: look only at values of the right type.
  const kafka = isObject(raw.kafka) ? raw.kafka : undefined;
  const clickhouse = isObject(raw.clickhouse) ? raw.clickhouse : undefined;
  if (mode === 'distributed') {
    if (raw.kafka === undefined)
      problems.push('kafka: is required in mode distributed (kafka.brokers at least)');
    if (raw.clickhouse === undefined)
      problems.push('clickhouse: is required in mode distributed (clickhouse.url at least)');
    if (raw.reference === undefined)
      problems.push(
        'reference: is required in mode distributed (the reference data file every replica loads)',
      );
  } else if (mode === 'embedded') {
    // Embedded mode has no use for them: say so rather than run embedded while the
    // operator believes the engine talks to Kafka and a ClickHouse server.
    const modeFrom = where('mode');
    for (const [name, section] of [
      ['kafka', kafka],
      ['clickhouse', clickhouse],
    ] as const)
      if (section) {
        const first = Object.keys(section)[0];
        const path = where(first ? `${name}.${first}` : name);
        problems.push(
          `${path}: ${name} is only used in mode distributed, but ${modeFrom === 'mode' ? 'mode' : modeFrom} is ${mode}${raw.mode === undefined ? ' (the default)' : ''}; remove it or set mode: distributed`,
        );
      }
  }
  const brokers = Array.isArray(kafka?.brokers) ? (kafka.brokers as unknown[]) : [];
  for (const [i, broker] of brokers.entries()) {
    if (typeof broker !== 'string' || !/:\d+$/.test(broker)) continue;
    const port = Number(broker.slice(broker.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535)
      problems.push(
        `${where(`kafka.brokers[${i}]`)}: the port must be from 1 to 65535, got ${JSON.stringify(broker)}`,
      );
  }
  if (typeof kafka?.topicPrefix === 'string' && kafka.topicPrefix.startsWith('__'))
    problems.push(`${where('kafka.topicPrefix')}: must not start with __ (Kafka's internal topics do)`);
  if (typeof clickhouse?.url === 'string') {
    let url: URL | undefined;
    try {
      url = new URL(clickhouse.url);
    } catch {
      problems.push(`${where('clickhouse.url')}: ${JSON.stringify(redactUrl(clickhouse.url))} is not a URL`);
    }
    if (url && (url.username || url.password))
      problems.push(
        `${where('clickhouse.url')}: put the credentials in clickhouse.username and clickhouse.password, not in the URL`,
      );
  }
  return problems;
}

function isObject(value: unknown): value is Raw {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function withDefaults(raw: Raw, base: (path: string) => string): DataStreamerConfig {
  const mode = (raw.mode as DataStreamerConfig['mode'] | undefined) ?? DEFAULTS.mode;
  const kafka = raw.kafka as Partial<NonNullable<DataStreamerConfig['kafka']>> | undefined;
  const clickhouse = raw.clickhouse as Partial<NonNullable<DataStreamerConfig['clickhouse']>> | undefined;
  const api = (raw.api ?? {}) as Partial<DataStreamerConfig['api']>;
  return {
    mode,
    dataDir: resolve(
      raw.dataDir === undefined ? process.cwd() : base('dataDir'),
      (raw.dataDir as string | undefined) ?? DEFAULTS.dataDir,
    ),
    partitions: (raw.partitions as number | undefined) ?? DEFAULTS.partitions[mode],
    ...(raw.reference !== undefined
      ? { reference: resolve(base('reference'), raw.reference as string) }
      : {}),
    ...(kafka
      ? {
          kafka: {
            brokers: [...(kafka.brokers ?? [])],
            clientId: kafka.clientId ?? DEFAULTS.kafka.clientId,
            topicPrefix: kafka.topicPrefix ?? DEFAULTS.kafka.topicPrefix,
            replicationFactor: kafka.replicationFactor ?? DEFAULTS.kafka.replicationFactor,
            consumerGroup: kafka.consumerGroup ?? DEFAULTS.kafka.consumerGroup,
            ssl: kafka.ssl ?? DEFAULTS.kafka.ssl,
            ...(kafka.sasl ? { sasl: { ...kafka.sasl } } : {}),
          },
        }
      : {}),
    ...(clickhouse
      ? {
          clickhouse: {
            url: clickhouse.url as string,
            ...(clickhouse.username !== undefined ? { username: clickhouse.username } : {}),
            ...(clickhouse.password !== undefined ? { password: clickhouse.password } : {}),
            database: clickhouse.database ?? DEFAULTS.clickhouse.database,
          },
        }
      : {}),
    api: { host: api.host ?? DEFAULTS.api.host, port: api.port ?? DEFAULTS.api.port },
  };
}
