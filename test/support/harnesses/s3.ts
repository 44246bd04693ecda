/**
 * S3: moto_server (S3 in server mode) as a child process on a free port. Destinations use the
 * `NdjsonGzip` format, so every record's JSON text can be compared byte for byte (the CSV
 * format flattens records; its own contract is tested in connectors/sinks/s3).
 */
import type { ChildProcess } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { s3Sink } from '../../../connectors/sinks/s3/index.js';
import type { SinkFactory } from '../../../connectors/sinks/types.js';
import {
  type Destination,
  endpointKey,
  FaultProxy,
  freePort,
  type Received,
  recordId,
  type SinkHarness,
  startService,
  stopService,
} from '../sink-harness.js';

export const MOTO_INSTALL_HINT =
  "moto_server could not be started: install moto[server] (pip install 'moto[server]', moto 5.x) so that moto_server is on the PATH";

/** Starts moto_server on a free 127.0.0.1 port; ready when GET /moto-api/ answers. */
export async function startMoto(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = await startService({
    command: 'moto_server',
    args: ['-H', '127.0.0.1', '-p', String(port)],
    installHint: MOTO_INSTALL_HINT,
    ready: () => fetch(`http://127.0.0.1:${port}/moto-api/`).then((r) => r.ok),
  });
  return { child, port };
}

const BUCKET = 'conformance-bucket';

export class S3Harness implements SinkHarness {
  readonly name = 's3';
  readonly factory = s3Sink as unknown as SinkFactory;
  readonly ordering = 'objects in batch order (by first record position), records in object order';
  readonly partial = {
    kind: 'not-applicable',
    why: 'PutObject stores a whole object or nothing; the sink only reports partial for records that are not one JSON object, which the lane never passes (it parses every record)',
  } as const;
  private moto: ChildProcess | undefined;
  private admin: S3Client | undefined;
  private _proxy: FaultProxy | undefined;

  get proxy(): FaultProxy {
    if (!this._proxy) throw new Error('s3 harness not started');
    return this._proxy;
  }

  keylessKey(): string | null {
    return null;
  }

  async start(): Promise<void> {
    const { child, port } = await startMoto();
    this.moto = child;
    this.admin = new S3Client({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await this.admin.send(
      new CreateBucketCommand({
        Bucket: BUCKET,
        CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
      }),
    );
    this._proxy = new FaultProxy({ host: '127.0.0.1', port });
    await this._proxy.start();
  }

  async stop(): Promise<void> {
    await this._proxy?.close();
    this.admin?.destroy();
    await stopService(this.moto);
  }

  async destination(name: string, batchSize: number): Promise<Destination> {
    const prefix = `conformance/${name}`;
    return {
      body: {
        connection_type: s3Sink.connectionType,
        credentials: {
          region: 'eu-west-1',
          bucket_name: BUCKET,
          endpoint: `http://127.0.0.1:${this.proxy.port}`,
          access_key_id: 'test',
          secret_access_key: 'test-secret',
          prefix,
          // The lane batches S3 by flush_size (and rotate_interval, at least 10 s: the suite
          // keeps every stream's record count a multiple of flush_size, so no batch lingers).
          flush_size: batchSize,
        },
        format: 'NdjsonGzip',
      },
      received: () => this.read(`${prefix}/`),
    };
  }

  /** Every object under the prefix, in the order their batches were cut, each line one record. */
  private async read(prefix: string): Promise<Received[]> {
    const admin = this.admin as S3Client;
    const objects: { key: string; modified: number; place: [string, number, number] }[] = [];
    let token: string | undefined;
    do {
      const page = await admin.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        const key = o.Key as string;
        // <streamId>+<topic>+<partition>+<offset>.ndjson.gz: the first record's place on the log.
        const [, topic = '', partition = '0', offset = '0'] =
          /\+([^+]+)\+(\d+)\+(\d+)\.[^/]+$/.exec(key) ?? [];
        objects.push({
          key,
          modified: o.LastModified?.getTime() ?? 0,
          place: [topic, Number(partition), Number(offset)],
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    objects.sort(
      (a, b) =>
        a.modified - b.modified ||
        a.place[0].localeCompare(b.place[0]) ||
        a.place[1] - b.place[1] ||
        a.place[2] - b.place[2],
    );
    const out: Received[] = [];
    for (const object of objects) {
      const got = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: object.key }));
      const bytes = Buffer.from(
        await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      const text = gunzipSync(bytes).toString('utf8');
      for (const json of text.split('\n'))
        if (json !== '') out.push({ id: recordId(json), key: endpointKey(json), json });
    }
    return out;
  }
}
