/**
 * Kinesis (`AwsKinesis`): moto_server as a child process on a free port; one Kinesis stream
 * of 2 shards per destination, read back with GetShardIterator(TRIM_HORIZON)/GetRecords
 * over every shard.
 */
import type { ChildProcess } from 'node:child_process';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { kinesisSink } from '../../../connectors/sinks/kinesis/index.js';
import type { SinkFactory } from '../../../connectors/sinks/types.js';
import {
  type Destination,
  FaultProxy,
  type Received,
  recordId,
  type SinkHarness,
  stopService,
} from '../sink-harness.js';
import { startMoto } from './s3.js';

const REGION = 'us-east-1';

export class KinesisHarness implements SinkHarness {
  readonly name = 'kinesis';
  readonly factory = kinesisSink as unknown as SinkFactory;
  readonly ordering = 'per shard, in sequence-number order (an endpoint is one partition key, so one shard)';
  readonly partial = {
    kind: 'not-applicable',
    why: 'moto accepts every PutRecords entry; per-entry failures need a fake Kinesis (covered in connectors/sinks/kinesis/kinesis.test.ts)',
  } as const;
  private moto: ChildProcess | undefined;
  private admin: KinesisClient | undefined;
  private _proxy: FaultProxy | undefined;

  get proxy(): FaultProxy {
    if (!this._proxy) throw new Error('kinesis harness not started');
    return this._proxy;
  }

  /** Records without an endpoint are keyed by their output partition (the sink's rule). */
  keylessKey(partition: number): string | null {
    return String(partition);
  }

  async start(): Promise<void> {
    const { child, port } = await startMoto();
    this.moto = child;
    this.admin = new KinesisClient({
      region: REGION,
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
    });
    this._proxy = new FaultProxy({ host: '127.0.0.1', port });
    await this._proxy.start();
  }

  async stop(): Promise<void> {
    await this._proxy?.close();
    this.admin?.destroy();
    await stopService(this.moto);
  }

  async destination(name: string, _batchSize: number): Promise<Destination> {
    const admin = this.admin as KinesisClient;
    const stream = `conformance-${name}`;
    await admin.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
    for (let i = 0; i < 50; i++) {
      const { StreamDescriptionSummary: s } = await admin.send(
        new DescribeStreamSummaryCommand({ StreamName: stream }),
      );
      if (s?.StreamStatus === 'ACTIVE') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
      body: {
        connection_type: kinesisSink.connectionType,
        credentials: {
          region: REGION,
          stream_name: stream,
          endpoint: `http://127.0.0.1:${this.proxy.port}`,
          access_key_id: 'test',
          secret_access_key: 'test-secret',
        },
      },
      received: () => this.read(stream),
    };
  }

  /** Every record of every shard: shard after shard, each in sequence order. */
  private async read(stream: string): Promise<Received[]> {
    const admin = this.admin as KinesisClient;
    const { Shards = [] } = await admin.send(new ListShardsCommand({ StreamName: stream }));
    const out: Received[] = [];
    for (const shard of Shards) {
      let { ShardIterator: iterator } = await admin.send(
        new GetShardIteratorCommand({
          StreamName: stream,
          ShardId: shard.ShardId as string,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      while (iterator) {
        const page = await admin.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
        for (const r of page.Records ?? []) {
          const json = Buffer.from(r.Data as Uint8Array).toString('utf8');
          out.push({ id: recordId(json), key: r.PartitionKey ?? null, json });
        }
        if (!page.Records?.length) break;
        iterator = page.NextShardIterator;
      }
    }
    return out;
  }
}
