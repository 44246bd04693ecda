/**
 * docker-compose.yml and deploy/: the structure a user's `docker compose up` relies on
 * (healthchecks, pinned images, start order), the configuration the services load, what
 * Debian's docker-compose accepts, and every SQL query of the provisioned Grafana
 * dashboard run against the real schema (an embedded store after a replayed capture).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/index.js';
import type { EmbeddedEngine } from '../src/engine/engine.js';
import { engineTopics } from '../src/engine/topics.js';
import { packageRoot } from '../src/util/paths.js';
import { replayedEngine, smallWorld, T0 } from './fixtures.js';

const ROOT = packageRoot();
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  restart?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string | number>;
  volumes?: string[];
}
// Compose files use YAML merge keys (<<:), a YAML 1.1 feature the parser needs told about.
const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const ONE_SHOT = ['reference', 'kafka-init'];

describe('docker-compose.yml', () => {
  it('has the services of distributed mode', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'clickhouse',
        'engine-1',
        'engine-2',
        'grafana',
        'kafka',
        'kafka-init',
        'reference',
        'simulator',
      ].sort(),
    );
  });

  it('every service has a healthcheck', () => {
    for (const [name, service] of Object.entries(services))
      expect(service.healthcheck?.test?.length, `${name} has no healthcheck`).toBeGreaterThan(0);
  });

  it('images are pinned to a version tag', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.image, `${name} has no image`).toBeDefined();
      expect(service.image, name).toMatch(/^[a-z0-9./-]+:\d+(\.\d+)*$/);
    }
    expect(services.kafka?.image).toMatch(/^apache\/kafka:4\./);
    expect(services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:25\./);
    const ours = Object.entries(services).filter(([, s]) => s.build !== undefined);
    expect(ours.map(([name]) => name).sort()).toEqual(
      ['engine-1', 'engine-2', 'kafka-init', 'reference', 'simulator'].sort(),
    );
    const version = JSON.parse(read('package.json')).version as string;
    for (const [, service] of ours) expect(service.image).toBe(`data-streamer:${version}`);
  });

  it('waits for healthy services, and for one-shots to complete', () => {
    for (const [name, service] of Object.entries(services))
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(services[dependency], `${name} depends on a missing ${dependency}`).toBeDefined();
        expect(condition, `${name} -> ${dependency}`).toBe(
          ONE_SHOT.includes(dependency) ? 'service_completed_successfully' : 'service_healthy',
        );
      }
    for (const name of ONE_SHOT) expect(services[name]?.restart).toBe('no');
    const dependsOn = (name: string) => Object.keys(services[name]?.depends_on ?? {}).sort();
    expect(dependsOn('kafka-init')).toEqual(['kafka']);
    for (const engine of ['engine-1', 'engine-2'])
      expect(dependsOn(engine)).toEqual(['clickhouse', 'kafka', 'kafka-init', 'reference']);
    expect(dependsOn('simulator')).toEqual(expect.arrayContaining(['kafka-init', 'reference']));
    expect(dependsOn('grafana')).toEqual(['clickhouse']);
  });

  it('runs our commands with the shared configuration and reference data', () => {
    expect(services.reference?.command).toEqual([
      'reference',
      'generate',
      '--devices',
      '10000',
      '--seed',
      'compose',
      '--out',
      '/shared/reference.json',
    ]);
    expect(services['kafka-init']?.command).toEqual([
      'kafka',
      'init',
      '--config',
      '/config/distributed.yaml',
    ]);
    for (const engine of ['engine-1', 'engine-2']) {
      expect(services[engine]?.command).toEqual(['run', '--config', '/config/distributed.yaml']);
      expect(services[engine]?.volumes).toContain('engine-state:/data');
    }
    expect(services.simulator?.command?.slice(0, 3)).toEqual([
      'simulate',
      '--config',
      '/config/distributed.yaml',
    ]);
    for (const name of ['reference', 'kafka-init', 'engine-1', 'engine-2', 'simulator']) {
      expect(services[name]?.volumes).toContain('shared:/shared');
      expect(services[name]?.volumes).toContain('./deploy/distributed.yaml:/config/distributed.yaml:ro');
    }
    // Each replica serves the API on its own port, published as is.
    const ports = ['engine-1', 'engine-2'].map((e) => services[e]?.environment?.DATA_STREAMER_API_PORT);
    expect(new Set(ports).size).toBe(2);
    for (const volume of ['shared', 'engine-state', 'kafka-data', 'clickhouse-data', 'grafana-data'])
      expect(compose.volumes).toHaveProperty(volume);
  });

  it('deploy/distributed.yaml loads, as the replicas see it', () => {
    const file = join(ROOT, 'deploy', 'distributed.yaml');
    const engine = services['engine-1']?.environment ?? {};
    const env = Object.fromEntries(Object.entries(engine).map(([k, v]) => [k, String(v)]));
    const config = loadConfig(file, env);
    expect(config.mode).toBe('distributed');
    expect(config.reference).toBe('/shared/reference.json');
    expect(config.dataDir).toBe('/data/engine');
    expect(config.kafka?.brokers).toEqual(['kafka:9092']);
    expect(config.clickhouse).toEqual({
      url: 'http://clickhouse:8123',
      username: 'data_streamer',
      password: services.clickhouse?.environment?.CLICKHOUSE_PASSWORD,
      database: 'data_streamer',
    });
    expect(config.clickhouse?.database).toBe(services.clickhouse?.environment?.CLICKHOUSE_DB);
    expect(config.clickhouse?.username).toBe(services.clickhouse?.environment?.CLICKHOUSE_USER);
    expect(config.api).toEqual({ host: '0.0.0.0', port: Number(env.DATA_STREAMER_API_PORT) });
    expect(engineTopics(config.partitions, config.kafka?.topicPrefix)[0]?.name).toBe('ds.raw');
    // The file itself holds no password.
    expect(readFileSync(file, 'utf8')).not.toContain(
      String(services.clickhouse?.environment?.CLICKHOUSE_PASSWORD),
    );
  });

  it("Debian's docker-compose accepts it", async () => {
    const run = promisify(execFile);
    try {
      await run('docker-compose', ['version']);
    } catch (error) {
      throw new Error(
        `docker-compose is needed to validate docker-compose.yml: apt-get install -y docker-compose (${(error as Error).message})`,
      );
    }
    const { stdout, stderr } = await run(
      'docker-compose',
      ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'],
      {
        cwd: ROOT,
      },
    );
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });
});

describe('Grafana provisioning', () => {
  const datasource = parseYaml(read('deploy/grafana/provisioning/datasources/clickhouse.yaml'))
    .datasources[0];
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/data-streamer.json')) as {
    panels: { title: string; targets: { rawSql: string; datasource: { uid: string } }[] }[];
  };
  const queries = dashboard.panels.flatMap((panel) =>
    panel.targets.map((target) => ({ panel: panel.title, sql: target.rawSql, uid: target.datasource.uid })),
  );

  it('a ClickHouse datasource on the compose server, which the dashboard uses', () => {
    expect(datasource.type).toBe('grafana-clickhouse-datasource');
    expect(datasource.jsonData).toMatchObject({ host: 'clickhouse', port: 8123, protocol: 'http' });
    expect(services.grafana?.environment?.GF_PLUGINS_PREINSTALL_SYNC).toBe('grafana-clickhouse-datasource');
    expect(queries.length).toBeGreaterThanOrEqual(4);
    for (const query of queries) expect(query.uid, query.panel).toBe(datasource.uid);
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const wanted of ['traffic per day', 'devices online', 'usage and cost per ratezone'])
      expect(titles).toContain(wanted);
  });

  describe('every query runs against the real schema', () => {
    let dir: string;
    let engine: EmbeddedEngine | undefined;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ds-compose-'));
      engine = await replayedEngine(dir, smallWorld(), { seed: 5, hours: 6 });
    }, 120_000);
    afterAll(async () => {
      await engine?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    // The range Grafana would send: the day of the replayed capture.
    const from = Math.floor(T0 / 1000);
    const to = from + 86_400;
    const day = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);
    /**
     * What the ClickHouse plugin makes of its macros, written out; and the database: the
     * engine writes to data_streamer on the compose server, the embedded store uses its
     * default database.
     */
    function concrete(sql: string): string {
      const out = sql
        .replace(/\$__timeFilter\(([^)]+)\)/g, `$1 >= toDateTime(${from}) AND $1 <= toDateTime(${to})`)
        .replace(/\$__dateFilter\(([^)]+)\)/g, `$1 >= toDate('${day(from)}') AND $1 <= toDate('${day(to)}')`)
        .replace(/\bdata_streamer\./g, '');
      expect(out, 'a macro the test does not substitute').not.toContain('$');
      return out;
    }

    it('the queries name the engine database', () => {
      for (const { panel, sql } of queries)
        expect(sql, panel).toMatch(/\bdata_streamer\.(usage_records|usage_daily|events)\b/);
    });

    it.each(queries.map((q) => [q.panel, q.sql] as const))('%s', async (_panel, sql) => {
      const rows = await (engine as EmbeddedEngine).store.query(concrete(sql));
      expect(rows.length).toBeGreaterThan(0);
    });

    it('the ratezone table adds up to the usage records', async () => {
      const store = (engine as EmbeddedEngine).store;
      const ratezones = queries.find((q) => q.panel === 'Usage and cost per ratezone');
      const rows = await store.query(concrete(ratezones?.sql ?? ''));
      const [total] = await store.query('SELECT count() AS n FROM usage_records FINAL');
      expect(rows.reduce((n, row) => n + Number(row.records), 0)).toBe(Number(total?.n));
      expect(Number(total?.n)).toBeGreaterThan(0);
    });
  });
});
