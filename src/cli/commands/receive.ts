import { parse, parseInteger } from '../args.js';
import { DemoWebhookReceiver } from '../demo/webhook-receiver.js';

export const RECEIVE_HELP = `Usage: data-streamer receive [--port P]

A webhook receiver on 127.0.0.1 for trying data streams: point a RestAPI stream at
http://127.0.0.1:P/ (any path) and it prints one line per delivered batch: how many
records, their ids and event or traffic types. Answers 200 to JSON, 400 to anything else.
Stop with Ctrl+C.

Options:
  --port P   default 9000`;

/** What a batch holds, in one line: event types for events, traffic types for usage records. */
function describe(records: unknown[]): string {
  const kinds = new Map<string, number>();
  for (const record of records) {
    const r = record as { event_type?: { description?: string }; traffic_type?: { description?: string } };
    const kind =
      r.event_type?.description ?? (r.traffic_type ? `usage ${r.traffic_type.description}` : 'other');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const ids = records.map((r) => (r as { id?: unknown }).id);
  return `${records.length} records, ids ${String(ids[0])}..${String(ids[ids.length - 1])}: ${[...kinds]
    .map(([k, n]) => `${k} ${n}`)
    .join(', ')}`;
}

export async function receiveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { port: { type: 'string' } }, 'receive');
  if (values.help) {
    console.log(RECEIVE_HELP);
    return 0;
  }
  const port = parseInteger(values.port ?? '9000', '--port', 0, 65535);
  const receiver = await DemoWebhookReceiver.start({
    port,
    onBatch: (records) => console.log(`${new Date().toISOString()}  ${describe(records)}`),
  });
  console.log(`receiving at ${receiver.url.replace(/\/emnify$/, '/')} (Ctrl+C to stop)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log(`${receiver.records} records in ${receiver.requests} requests`);
  await receiver.close();
  return 0;
}
