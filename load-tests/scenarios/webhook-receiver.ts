/**
 * A webhook receiver for benchmarks, in a process of its own (as a customer's endpoint
 * would be): answers 200 to every JSON batch, notes when each record id was acknowledged,
 * and tells the bench at GET /stats. Prints its URL on the first line of stdout.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { recordIds } from './record-ids.js';

let records = 0;
let requests = 0;
const acked: number[] = [];

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ records, requests, acked }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const now = Date.now();
    requests++;
    // Top-level ids only: event details hold lists of objects with ids of their own
    // (operators' tapcodes), which a plain text search would count as records.
    const ids =
      recordIds(body) ??
      [JSON.parse(body.toString('utf8')) as { id: number } | { id: number }[]].flat().map((r) => r.id);
    for (const id of ids) {
      acked.push(id, now);
      records++;
    }
    res.writeHead(200).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
});
