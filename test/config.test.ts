/**
 * The configuration loader: defaults, file and environment precedence, every error naming
 * its path (and variable), secrets kept out of messages, and what the configuration maps to.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULTS,
  ENV_OVERRIDES,
  kafkaLogOptions,
  loadConfig,
  storeOptions,
} from '../src/config/index.js';
import { resolveKafkaOptions } from '../src/log/kafka/options.js';
import { DataStreamerError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function file(text: string, ext = 'yaml'): string {
  const path = join(dir, `config-${++files}.${ext}`);
  writeFileSync(path, text);
  return path;
}

const DISTRIBUTED = `
mode: distributed
reference: ref/reference.json
kafka:
  brokers: [kafka-1:9092, kafka-2:9092]
clickhouse:
  url: http://clickhouse:8123
`;

function failure(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(DataStreamerError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('embedded with nothing given', () => {
    expect(loadConfig(undefined, {})).toEqual({
      mode: 'embedded',
      dataDir: resolve('data/engine'),
      partitions: 4,
      api: { host: '127.0.0.1', port: 8080 },
    });
  });

  it('an empty file is all defaults', () => {
    expect(loadConfig(file(''), {})).toEqual(loadConfig(undefined, {}));
  });

  it('distributed fills kafka and clickhouse', () => {
    const config = loadConfig(file(DISTRIBUTED), {});
    expect(config.partitions).toBe(6);
    expect(config.kafka).toEqual({
      brokers: ['kafka-1:9092', 'kafka-2:9092'],
      clientId: 'data-streamer',
      topicPrefix: 'ds.',
      replicationFactor: 1,
      consumerGroup: 'data-streamer-engine',
      ssl: false,
    });
    expect(config.clickhouse).toEqual({ url: 'http://clickhouse:8123', database: 'data_streamer' });
  });

  it('the schema documents the same defaults as the code', () => {
    const schema = JSON.parse(
      readFileSync(join(packageRoot(), 'schemas', 'json', 'config.schema.json'), 'utf8'),
    );
    const p = schema.properties;
    expect(p.mode.default).toBe(DEFAULTS.mode);
    expect(p.dataDir.default).toBe(DEFAULTS.dataDir);
    for (const [key, value] of Object.entries(DEFAULTS.kafka))
      expect(p.kafka.properties[key].default, `kafka.${key}`).toBe(value);
    expect(p.clickhouse.properties.database.default).toBe(DEFAULTS.clickhouse.database);
    expect(p.api.properties.host.default).toBe(DEFAULTS.api.host);
    expect(p.api.properties.port.default).toBe(DEFAULTS.api.port);
  });
});

describe('file and environment', () => {
  it('reads YAML and JSON alike', () => {
    const yaml = loadConfig(file(DISTRIBUTED), {});
    const json = loadConfig(
      file(
        JSON.stringify({
          mode: 'distributed',
          reference: 'ref/reference.json',
          kafka: { brokers: ['kafka-1:9092', 'kafka-2:9092'] },
          clickhouse: { url: 'http://clickhouse:8123' },
        }),
        'json',
      ),
      {},
    );
    expect(json).toEqual(yaml);
  });

  it('resolves relative paths of the file against its folder, of the environment against the current one', () => {
    const path = file(`${DISTRIBUTED}dataDir: state\n`);
    const config = loadConfig(path, {});
    expect(config.dataDir).toBe(join(dir, 'state'));
    expect(config.reference).toBe(join(dir, 'ref', 'reference.json'));
    const overridden = loadConfig(path, { DATA_STREAMER_DATA_DIR: 'elsewhere' });
    expect(overridden.dataDir).toBe(resolve('elsewhere'));
    expect(overridden.reference).toBe(join(dir, 'ref', 'reference.json'));
  });

  it('every variable overrides the file', () => {
    const path = file(
      `${DISTRIBUTED}
partitions: 3
kafka:
  brokers: [kafka-1:9092]
  topicPrefix: file.
  replicationFactor: 3
  clientId: from-file
clickhouse:
  url: http://file:8123
  username: file-user
  password: file-password
  database: file_db
api: { host: 0.0.0.0, port: 9000 }
`.replace(
        /^kafka:\n {2}brokers: \[kafka-1:9092, kafka-2:9092\]\nclickhouse:\n {2}url: http:\/\/clickhouse:8123\n/m,
        '',
      ),
    );
    const env = {
      DATA_STREAMER_MODE: 'distributed',
      DATA_STREAMER_DATA_DIR: '/var/lib/ds',
      DATA_STREAMER_PARTITIONS: '12',
      DATA_STREAMER_REFERENCE: '/shared/reference.json',
      DATA_STREAMER_KAFKA_BROKERS: ' a:1 , b:2,',
      DATA_STREAMER_KAFKA_TOPIC_PREFIX: 'env-',
      DATA_STREAMER_KAFKA_REPLICATION_FACTOR: '2',
      DATA_STREAMER_CLICKHOUSE_URL: 'https://ch.example:8443',
      DATA_STREAMER_CLICKHOUSE_USERNAME: 'env-user',
      DATA_STREAMER_CLICKHOUSE_PASSWORD: 'env-password',
      DATA_STREAMER_CLICKHOUSE_DATABASE: 'env_db',
      DATA_STREAMER_API_HOST: '::',
      DATA_STREAMER_API_PORT: '8081',
    };
    expect(Object.keys(env).sort()).toEqual(ENV_OVERRIDES.map((o) => o.name).sort());
    expect(loadConfig(path, env)).toEqual({
      mode: 'distributed',
      dataDir: '/var/lib/ds',
      partitions: 12,
      reference: '/shared/reference.json',
      kafka: {
        brokers: ['a:1', 'b:2'],
        clientId: 'from-file',
        topicPrefix: 'env-',
        replicationFactor: 2,
        consumerGroup: 'data-streamer-engine',
        ssl: false,
      },
      clickhouse: {
        url: 'https://ch.example:8443',
        username: 'env-user',
        password: 'env-password',
        database: 'env_db',
      },
      api: { host: '::', port: 8081 },
    });
  });

  it('an empty variable counts as unset', () => {
    const config = loadConfig(file(DISTRIBUTED), { DATA_STREAMER_API_PORT: '', DATA_STREAMER_MODE: '' });
    expect(config.api.port).toBe(8080);
    expect(config.mode).toBe('distributed');
  });

  it('the environment alone can make a distributed configuration', () => {
    const config = loadConfig(undefined, {
      DATA_STREAMER_MODE: 'distributed',
      DATA_STREAMER_KAFKA_BROKERS: 'kafka:9092',
      DATA_STREAMER_CLICKHOUSE_URL: 'http://clickhouse:8123',
      DATA_STREAMER_REFERENCE: '/shared/reference.json',
    });
    expect(config.kafka?.brokers).toEqual(['kafka:9092']);
    expect(config.clickhouse?.database).toBe('data_streamer');
  });

  it('ignores variables outside its list', () => {
    expect(
      loadConfig(undefined, { DATA_STREAMER_WHATEVER: 'x', DATA_STREAMER_KAFKA_CLIENT_ID: 'y' }),
    ).toEqual(loadConfig(undefined, {}));
  });
});

describe('errors name the path', () => {
  const cases: [string, string, Record<string, string>, string][] = [
    ['an unknown field', 'mode: embedded\nparitions: 4\n', {}, 'paritions: is not a known field'],
    [
      'an unknown mode',
      'mode: cluster\n',
      {},
      'mode: must be one of "embedded", "distributed", got "cluster"',
    ],
    ['partitions 0', 'partitions: 0\n', {}, 'partitions: must be >= 1, got 0'],
    ['partitions over 1024', 'partitions: 1025\n', {}, 'partitions: must be <= 1024, got 1025'],
    ['partitions not whole', 'partitions: 2.5\n', {}, 'partitions: must be integer, got 2.5'],
    ['dataDir empty', 'dataDir: ""\n', {}, 'dataDir: must NOT have fewer than 1 characters'],
    [
      'distributed without kafka',
      'mode: distributed\nreference: r.json\nclickhouse: { url: "http://c:8123" }\n',
      {},
      'kafka: is required in mode distributed',
    ],
    [
      'distributed without clickhouse',
      'mode: distributed\nreference: r.json\nkafka: { brokers: [k:9092] }\n',
      {},
      'clickhouse: is required in mode distributed',
    ],
    [
      'distributed without reference',
      'mode: distributed\nkafka: { brokers: [k:9092] }\nclickhouse: { url: "http://c:8123" }\n',
      {},
      'reference: is required in mode distributed',
    ],
    [
      'kafka without brokers',
      DISTRIBUTED.replace('brokers: [kafka-1:9092, kafka-2:9092]', 'clientId: x'),
      {},
      'kafka.brokers: is required',
    ],
    [
      'no brokers',
      DISTRIBUTED.replace('[kafka-1:9092, kafka-2:9092]', '[]'),
      {},
      'kafka.brokers: must list at least one broker as host:port',
    ],
    [
      'a broker without port',
      DISTRIBUTED.replace('kafka-2:9092', 'kafka-2'),
      {},
      'kafka.brokers[1]: must be host:port, got "kafka-2"',
    ],
    [
      'a broker port too high',
      DISTRIBUTED.replace('kafka-2:9092', 'kafka-2:70000'),
      {},
      'kafka.brokers[1]: the port must be from 1 to 65535',
    ],
    [
      'a bad topic prefix',
      `${DISTRIBUTED}`.replace('kafka:\n', 'kafka:\n  topicPrefix: "ds/"\n'),
      {},
      'kafka.topicPrefix: must be at most 100 of A-Z a-z 0-9 . _ -',
    ],
    [
      'an internal topic prefix',
      `${DISTRIBUTED}`.replace('kafka:\n', 'kafka:\n  topicPrefix: __ds\n'),
      {},
      'kafka.topicPrefix: must not start with __',
    ],
    [
      'replication factor 0',
      `${DISTRIBUTED}`.replace('kafka:\n', 'kafka:\n  replicationFactor: 0\n'),
      {},
      'kafka.replicationFactor: must be >= 1, got 0',
    ],
    [
      'a sasl mechanism',
      `${DISTRIBUTED}`.replace(
        'kafka:\n',
        'kafka:\n  sasl: { mechanism: gssapi, username: u, password: p }\n',
      ),
      {},
      'kafka.sasl.mechanism: must be one of "plain", "scram-sha-256", "scram-sha-512", got "gssapi"',
    ],
    [
      'sasl without password',
      `${DISTRIBUTED}`.replace('kafka:\n', 'kafka:\n  sasl: { mechanism: plain, username: u }\n'),
      {},
      'kafka.sasl.password: is required',
    ],
    [
      'ssl not a boolean',
      `${DISTRIBUTED}`.replace('kafka:\n', 'kafka:\n  ssl: "yes"\n'),
      {},
      'kafka.ssl: must be boolean, got "yes"',
    ],
    [
      'a clickhouse url not http',
      DISTRIBUTED.replace('http://clickhouse:8123', 'tcp://clickhouse:9000'),
      {},
      'clickhouse.url: must be an http:// or https:// URL, got "tcp://clickhouse:9000"',
    ],
    [
      'a clickhouse url that does not parse',
      DISTRIBUTED.replace('http://clickhouse:8123', 'http://clickhouse:port'),
      {},
      'clickhouse.url: "http://clickhouse:port" is not a URL',
    ],
    [
      'a clickhouse database name',
      `${DISTRIBUTED}  database: data-streamer\n`,
      {},
      'clickhouse.database: must be a plain database name',
    ],
    [
      'embedded with kafka',
      'kafka: { brokers: [k:9092] }\n',
      {},
      'kafka.brokers: kafka is only used in mode distributed, but mode is embedded (the default)',
    ],
    [
      'embedded with clickhouse',
      'mode: embedded\nclickhouse: { url: "http://c:8123" }\n',
      {},
      'clickhouse.url: clickhouse is only used in mode distributed, but mode is embedded;',
    ],
    ['an api port', 'api: { port: 65536 }\n', {}, 'api.port: must be <= 65535, got 65536'],
    ['an api host', 'api: { host: 8080 }\n', {}, 'api.host: must be string, got 8080'],
    ['a file that is a list', '- mode\n', {}, '(top level): must be object'],
    [
      'partitions from the environment',
      '',
      { DATA_STREAMER_PARTITIONS: 'six' },
      'partitions (from DATA_STREAMER_PARTITIONS): must be integer, got "six"',
    ],
    [
      'a port from the environment',
      '',
      { DATA_STREAMER_API_PORT: '99999' },
      'api.port (from DATA_STREAMER_API_PORT): must be <= 65535, got 99999',
    ],
    [
      'a mode from the environment',
      '',
      { DATA_STREAMER_MODE: 'kafka' },
      'mode (from DATA_STREAMER_MODE): must be one of "embedded", "distributed", got "kafka"',
    ],
    [
      'brokers from the environment',
      DISTRIBUTED,
      { DATA_STREAMER_KAFKA_BROKERS: 'kafka:9092,kafka' },
      'kafka.brokers[1] (from DATA_STREAMER_KAFKA_BROKERS): must be host:port, got "kafka"',
    ],
    [
      'a replication factor from the environment',
      DISTRIBUTED,
      { DATA_STREAMER_KAFKA_REPLICATION_FACTOR: '-1' },
      'kafka.replicationFactor (from DATA_STREAMER_KAFKA_REPLICATION_FACTOR): must be >= 1, got -1',
    ],
    [
      'a database from the environment',
      DISTRIBUTED,
      { DATA_STREAMER_CLICKHOUSE_DATABASE: 'a b' },
      'clickhouse.database (from DATA_STREAMER_CLICKHOUSE_DATABASE): must be a plain database name',
    ],
    [
      'kafka from the environment in embedded mode',
      '',
      { DATA_STREAMER_KAFKA_BROKERS: 'kafka:9092' },
      'kafka.brokers (from DATA_STREAMER_KAFKA_BROKERS): kafka is only used in mode distributed',
    ],
    [
      'embedded from the environment over a distributed file',
      DISTRIBUTED,
      { DATA_STREAMER_MODE: 'embedded' },
      'but mode (from DATA_STREAMER_MODE) is embedded',
    ],
  ];
  it.each(cases)('%s', (_what, text, env, expected) => {
    const path = file(text);
    const error = failure(() => loadConfig(path, env));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(path);
    expect(error.problems.join('\n')).toContain(expected);
  });

  it('lists every problem at once', () => {
    const error = failure(() =>
      loadConfig(file('mode: distributed\npartitions: 0\napi: { port: -1 }\nextra: 1\n'), {}),
    );
    expect(error.problems).toHaveLength(6);
    expect(error.message).toContain('6 problems in the configuration');
  });

  it('a missing file is CONFIG_UNREADABLE naming it', () => {
    const path = join(dir, 'missing.yaml');
    const error = failure(() => loadConfig(path, {}));
    expect(error.code).toBe('CONFIG_UNREADABLE');
    expect(error.message).toBe(`${path}: cannot read the config file (ENOENT)`);
  });

  it('a file that does not parse is CONFIG_UNREADABLE with line and column', () => {
    const yaml = file('mode: distributed\n kafka: [\n');
    const error = failure(() => loadConfig(yaml, {}));
    expect(error.code).toBe('CONFIG_UNREADABLE');
    expect(error.message).toMatch(
      new RegExp(`^${yaml}: cannot be parsed as YAML at line \\d+, column \\d+: `),
    );
    const json = file('{"mode": "embedded",, }', 'json');
    expect(failure(() => loadConfig(json, {})).message).toContain(
      `${json}: cannot be parsed as JSON at line 1`,
    );
  });
});

describe('secrets stay out of messages', () => {
  const SECRET = 'hunter2-secret';
  it.each([
    [
      'a password in the url',
      DISTRIBUTED.replace('http://clickhouse:8123', `http://admin:${SECRET}@clickhouse:8123`),
    ],
    [
      'a password in a url that is not http',
      DISTRIBUTED.replace('http://clickhouse:8123', `ftp://admin:${SECRET}@clickhouse`),
    ],
    [
      'a password in a url that does not parse',
      DISTRIBUTED.replace('http://clickhouse:8123', `http://admin:${SECRET}@clickhouse:port`),
    ],
    [
      'a sasl password of the wrong type',
      DISTRIBUTED.replace(
        'kafka:\n',
        `kafka:\n  sasl: { mechanism: plain, username: u, password: [${SECRET}] }\n`,
      ),
    ],
    ['a clickhouse password of the wrong type', `${DISTRIBUTED}  password: { p: ${SECRET} }\n`],
    ['a password in embedded mode', `clickhouse: { url: "http://c:8123", password: ${SECRET} }\n`],
    ['a password on a line that does not parse', `clickhouse:\n  password: "${SECRET}\n`],
    ['a password beside an error on its line', `clickhouse: { password: ${SECRET}, : }\n`],
  ])('%s', (_what, text) => {
    const error = failure(() => loadConfig(file(text), {}));
    expect(error.message).not.toContain(SECRET);
    expect(JSON.stringify(error.problems)).not.toContain(SECRET);
  });

  it('a password from the environment', () => {
    const error = failure(() =>
      loadConfig(undefined, {
        DATA_STREAMER_CLICKHOUSE_PASSWORD: SECRET,
        DATA_STREAMER_CLICKHOUSE_URL: `http://u:${SECRET}@c:8123`,
      }),
    );
    expect(error.message).not.toContain(SECRET);
  });

  it('credentials in the url are refused, naming where they belong', () => {
    const error = failure(() =>
      loadConfig(
        file(DISTRIBUTED.replace('http://clickhouse:8123', `http://admin:${SECRET}@clickhouse:8123`)),
        {},
      ),
    );
    expect(error.problems).toEqual([
      'clickhouse.url: put the credentials in clickhouse.username and clickhouse.password, not in the URL',
    ]);
  });
});

describe('what the configuration maps to', () => {
  it('the Kafka log options, which the log accepts', () => {
    const config = loadConfig(
      file(
        DISTRIBUTED.replace(
          'kafka:\n',
          'kafka:\n  clientId: engine-7\n  replicationFactor: 3\n  ssl: true\n  sasl: { mechanism: scram-sha-512, username: u, password: p }\n',
        ),
      ),
      {},
    );
    const options = kafkaLogOptions(config);
    expect(options).toEqual({
      brokers: ['kafka-1:9092', 'kafka-2:9092'],
      clientId: 'engine-7',
      replicationFactor: 3,
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
    });
    expect(resolveKafkaOptions(options).brokers).toEqual(options.brokers);
    expect(kafkaLogOptions(loadConfig(file(DISTRIBUTED), {}))).toEqual({
      brokers: ['kafka-1:9092', 'kafka-2:9092'],
      clientId: 'data-streamer',
      replicationFactor: 1,
    });
  });

  it('no Kafka log in embedded mode', () => {
    const error = failure(() => kafkaLogOptions(loadConfig(undefined, {})));
    expect(error.problems[0]).toContain('mode embedded');
  });

  it('the store: chDB under the data directory, or the server', () => {
    expect(storeOptions(loadConfig(undefined, { DATA_STREAMER_DATA_DIR: '/srv/ds' }))).toEqual({
      kind: 'embedded',
      dataDir: '/srv/ds/clickhouse',
    });
    expect(storeOptions(loadConfig(file(`${DISTRIBUTED}  username: writer\n  password: pw\n`), {}))).toEqual({
      kind: 'server',
      url: 'http://clickhouse:8123',
      username: 'writer',
      password: 'pw',
      database: 'data_streamer',
    });
  });
});
