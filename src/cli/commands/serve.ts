import { startEngineApi } from '../../api/from-engine.js';
import { EmbeddedEngine, LIVE_ORGANISATION_IDLE_MS } from '../../engine/engine.js';
import { streamsOf } from '../../streams/beside-engine.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';

export { TOKENS_HELP, tokensCommand } from './tokens.js';

export const SERVE_HELP = `Usage: data-streamer serve --data-dir DIR [--port P] [--host H]

Serves the management API (docs/api.md) and the live dashboard (docs/dashboard.md) for
an engine data directory: application tokens and users, authentication, data streams
(create, read, change, pause, restart, redrive, replay, status), events, usage,
connectivity and quotas. The streams' lanes run while it serves, delivering what the
log holds. The OpenAPI document is at /api/docs. Stop with Ctrl+C.

Options:
  --data-dir DIR   the engine's data directory (after a replay or npm start)
  --port P         default 8080 (0: any free port)
  --host H         default 127.0.0.1; 0.0.0.0 to listen on every interface

Kept in DIR/api/: tokens.json and users.json (hashed secrets), jwt-secret and
metrics-token (created on the first run, readable by the owner only). /metrics answers
to "Authorization: Bearer <metrics-token>". Quota commands are stamped with the engine's
latest event time.

Example:
  data-streamer tokens create --data-dir data/demo/engine --organisation 1001
  data-streamer serve --data-dir data/demo/engine --port 8080`;

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

  const engine = await EmbeddedEngine.open({ dataDir, organisationIdleMs: LIVE_ORGANISATION_IDLE_MS });
  const streams = streamsOf(engine, dataDir);
  try {
    await streams.start();
    // Commands join the engine's timeline: its latest event time (wall time for an engine
    // that has seen nothing yet).
    const api = await startEngineApi({
      engine,
      streams,
      dataDir,
      port,
      host,
      now: () => engine.eventClock() ?? Date.now(),
    });
    try {
      api.setReady(true);
      console.log(
        `data-streamer API listening on ${api.address} (OpenAPI: ${api.address}/api/docs, dashboard: ${api.address}/)`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      api.setReady(false);
      return 0;
    } finally {
      await api.app.close();
    }
  } finally {
    await streams.close();
    await engine.close();
  }
}
