import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineQuotas } from '../../api/from-engine.js';
import { buildApi } from '../../api/server.js';
import { TokenStore } from '../../api/tokens.js';
import { UserStore } from '../../api/users.js';
import { EmbeddedEngine } from '../../engine/engine.js';
import { streamsOf } from '../../streams/beside-engine.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';
import { apiDir } from './tokens.js';

export { TOKENS_HELP, tokensCommand } from './tokens.js';

export const SERVE_HELP = `Usage: data-streamer serve --data-dir DIR [--port P] [--host H]

Serves the management API (docs/api.md) for an engine data directory: application
tokens, authentication, data streams (create, read, change, pause, restart, redrive,
replay, status). The streams' lanes run while it serves, delivering what the log holds.
The OpenAPI document is at /api/docs. Stop with Ctrl+C.

Options:
  --data-dir DIR   the engine's data directory (after a replay or npm start)
  --port P         default 8080 (0: any free port)
  --host H         default 127.0.0.1; 0.0.0.0 to listen on every interface

Kept in DIR/api/: tokens.json (hashed application tokens), jwt-secret and
metrics-token (created on the first run, readable by the owner only). /metrics answers
to "Authorization: Bearer <metrics-token>".

Example:
  data-streamer tokens create --data-dir data/demo/engine --organisation 1001
  data-streamer serve --data-dir data/demo/engine --port 8080`;

/** A secret of the data directory: read, or made once with the owner alone able to read it. */
function secretFile(file: string): string {
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      // Another process made it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return readFileSync(file, 'utf8').trim();
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    { 'data-dir': { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } },
    'serve',
  );
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  const dataDir = values['data-dir'];
  if (!dataDir) throw new UsageError('serve: --data-dir DIR is required');
  const port = parseInteger(values.port ?? '8080', '--port', 0, 65535);
  const host = values.host ?? '127.0.0.1';
  const dir = apiDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const jwtSecret = secretFile(join(dir, 'jwt-secret'));
  const metricsToken = secretFile(join(dir, 'metrics-token'));

  const engine = await EmbeddedEngine.open({ dataDir });
  const streams = streamsOf(engine, dataDir);
  let ready = false;
  const app = await buildApi({
    streams,
    store: engine.store,
    connectivity: (id) => engine.connectivityOf(id),
    // A served engine runs on wall time: a quota assigned now is stamped now.
    quotas: engineQuotas(engine, Date.now),
    tokens: new TokenStore(join(dir, 'tokens.json')),
    users: new UserStore(join(dir, 'users.json')),
    jwtSecret,
    metricsToken,
    logger: { level: 'warn' },
    ready: () => ready,
  });
  try {
    await streams.start();
    const address = await app.listen({ port, host });
    ready = true;
    console.log(`data-streamer API listening on ${address} (OpenAPI: ${address}/api/docs)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    ready = false;
    return 0;
  } finally {
    await app.close();
    await streams.close();
    await engine.close();
  }
}
