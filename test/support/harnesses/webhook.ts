/** Webhook (`RestAPI`): a node:http receiver on 127.0.0.1 that records every request's raw body. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SinkFactory } from '../../../connectors/sinks/types.js';
import { webhookSink } from '../../../connectors/sinks/webhook/index.js';
import {
  type Destination,
  endpointKey,
  FaultProxy,
  type Received,
  recordId,
  type SinkHarness,
} from '../sink-harness.js';

/**
 * The top-level items of a JSON array text, each exactly as written (the webhook body is
 * `[` + the records' own texts joined with `,` + `]`); a bare object is one item.
 */
export function splitJsonArray(text: string): string[] {
  const trimmed = text.trim();
  if (!trimmed.startsWith('[')) return [trimmed];
  const items: string[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = 1;
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) {
        const last = trimmed.slice(start, i);
        if (last.trim() !== '') items.push(last);
      }
    } else if (c === ',' && depth === 1) {
      items.push(trimmed.slice(start, i));
      start = i + 1;
    }
  }
  return items;
}

export class WebhookHarness implements SinkHarness {
  readonly name = 'webhook';
  readonly factory = webhookSink as unknown as SinkFactory;
  readonly ordering = 'requests in arrival order, records in body order';
  readonly partial = {
    kind: 'not-applicable',
    why: 'an HTTP request is accepted or refused as a whole: a webhook cannot report a partial failure',
  } as const;
  private server: Server | undefined;
  private readonly bodies = new Map<string, string[]>();
  private _proxy: FaultProxy | undefined;

  get proxy(): FaultProxy {
    if (!this._proxy) throw new Error('webhook harness not started');
    return this._proxy;
  }

  keylessKey(): string | null {
    return null;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const list = this.bodies.get(req.url ?? '') ?? [];
        list.push(Buffer.concat(chunks).toString('utf8'));
        this.bodies.set(req.url ?? '', list);
        res.writeHead(200).end();
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this._proxy = new FaultProxy({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    await this._proxy.start();
  }

  async stop(): Promise<void> {
    await this._proxy?.close();
    const server = this.server;
    server?.closeAllConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async destination(name: string, _batchSize: number): Promise<Destination> {
    const path = `/hook/${name}`;
    this.bodies.set(path, []);
    return {
      body: {
        connection_type: webhookSink.connectionType,
        credentials: {
          url: `http://127.0.0.1:${this.proxy.port}${path}`,
          headers: ['Authorization:Bearer conformance-token'],
        },
      },
      received: async (): Promise<Received[]> =>
        (this.bodies.get(path) ?? []).flatMap((body) =>
          splitJsonArray(body).map((json) => ({ id: recordId(json), key: endpointKey(json), json })),
        ),
    };
  }
}
