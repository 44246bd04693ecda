/**
 * The Kinesis sink over real sockets: against moto_server (a Kinesis emulator: what arrives
 * on the shards), and against a fake of the Kinesis JSON 1.1 and STS APIs on node:http
 * (what the requests look like, and how each failure the real service can give is
 * classified).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/ports.js';
import { DeliveryError, type SinkBatch, type SinkContext, type SinkRecord } from '../types.js';
import { type KinesisCredentials, kinesisSink } from './index.js';

const MiB = 1024 * 1024;
const context: SinkContext = { organisationId: 42, timeoutMs: 5_000, now: () => Date.now() };
const STATIC_KEYS = { access_key_id: 'AKIDSTATICEXAMPLE', secret_access_key: 'static-secret-never-shown' };

// ---------------------------------------------------------------------------------------
// Records and helpers

/** An emnify-shaped event; `pad` grows it, non-ASCII text checks the bytes survive as UTF-8. */
function eventJson(id: number, endpointId: number | null, pad = 0): string {
  return JSON.stringify({
    timestamp: new Date(1_700_000_000_000 + id * 1000).toISOString().replace('Z', '+00:00'),
    alert: false,
    description: `PDP Context created · Zürich cell ${id}`,
    id,
    event_type: { id: 3, description: 'Create PDP Context' },
    organisation: { id: 42, name: 'Test Org' },
    endpoint: endpointId === null ? null : { id: endpointId, name: `Sensor ✓ ${endpointId}` },
    detail: { pad: 'x'.repeat(pad) },
  });
}

/** `count` records over `endpoints` endpoints; every 50th is organisation-level (no key). */
function makeBatch(count: number, { endpoints = 40, pad = 0, firstId = 1 } = {}): SinkBatch {
  const records: SinkRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstId + i;
    const endpointId = i % 50 === 49 ? null : 1000 + (i % endpoints);
    records.push({
      id,
      topic: 'events',
      partition: i % 3,
      offset: i,
      timestamp: 1_700_000_000_000 + id * 1000,
      key: endpointId === null ? null : String(endpointId),
      eventTypeId: 3,
      json: eventJson(id, endpointId, pad),
    });
  }
  return { streamId: 'a1b2c3d4', recordType: 'events', bare: false, records };
}

function expectedKey(record: SinkRecord): string {
  return record.key ?? String(record.partition);
}

/** The DeliveryError a promise rejects with (fails the test if it resolves or throws something else). */
async function deliveryError(promise: Promise<unknown>): Promise<DeliveryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeliveryError);
  return error as DeliveryError;
}

function sinkFor(credentials: KinesisCredentials, ctx: SinkContext = context) {
  return kinesisSink.create({ credentials, format: 'Json' }, ctx);
}

// ---------------------------------------------------------------------------------------
// config.schema.json

describe('config.schema.json', () => {
  const validate = new Ajv({ strict: true, allErrors: true }).compile(kinesisSink.credentialsSchema);

  it('accepts emnify-style credentials, an emulator setup, and nothing unknown', () => {
    expect(
      validate({
        region: 'af-south-1',
        stream_name: 'demo-stream',
        role_arn: 'arn:aws:iam::123456789012:role/role_for_kinesis_data_stream',
      }),
    ).toBe(true);
    expect(
      validate({
        region: 'us-east-1',
        stream_name: 'local',
        endpoint: 'http://127.0.0.1:4566',
        access_key_id: 'test',
        secret_access_key: 'test',
      }),
    ).toBe(true);
    expect(validate({ region: 'eu-west-1' })).toBe(false);
    expect(validate({ region: 'eu-west-1', stream_name: 's', bucket_name: 'b' })).toBe(false);
    expect(validate({ region: 'eu-west-1', stream_name: 's', access_key_id: 'AKID' })).toBe(false);
    expect(validate({ region: 'eu-west-1', stream_name: 's', endpoint: 'localhost:4566' })).toBe(false);
  });

  it('declares the factory as the registry expects', () => {
    expect(kinesisSink.connectionType).toBe('AwsKinesis');
    expect(kinesisSink.formats).toEqual(['Json']);
    expect(kinesisSink.secretFields).toEqual(['secret_access_key', 'session_token']);
  });
});

// ---------------------------------------------------------------------------------------
// moto_server: real Kinesis semantics (shards, hashing, sequence order)

const MOTO_MISSING = "moto_server did not start: install moto[server] (pip install 'moto[server]')";

async function startMoto(port: number): Promise<ChildProcess> {
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  let failure: Error | undefined;
  child.once('error', (e) => {
    failure = new Error(`${MOTO_MISSING} (${e.message})`);
  });
  child.once('exit', (code) => {
    failure ??= new Error(`${MOTO_MISSING}: it exited with ${code}: ${stderr}`);
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !failure) {
    const ready = await fetch(`http://127.0.0.1:${port}/moto-api/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw failure ?? new Error(`${MOTO_MISSING}: no answer on port ${port} within 20 s: ${stderr}`);
}

/** Every record of every shard, by shard, in sequence order. */
async function readAllShards(client: KinesisClient, streamName: string) {
  const { Shards = [] } = await client.send(new ListShardsCommand({ StreamName: streamName }));
  const byShard = new Map<string, { key: string; data: Buffer }[]>();
  for (const shard of Shards) {
    const shardId = shard.ShardId as string;
    const records: { key: string; data: Buffer }[] = [];
    let { ShardIterator: iterator } = await client.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    while (iterator) {
      const out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      for (const r of out.Records ?? [])
        records.push({ key: r.PartitionKey as string, data: Buffer.from(r.Data as Uint8Array) });
      if (!out.Records?.length) break;
      iterator = out.NextShardIterator;
    }
    byShard.set(shardId, records);
  }
  return byShard;
}

describe('against moto_server', () => {
  let moto: ChildProcess | undefined;
  let endpoint = '';
  let admin: KinesisClient;
  const killMoto = () => moto?.kill('SIGKILL');
  const motoCredentials = (stream_name: string): KinesisCredentials => ({
    region: 'us-east-1',
    stream_name,
    endpoint,
    ...STATIC_KEYS,
  });

  beforeAll(async () => {
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    process.once('exit', killMoto);
    moto = await startMoto(port);
    admin = new KinesisClient({
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
    });
    await admin.send(new CreateStreamCommand({ StreamName: 'two-shards', ShardCount: 2 }));
  }, 30_000);

  afterAll(() => {
    admin?.destroy();
    killMoto();
    process.off('exit', killMoto);
  });

  it('writes 1,200 records that read back byte for byte, keyed by endpoint, in order per endpoint', async () => {
    const batch = makeBatch(1200);
    const sink = sinkFor(motoCredentials('two-shards'));
    await sink.open();
    await sink.write(batch);
    await sink.close();

    const byShard = await readAllShards(admin, 'two-shards');
    const read = [...byShard.values()].flat();
    expect(read).toHaveLength(1200);
    for (const records of byShard.values()) expect(records.length).toBeGreaterThan(0);

    // Byte for byte, each record exactly once.
    const sent = new Map(batch.records.map((r) => [r.id, r]));
    const seen = new Set<number>();
    for (const { key, data } of read) {
      const id = JSON.parse(data.toString('utf8')).id as number;
      const record = sent.get(id) as SinkRecord;
      expect(data.equals(Buffer.from(record.json, 'utf8'))).toBe(true);
      expect(key).toBe(expectedKey(record));
      seen.add(id);
    }
    expect(seen.size).toBe(1200);

    // One key, one shard, and there in batch order.
    for (const key of new Set(read.map((r) => r.key))) {
      const shardsWithKey = [...byShard.values()].filter((records) => records.some((r) => r.key === key));
      expect(shardsWithKey).toHaveLength(1);
      const ids = (shardsWithKey[0] ?? [])
        .filter((r) => r.key === key)
        .map((r) => JSON.parse(r.data.toString()).id);
      expect(ids).toEqual(batch.records.filter((r) => expectedKey(r) === key).map((r) => r.id));
    }
  });

  it('reports a missing stream as permanent, on open and on write', async () => {
    const sink = sinkFor(motoCredentials('no-such-stream'));
    const onOpen = await deliveryError(sink.open());
    expect(onOpen).toMatchObject({ kind: 'permanent', code: 'SINK_KINESIS_STREAM_NOT_FOUND', status: 400 });
    expect(onOpen.message).toContain('Kinesis stream "no-such-stream"');
    const onWrite = await deliveryError(sink.write(makeBatch(3)));
    expect(onWrite).toMatchObject({ kind: 'permanent', code: 'SINK_KINESIS_STREAM_NOT_FOUND' });
    expect(onWrite.message).not.toContain(STATIC_KEYS.secret_access_key);
    await sink.close();
  });

  it('reports a closed port as retriable', async () => {
    const port = await freePort();
    const sink = sinkFor({ ...motoCredentials('two-shards'), endpoint: `http://127.0.0.1:${port}` });
    expect(await deliveryError(sink.open())).toMatchObject({
      kind: 'retriable',
      code: 'SINK_KINESIS_NETWORK',
    });
    const onWrite = await deliveryError(sink.write(makeBatch(3)));
    expect(onWrite).toMatchObject({
      kind: 'retriable',
      code: 'SINK_KINESIS_NETWORK',
      status: 'ECONNREFUSED',
    });
    await sink.close();
  });
});

// ---------------------------------------------------------------------------------------
// A fake of the Kinesis JSON 1.1 API (PutRecords, DescribeStreamSummary) and STS AssumeRole

interface PutRecordsCall {
  headers: IncomingMessage['headers'];
  streamName: string;
  entries: { data: Buffer; key: string; id: number }[];
}

type Answer = { status: number; body: unknown } | { delayMs: number };
/** Decides the answer to the n-th PutRecords call (0-based); undefined answers it normally. */
type PutRecordsBehaviour = (call: PutRecordsCall, n: number) => Answer | undefined;

class FakeKinesis {
  readonly calls: PutRecordsCall[] = [];
  readonly stsCalls: { headers: IncomingMessage['headers']; params: URLSearchParams }[] = [];
  /** Entry error codes by record id. */
  failIds = new Map<number, string>();
  behaviour: PutRecordsBehaviour = () => undefined;
  stsAnswer: { status: number; body: string } | undefined;
  private server: Server = createServer((req, res) => void this.handle(req, res));
  private sequence = 49_600_000_000_000_000_000_000_000_000_000_000_000_000_000n;
  endpoint = '';

  async start() {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop() {
    this.server.closeAllConnections();
    this.server.close();
  }

  reset() {
    this.calls.length = 0;
    this.stsCalls.length = 0;
    this.failIds.clear();
    this.behaviour = () => undefined;
    this.stsAnswer = undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const target = req.headers['x-amz-target'];
    if (!target) return this.sts(req, new URLSearchParams(body), res);
    const input = JSON.parse(body);
    if (target === 'Kinesis_20131202.DescribeStreamSummary') return this.describe(input.StreamName, res);
    if (target !== 'Kinesis_20131202.PutRecords')
      return json(res, 400, { __type: 'UnknownOperationException' });

    const call: PutRecordsCall = {
      headers: req.headers,
      streamName: input.StreamName,
      entries: input.Records.map((r: { Data: string; PartitionKey: string }) => {
        const data = Buffer.from(r.Data, 'base64');
        return { data, key: r.PartitionKey, id: JSON.parse(data.toString('utf8')).id };
      }),
    };
    this.calls.push(call);
    const answer = this.behaviour(call, this.calls.length - 1);
    if (answer && 'delayMs' in answer) await new Promise((r) => setTimeout(r, answer.delayMs));
    else if (answer) return json(res, answer.status, answer.body);
    if (res.destroyed) return;

    const records = call.entries.map((entry, i) => {
      const code = this.failIds.get(entry.id);
      if (code)
        return {
          ErrorCode: code,
          ErrorMessage: `Rate exceeded for shard shardId-00000000000${i % 2} in stream ${call.streamName} under account 123456789012.`,
        };
      this.sequence += 1n;
      return { SequenceNumber: String(this.sequence), ShardId: `shardId-00000000000${i % 2}` };
    });
    const failed = records.filter((r) => 'ErrorCode' in r).length;
    json(res, 200, { FailedRecordCount: failed, Records: records, EncryptionType: 'NONE' });
  }

  /** fake-stream is ACTIVE, creating and deleting are in those states; no-describe is denied. */
  private describe(streamName: string, res: ServerResponse) {
    const status = { 'fake-stream': 'ACTIVE', creating: 'CREATING', deleting: 'DELETING' }[streamName];
    if (streamName === 'no-describe')
      return json(res, 400, {
        __type: 'AccessDeniedException',
        message: `User: arn:aws:sts::123456789012:assumed-role/writer/s is not authorized to perform: kinesis:DescribeStreamSummary on resource: arn:aws:kinesis:eu-west-1:123456789012:stream/${streamName}`,
      });
    if (!status)
      return json(res, 400, {
        __type: 'ResourceNotFoundException',
        message: `Stream ${streamName} under account 123456789012 not found.`,
      });
    json(res, 200, {
      StreamDescriptionSummary: {
        StreamName: streamName,
        StreamARN: `arn:aws:kinesis:eu-west-1:123456789012:stream/${streamName}`,
        StreamStatus: status,
        StreamModeDetails: { StreamMode: 'PROVISIONED' },
        RetentionPeriodHours: 24,
        StreamCreationTimestamp: 1_700_000_000,
        EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
        EncryptionType: 'NONE',
        OpenShardCount: 2,
        ConsumerCount: 0,
      },
    });
  }

  /** STS speaks the AWS query protocol: a form body in, XML out. */
  private sts(req: IncomingMessage, params: URLSearchParams, res: ServerResponse) {
    this.stsCalls.push({ headers: req.headers, params });
    if (this.stsAnswer) {
      res.writeHead(this.stsAnswer.status, { 'content-type': 'text/xml' });
      return res.end(this.stsAnswer.body);
    }
    res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': 'sts-1' });
    res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:${params.get('RoleSessionName')}</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/writer/${params.get('RoleSessionName')}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIATEMPORARYKEY</AccessKeyId>
      <SecretAccessKey>temporary-secret</SecretAccessKey>
      <SessionToken>temporary-session-token</SessionToken>
      <Expiration>${new Date(Date.now() + 3_600_000).toISOString()}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>sts-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>`);
  }
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': `req-${Date.now()}`,
  });
  res.end(JSON.stringify(body));
}

const awsError = (status: number, type: string, message: string): Answer => ({
  status,
  body: { __type: type, message },
});

describe('against a fake of the Kinesis API', () => {
  const fake = new FakeKinesis();
  const fakeCredentials = (extra: Partial<KinesisCredentials> = {}): KinesisCredentials => ({
    region: 'eu-west-1',
    stream_name: 'fake-stream',
    endpoint: fake.endpoint,
    ...STATIC_KEYS,
    ...extra,
  });

  beforeAll(() => fake.start());
  afterAll(() => fake.stop());

  async function write(batch: SinkBatch, extra: Partial<KinesisCredentials> = {}, ctx = context) {
    fake.calls.length = 0;
    const sink = sinkFor(fakeCredentials(extra), ctx);
    try {
      await sink.write(batch);
    } finally {
      await sink.close();
    }
  }

  it('sends 1,200 records as 3 signed JSON 1.1 PutRecords requests of 500, 500 and 200', async () => {
    fake.reset();
    const batch = makeBatch(1200);
    const sink = sinkFor(fakeCredentials());
    await sink.open();
    await sink.write(batch);
    await sink.close();

    expect(fake.calls.map((c) => c.entries.length)).toEqual([500, 500, 200]);
    const sent = fake.calls.flatMap((c) => c.entries);
    sent.forEach((entry, i) => {
      const record = batch.records[i] as SinkRecord;
      expect(entry.data.equals(Buffer.from(record.json, 'utf8'))).toBe(true);
      expect(entry.key).toBe(expectedKey(record));
    });
    const { headers, streamName } = fake.calls[0] as PutRecordsCall;
    expect(streamName).toBe('fake-stream');
    expect(headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDSTATICEXAMPLE\/\d{8}\/eu-west-1\/kinesis\/aws4_request/,
    );
  });

  it('reports exactly the entries Kinesis failed as partial, over all requests of the batch', async () => {
    fake.reset();
    const batch = makeBatch(600);
    const idAt = (i: number) => (batch.records[i] as SinkRecord).id;
    fake.failIds.set(idAt(3), 'ProvisionedThroughputExceededException');
    fake.failIds.set(idAt(7), 'InternalFailure');
    fake.failIds.set(idAt(510), 'ProvisionedThroughputExceededException');

    const error = await deliveryError(write(batch));
    expect(error).toMatchObject({
      kind: 'partial',
      code: 'SINK_KINESIS_PARTIAL',
      failed: [3, 7, 510],
      status: 'ProvisionedThroughputExceededException',
    });
    expect(error.message).toContain('3 of 600 records not accepted');
    expect(error.message).toContain('Rate exceeded for shard');
    expect(fake.calls).toHaveLength(2);
  });

  it('adds every record of a request that failed as a whole, and of those not sent after it', async () => {
    fake.reset();
    fake.failIds.set(10, 'InternalFailure'); // index 9
    fake.behaviour = (_, n) =>
      n === 1 ? awsError(500, 'InternalFailure', 'Internal service failure.') : undefined;
    const error = await deliveryError(write(makeBatch(1200)));
    expect(error.kind).toBe('partial');
    expect(error.failed).toEqual([9, ...Array.from({ length: 700 }, (_, i) => 500 + i)]);
    expect(fake.calls).toHaveLength(2); // the third request was not sent
  });

  it('is retriable when nothing was accepted and every entry failed retriably', async () => {
    fake.reset();
    const batch = makeBatch(20);
    for (const r of batch.records) fake.failIds.set(r.id, 'ProvisionedThroughputExceededException');
    const error = await deliveryError(write(batch));
    expect(error).toMatchObject({
      kind: 'retriable',
      code: 'SINK_KINESIS_RECORDS_FAILED',
      failed: undefined,
    });
  });

  it('is permanent when nothing was accepted and an entry failed on the stream KMS key', async () => {
    fake.reset();
    const batch = makeBatch(20);
    for (const r of batch.records)
      fake.failIds.set(r.id, r.id === 5 ? 'KMSAccessDeniedException' : 'InternalFailure');
    const error = await deliveryError(write(batch));
    expect(error).toMatchObject({ kind: 'permanent', code: 'SINK_KINESIS_RECORDS_REJECTED' });
  });

  it.each([
    [
      awsError(400, 'ProvisionedThroughputExceededException', 'Rate exceeded for stream fake-stream.'),
      'retriable',
      'SINK_KINESIS_THROTTLED',
    ],
    [awsError(400, 'LimitExceededException', 'Rate exceeded.'), 'retriable', 'SINK_KINESIS_THROTTLED'],
    [awsError(500, 'InternalFailure', 'Internal service failure.'), 'retriable', 'SINK_KINESIS_HTTP_5XX'],
    [{ status: 503, body: '' }, 'retriable', 'SINK_KINESIS_HTTP_5XX'],
    [
      awsError(400, 'ResourceNotFoundException', 'Stream fake-stream not found.'),
      'permanent',
      'SINK_KINESIS_STREAM_NOT_FOUND',
    ],
    [
      awsError(400, 'AccessDeniedException', 'User is not authorized to perform: kinesis:PutRecords'),
      'permanent',
      'SINK_KINESIS_ACCESS_DENIED',
    ],
    [
      awsError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'),
      'permanent',
      'SINK_KINESIS_ACCESS_DENIED',
    ],
    [awsError(400, 'KMSDisabledException', 'The KMS key is disabled.'), 'permanent', 'SINK_KINESIS_KMS'],
    [
      awsError(400, 'ValidationException', '1 validation error detected'),
      'permanent',
      'SINK_KINESIS_REJECTED',
    ],
  ] as const)('classifies a whole-call %j as %s %s', async (answer, kind, code) => {
    fake.reset();
    fake.behaviour = () => answer;
    const error = await deliveryError(write(makeBatch(5)));
    expect(error).toMatchObject({ kind, code });
    if ('status' in answer) expect(error.status).toBe(answer.status);
    expect(error.message).toContain('Kinesis stream "fake-stream" (eu-west-1 at http://127.0.0.1:');
    expect(error.message).not.toContain(STATIC_KEYS.secret_access_key);
  });

  it('splits a batch of more than 5 MiB into requests of at most 5 MiB', async () => {
    fake.reset();
    const batch = makeBatch(12, { pad: 600 * 1024 }); // ~7.2 MB in all
    await write(batch);
    expect(fake.calls.length).toBe(2);
    for (const call of fake.calls) {
      const bytes = call.entries.reduce((sum, e) => sum + e.data.length + Buffer.byteLength(e.key), 0);
      expect(bytes).toBeLessThanOrEqual(5 * MiB);
    }
    expect(fake.calls.flatMap((c) => c.entries.map((e) => e.id))).toEqual(batch.records.map((r) => r.id));
  });

  it('rejects a record over 1 MiB as permanent, naming it, without sending anything', async () => {
    fake.reset();
    const batch = makeBatch(5);
    const big = batch.records[2] as SinkRecord;
    big.json = eventJson(big.id, 1002, MiB);
    const error = await deliveryError(write(batch));
    expect(error).toMatchObject({ kind: 'permanent', code: 'SINK_KINESIS_RECORD_TOO_LARGE' });
    expect(error.message).toContain(`id ${big.id}`);
    expect(fake.calls).toHaveLength(0);
  });

  it('assumes role_arn with external id org-<organisation> and writes with the temporary credentials', async () => {
    fake.reset();
    const role_arn = 'arn:aws:iam::123456789012:role/writer';
    await write(makeBatch(3), { role_arn });

    expect(fake.stsCalls).toHaveLength(1);
    const sts = fake.stsCalls[0] as (typeof fake.stsCalls)[number];
    expect(Object.fromEntries(sts.params)).toMatchObject({
      Action: 'AssumeRole',
      RoleArn: role_arn,
      ExternalId: 'org-42',
      RoleSessionName: 'data-streamer-org-42',
    });
    expect(sts.headers.authorization).toMatch(/Credential=AKIDSTATICEXAMPLE\/\d{8}\/eu-west-1\/sts\//);
    const put = fake.calls[0] as PutRecordsCall;
    expect(put.headers.authorization).toMatch(/Credential=ASIATEMPORARYKEY\/\d{8}\/eu-west-1\/kinesis\//);
    expect(put.headers['x-amz-security-token']).toBe('temporary-session-token');
  });

  it('reports a role that cannot be assumed as permanent', async () => {
    fake.reset();
    fake.stsAnswer = {
      status: 403,
      body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>sts-2</RequestId></ErrorResponse>`,
    };
    const error = await deliveryError(
      write(makeBatch(3), { role_arn: 'arn:aws:iam::123456789012:role/writer' }),
    );
    expect(error).toMatchObject({ kind: 'permanent', code: 'SINK_KINESIS_ASSUME_ROLE' });
    expect(error.message).toContain('arn:aws:iam::123456789012:role/writer');
    expect(error.message).toContain('not authorized');
    expect(fake.calls).toHaveLength(0);
  });

  it('times out a request that takes longer than timeoutMs, retriably', async () => {
    fake.reset();
    fake.behaviour = () => ({ delayMs: 1_500 });
    const error = await deliveryError(write(makeBatch(3), {}, { ...context, timeoutMs: 300 }));
    expect(error).toMatchObject({ kind: 'retriable', code: 'SINK_KINESIS_TIMEOUT' });
  });

  it('stops on the abort signal, retriably', async () => {
    fake.reset();
    fake.behaviour = () => ({ delayMs: 1_500 });
    const sink = sinkFor(fakeCredentials());
    const aborted = new AbortController();
    aborted.abort();
    expect(await deliveryError(sink.write(makeBatch(3), aborted.signal))).toMatchObject({
      kind: 'retriable',
      code: 'SINK_KINESIS_ABORTED',
    });
    expect(fake.calls).toHaveLength(0);
    const error = await deliveryError(sink.write(makeBatch(3), AbortSignal.timeout(200)));
    expect(error).toMatchObject({ kind: 'retriable', code: 'SINK_KINESIS_ABORTED' });
    await sink.close();
  });

  it.each([
    ['fake-stream', undefined, undefined],
    ['no-describe', undefined, undefined], // emnify's documented role policy lacks DescribeStreamSummary
    ['creating', 'retriable', 'SINK_KINESIS_STREAM_BUSY'],
    ['deleting', 'permanent', 'SINK_KINESIS_STREAM_DELETING'],
    ['gone', 'permanent', 'SINK_KINESIS_STREAM_NOT_FOUND'],
  ] as const)('opens stream %s: %s', async (stream_name, kind, code) => {
    fake.reset();
    const sink = sinkFor(fakeCredentials({ stream_name }));
    if (!kind) await sink.open();
    else {
      const error = await deliveryError(sink.open());
      expect(error).toMatchObject({ kind, code });
      expect(error.message).toContain(`Kinesis stream "${stream_name}"`);
    }
    await sink.close();
  });
});
