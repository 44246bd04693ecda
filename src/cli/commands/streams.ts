import { readFileSync } from 'node:fs';
import { EmbeddedEngine } from '../../engine/engine.js';
import { streamsOf } from '../../streams/beside-engine.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInstant, parseInteger } from '../args.js';

export const STREAMS_HELP = `Usage: data-streamer streams <action> [ID] --data-dir DIR --organisation ORG [options]

Data streams deliver an organisation's usage records or events to its own destination
(webhook, S3, Kinesis, Pub/Sub, Event Hubs), each with its own cursor, batching and
retries. Bodies are emnify API v2 data streams (docs/data-streams.md). Streams live in
DIR/streams; their lanes run while the engine runs (npm start, replay) or with 'run'.

Actions:
  list                         the organisation's streams, credentials masked
  add --body FILE|JSON         create a stream (prints it, with its id; alias: create)
  show ID                      configuration, status, lag, metrics, dead-lettered batches
  update ID --body FILE|JSON   change fields (name, filters, destination, status, ...)
  pause ID                     stop sending; the stream keeps its position
  resume ID                    send again from where it stopped, backlog first
  remove ID                    delete the stream and its dead-lettered batches (alias: delete)
  restart ID [--skip-failed]   out of Error: send again from the cursor, or skip the failed batch
                               (it stays dead-lettered for a redrive)
  redrive ID                   send the dead-lettered batches again
  replay ID --from T --until T send the records of an event-time range again
  run [--follow]               deliver what the log holds (and, with --follow, keep going)

Example:
  data-streamer streams add --data-dir data/demo/engine --organisation 1001 \\
    --body '{"name":"events","data_stream_type":{"id":2},"destination":{"connection_type":"RestAPI","credentials":{"url":"http://127.0.0.1:8080/hook"}},"start":"earliest"}'`;

function readBody(text: string | undefined): unknown {
  if (!text) throw new UsageError('streams: --body FILE|JSON is required for this action');
  const json = text.trimStart().startsWith('{') ? text : readFileSync(text, 'utf8');
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new UsageError(`streams: --body is not valid JSON: ${(error as Error).message}`);
  }
}

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

export async function streamsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      'data-dir': { type: 'string' },
      organisation: { type: 'string' },
      body: { type: 'string' },
      from: { type: 'string' },
      until: { type: 'string' },
      'skip-failed': { type: 'boolean' },
      follow: { type: 'boolean' },
    },
    'streams',
  );
  if (values.help || positionals.length === 0) {
    console.log(STREAMS_HELP);
    return 0;
  }
  const [action, id] = positionals as [string, string | undefined];
  if (!values['data-dir']) throw new UsageError('streams: --data-dir DIR is required');
  const org = parseInteger(values.organisation ?? '', '--organisation', 1, Number.MAX_SAFE_INTEGER);
  const needId = () => {
    if (!id) throw new UsageError(`streams ${action}: give the stream id`);
    return id;
  };
  const engine = await EmbeddedEngine.open({ dataDir: values['data-dir'] });
  const manager = streamsOf(engine, values['data-dir']);
  try {
    switch (action) {
      case 'list':
        print(manager.list(org));
        break;
      case 'add':
      case 'create':
        print(await manager.create(org, readBody(values.body)));
        break;
      case 'pause':
      case 'resume':
        print(await manager.update(org, needId(), { status: { id: action === 'pause' ? 2 : 1 } }));
        if (action === 'resume') await manager.caughtUp(id);
        break;
      case 'show':
        print(await manager.status(org, needId()));
        break;
      case 'update':
        print(await manager.update(org, needId(), readBody(values.body) as Record<string, unknown>));
        break;
      case 'remove':
      case 'delete':
        await manager.delete(org, needId());
        console.log(`deleted ${id}`);
        break;
      case 'restart':
        print(await manager.restart(org, needId(), { skipFailed: values['skip-failed'] === true }));
        await manager.caughtUp(id);
        break;
      case 'redrive':
        print(await manager.redrive(org, needId()));
        break;
      case 'replay': {
        const from = parseInstant(values.from ?? '', '--from');
        const until = parseInstant(values.until ?? '', '--until');
        if (until <= from) throw new UsageError('streams replay: --until must be after --from');
        print(await manager.replay(org, needId(), { from, until }));
        break;
      }
      case 'run':
        await manager.start();
        // Lanes poll the log: with --follow they keep delivering until Ctrl+C.
        if (values.follow) await new Promise((resolve) => process.once('SIGINT', resolve));
        else await manager.caughtUp();
        for (const stream of manager.list(org)) print(await manager.status(org, stream.id));
        break;
      default:
        throw new UsageError(`streams: unknown action "${action}" (see data-streamer streams --help)`);
    }
    return 0;
  } finally {
    await manager.close();
    await engine.close();
  }
}
