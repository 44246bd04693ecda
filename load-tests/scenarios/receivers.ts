/**
 * Webhook receivers for the live benchmarks, in a process of their own (as customers'
 * endpoints would be): one server, one receiver per path /s/<name>. Each notes when every
 * record id arrived (its own clock, Date.now(), the same system clock as the bench) and
 * answers 200; a receiver whose name starts with "fail" answers 503 for FAIL_503_MS after
 * its first request, then never answers (the sink's deadline ends each attempt).
 * GET /stats returns { <name>: { records, requests, failed, acked: [id, ms, id, ms, ...] } }.
 * Prints its base URL on the first line of stdout.
 *   node dist/load-tests/scenarios/receivers.js [FAIL_503_MS]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const fail503Ms = Number(process.argv[2] ?? '4000');

interface Receiver {
  records: number;
  requests: number;
  /** Requests answered 503 or left without an answer. */
  failed: number;
  acked: number[];
  firstRequestAt?: number;
}
const receivers = new Map<string, Receiver>();

function receiverOf(name: string): Receiver {
  let receiver = receivers.get(name);
  if (!receiver) {
    receiver = { records: 0, requests: 0, failed: 0, acked: [] };
    receivers.set(name, receiver);
  }
  return receiver;
}

function take(receiver: Receiver, body: string, now: number): void {
  // Parsed whole: records hold arrays of objects with ids of their own, so a text scan for ids would count those too.
  const parsed = JSON.parse(body) as { id: number } | { id: number }[];
  for (const record of Array.isArray(parsed) ? parsed : [parsed]) {
    receiver.acked.push(record.id, now);
    receiver.records++;
  }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(Object.fromEntries(receivers)));
    return;
  }
  const name = /^\/s\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? 'default';
  const receiver = receiverOf(name);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    receiver.requests++;
    receiver.firstRequestAt ??= now;
    if (name.startsWith('fail')) {
      receiver.failed++;
      // A receiver that first refuses, then hangs: the request stays open until the sender gives up.
      if (now - receiver.firstRequestAt < fail503Ms) res.writeHead(503).end('bench: unavailable');
      return;
    }
    take(receiver, Buffer.concat(chunks).toString('utf8'), now);
    res.writeHead(200).end();
  });
}

const server = createServer(handle);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
