/**
 * A webhook receiver on 127.0.0.1: what a customer's endpoint would be, so a new user sees
 * a data stream deliver without setting anything up (the demo's built-in stream, and
 * `data-streamer receive`). It counts what arrives and keeps the last record.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class DemoWebhookReceiver {
  records = 0;
  requests = 0;
  last: unknown = null;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(
    options: { port?: number; onBatch?: (records: unknown[]) => void } = {},
  ): Promise<DemoWebhookReceiver> {
    let receiver: DemoWebhookReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          const records = Array.isArray(body) ? body : [body];
          if (receiver) {
            receiver.requests++;
            receiver.records += records.length;
            receiver.last = records[records.length - 1] ?? receiver.last;
          }
          options.onBatch?.(records);
          res.writeHead(200).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', resolve);
    });
    receiver = new DemoWebhookReceiver(
      server,
      `http://127.0.0.1:${(server.address() as AddressInfo).port}/emnify`,
    );
    return receiver;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
