/**
 * The management API over an embedded engine, as `serve` and the demo run it: the routes
 * of every group, the dashboard, and the files of DIR/api (hashed tokens and users, the
 * JWT secret and the metrics token, made on the first run, readable by the owner only).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { RawRecord } from '../contracts/raw.js';
import type { EmbeddedEngine } from '../engine/engine.js';
import type { StreamManager } from '../streams/manager.js';
import { DataStreamerError } from '../util/errors.js';
import { engineDashboardSource } from './dashboard/source.js';
import type { QuotaBackend } from './plugins/quotas.js';
import { buildApi } from './server.js';
import { TokenStore } from './tokens.js';
import { UserStore } from './users.js';

/** Where a data directory keeps its API files. */
export const apiDir = (dataDir: string) => join(dataDir, 'api');

/**
 * Quotas read from the engine's state and changed through its input log. `now` stamps the
 * commands: the engine's event clock under `serve`, the virtual clock in the demo. A live
 * run's capture gets the commands too, so replaying it reproduces them.
 */
export function engineQuotas(
  engine: EmbeddedEngine,
  now: () => number,
  capture?: () => { write(records: RawRecord[]): Promise<void> } | undefined,
): QuotaBackend {
  return {
    quotaOf: (id, service) => engine.quotaOf(id, service),
    submit: (commands) => engine.submit(commands, capture?.()),
    now,
  };
}

/**
 * A secret of the data directory: read, or made once with the owner alone able to read it.
 * Written whole under a temp name and linked into place, so a process starting at the same
 * moment (a replica on the same volume) reads a whole secret or makes its own attempt fail.
 */
function secretFile(file: string): string {
  if (!existsSync(file)) {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, randomBytes(32).toString('base64url'), { mode: 0o600 });
    try {
      linkSync(temp, file);
    } catch (error) {
      // Another process made it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(temp);
    }
  }
  return readFileSync(file, 'utf8').trim();
}

export interface EngineApi {
  app: FastifyInstance;
  tokens: TokenStore;
  /** http://host:port */
  address: string;
  setReady(ready: boolean): void;
}

export interface EngineApiOptions {
  engine: EmbeddedEngine;
  streams: StreamManager;
  dataDir: string;
  port: number;
  host: string;
  /** Listen on any free port when `port` is taken, instead of failing (the demo). */
  anyPortIfTaken?: boolean;
  /** The clock of quota commands. */
  now: () => number;
  capture?: () => { write(records: RawRecord[]): Promise<void> } | undefined;
  /**
   * The engine holds a share of the partitions only (distributed mode): the routes that
   * answer from engine state (connectivity, quotas, the dashboard) are left out, those that
   * read ClickHouse stay.
   */
  shareOfState?: boolean;
}

export async function startEngineApi(options: EngineApiOptions): Promise<EngineApi> {
  const { engine, streams } = options;
  const dir = apiDir(options.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tokens = new TokenStore(join(dir, 'tokens.json'));
  let ready = false;
  const app = await buildApi({
    streams,
    store: engine.store,
    ...(options.shareOfState
      ? {}
      : {
          connectivity: (id: number) => engine.connectivityOf(id),
          quotas: engineQuotas(engine, options.now, options.capture),
          dashboard: engineDashboardSource(engine, streams),
        }),
    stages: () => engine.stageCounts(),
    tokens,
    users: new UserStore(join(dir, 'users.json')),
    jwtSecret: secretFile(join(dir, 'jwt-secret')),
    metricsToken: secretFile(join(dir, 'metrics-token')),
    logger: { level: 'warn' },
    ready: () => ready,
  });
  let address: string;
  try {
    address = await app.listen({ port: options.port, host: options.host });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' || !options.anyPortIfTaken) {
      await app.close();
      throw new DataStreamerError(
        'API_LISTEN_FAILED',
        `cannot listen on ${options.host}:${options.port}: ${code ?? (error as Error).message}${code === 'EADDRINUSE' ? ' (another process has the port: pick another with --port)' : ''}`,
      );
    }
    address = await app.listen({ port: 0, host: options.host });
  }
  return {
    app,
    tokens,
    address,
    setReady: (value) => {
      ready = value;
    },
  };
}
