/**
 * The S3 sink against moto_server (S3 and STS over real HTTP on 127.0.0.1), plus two tiny
 * servers for what moto cannot do: answer 503 SlowDown / 500, and never answer at all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Ajv } from 'ajv';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/ports.js';
import { DeliveryError, type Sink, type SinkBatch, type SinkRecord } from '../types.js';
import type { S3Credentials } from './config.js';
import { s3Sink } from './index.js';

const INSTALL_HINT = "moto_server could not be started: install moto[server] (pip install 'moto[server]')";

// ---------------------------------------------------------------- local services

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) stop(child);
});

/** Kills a started service and resolves once it has exited (and been reaped). */
function stop(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    // Started detached: the pyenv shim and moto share one process group, ours.
    process.kill(-child.pid, 'SIGKILL');
  } catch {}
  return exited;
}

interface Moto {
  url: string;
  child: ChildProcess;
}

async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
    detached: true,
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const failed = new Promise<never>((_, reject) => {
    child.on('error', (err) => reject(new Error(`${INSTALL_HINT}: ${err.message}`)));
    child.on('exit', (code) => reject(new Error(`${INSTALL_HINT}: exited with ${code}\n${stderr}`)));
  });
  failed.catch(() => {});
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await Promise.race([
      fetch(`${url}/moto-api/`).then(
        (r) => r.ok,
        () => false,
      ),
      failed,
    ]);
    if (ready) return { url, child };
    if (Date.now() > deadline) {
      await stop(child);
      throw new Error(`${INSTALL_HINT}: no answer at ${url}/moto-api/ within 20 s\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function adminClient(endpoint: string): S3Client {
  return new S3Client({
    region: 'eu-west-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

// ---------------------------------------------------------------- records (emnify reference examples)

/** Usage record, data (emnify-data-streamer.md §2.3). */
const USAGE_DATA = {
  cost: 0.00188512,
  id: 333333333333333,
  operator: { id: 5, name: 'Telefonica O2', mnc: '07', country: { id: 74, mcc: '262', name: 'Germany' } },
  organisation: { id: 12345, name: 'Example Organization' },
  tariff: { id: 1, name: 'Internal Test Data Plan', ratezone: { id: 2, name: 'Area 2' } },
  traffic_type: { id: 5, description: 'Data' },
  endpoint: {
    id: 123456789,
    name: 'Example Device',
    ip_address: '192.0.2.7',
    tags: 'V1',
    imei: '8677300511111142',
    balance: null,
  },
  imsi: '295050901064821',
  volume: { total: 0.219933, rx: 0.172848, tx: 0.047085 },
  start_timestamp: '2022-04-26T11:53:43Z',
  sim: {
    id: 3324192,
    iccid: '89883030000080139311',
    msisdn: '423663920123456',
    production_date: '2020-09-09T06:42:59Z',
  },
  currency: { id: 1, code: 'EUR', symbol: '€' },
  end_timestamp: '2024-02-15T14:56:15.260Z',
  imsi_id: 9624042,
  session_id: '722aeb56-c4de-4753-ac23-4f99c1980c5e',
};
const USAGE_SMS = {
  ...USAGE_DATA,
  id: 333333333333334,
  cost: 0.07,
  traffic_type: { id: 6, description: 'SMS' },
  volume: { total: 1, rx: 1, tx: 0 },
  tariff: { id: 1, name: 'Internal Test Data Plan', ratezone: { id: 1, name: 'Area 1' } },
};

/** Create PDP Context event (§1.5). */
const EVENT_PDP = {
  timestamp: '2021-10-27T08:38:02.000Z',
  alert: false,
  description: 'New PDP Context successfully activated with SGSN CP=60.195.159.61, DP=117.72.59.30.',
  id: 31877325941,
  event_type: { id: 3, description: 'Create PDP Context' },
  event_source: { id: 0, description: 'Network' },
  event_severity: { id: 0, description: 'Info' },
  organisation: { id: 1825, name: 'Test Org' },
  endpoint: {
    id: 20200078,
    imei: '960407272413998',
    ip_address: '189.79.243.228',
    name: 'Test Sim 2',
    tags: null,
  },
  sim: { iccid: '5746435358418205328', id: 646486, production_date: '2020-12-23T13:02:11.000Z' },
  imsi: { id: 12105613, import_date: '2020-12-23T13:02:11.000Z', imsi: '693601932595201' },
  detail: {
    country: { mcc: '262', name: 'Germany', country_code: '49', iso_code: 'de', id: 74 },
    id: 3,
    session_id: 'd12c574f-e219-45a4-8836-d17a50f66fb1',
    pdp_context: {
      apn: 'em',
      rat_type: 2,
      rac: null,
      tunnel_created: '2021-10-27T08:38:02',
      mcc: '262',
      mnc: '02',
    },
    name: 'Vodafone',
  },
};

/** Update location (§1.3 shape): arrays in `detail` become JSON-text cells. */
const EVENT_LOCATION = {
  timestamp: '2021-10-27T08:40:00.000Z',
  alert: false,
  description: 'New location received from VLR for IMSI=693601932595201, now attached to VLR=491770940000.',
  id: 31877325942,
  event_type: { id: 1, description: 'Update location' },
  event_source: { id: 0, description: 'Network' },
  event_severity: { id: 0, description: 'Info' },
  organisation: { id: 1825, name: 'Test Org' },
  endpoint: {
    id: 20200078,
    imei: '960407272413998',
    ip_address: '189.79.243.228',
    name: 'Test Sim 2',
    tags: null,
  },
  detail: {
    id: 2,
    name: 'Telefonica O2',
    country: { id: 74, name: 'Germany', country_code: '49', mcc: '262', iso_code: 'de' },
    tapcode: [{ id: 2, tapcode: 'DEUD2' }],
    mnc: [{ id: 2, mnc: '07' }],
  },
};

const T_USAGE = Date.parse('2024-02-15T14:56:15.260Z');
const T_EVENT = Date.parse('2021-10-27T08:38:02.000Z');

function record(json: string, offset: number, timestamp: number, partition = 3): SinkRecord {
  return { id: offset, topic: 'ds-out', partition, offset, timestamp, key: '20200078', json };
}

function batchOf(
  streamId: string,
  recordType: 'usage' | 'events',
  jsons: string[],
  timestamp: number,
  firstOffset = 1200,
): SinkBatch {
  return {
    streamId,
    recordType,
    bare: false,
    records: jsons.map((json, i) => record(json, firstOffset + i, timestamp)),
  };
}

/** An independent statement of emnify's column rule, over JSON.parse (exact for these examples). */
function referenceFlatten(value: Record<string, unknown>, prefix = '', out: Record<string, string> = {}) {
  for (const [name, v] of Object.entries(value)) {
    const column = prefix ? `${prefix}_${name}` : name;
    if (v === null) out[column] = '';
    else if (Array.isArray(v)) out[column] = JSON.stringify(v);
    else if (typeof v === 'object') {
      if (Object.keys(v).length === 0) out[column] = '{}';
      else referenceFlatten(v as Record<string, unknown>, column, out);
    } else out[column] = String(v);
  }
  return out;
}

// ---------------------------------------------------------------- the suite

const context = { organisationId: 1825, timeoutMs: 5_000, now: () => Date.now() };
let moto: Moto;
let admin: S3Client;
const BUCKET = 'emnify-datastreamer';

function credentials(extra: Partial<S3Credentials> = {}): S3Credentials {
  return {
    region: 'eu-west-1',
    bucket_name: BUCKET,
    endpoint: moto.url,
    access_key_id: 'test',
    secret_access_key: 'test-secret',
    ...extra,
  };
}

async function openSink(extra: Partial<S3Credentials> = {}, format = 'Csv'): Promise<Sink> {
  const sink = s3Sink.create({ credentials: credentials(extra), format }, context);
  await sink.open();
  return sink;
}

async function keys(prefix: string): Promise<string[]> {
  const listed = await admin.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key ?? '');
}

async function getObject(key: string) {
  const got = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return { object: got, bytes: Buffer.from(await (got.Body?.transformToByteArray() ?? new Uint8Array())) };
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

beforeAll(async () => {
  moto = await startMoto();
  admin = adminClient(moto.url);
  await admin.send(
    new CreateBucketCommand({
      Bucket: BUCKET,
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
    }),
  );
}, 30_000);

afterAll(async () => {
  admin?.destroy();
  if (moto) await stop(moto.child);
});

describe('credentials schema and batching', () => {
  const validate = new Ajv({ allErrors: true }).compile(s3Sink.credentialsSchema);

  it('accepts emnify credentials and ours', () => {
    expect(
      validate({
        region: 'eu-west-1',
        bucket_name: BUCKET,
        role_arn: 'arn:aws:iam::123456789012:role/datastreamer',
      }),
    ).toBe(true);
    expect(validate(credentials({ prefix: 'ds/', flush_size: 10, rotate_interval: 900_000 }))).toBe(true);
  });

  it('rejects flush_size 5, a missing bucket_name, unknown fields and a lone secret', () => {
    expect(validate({ region: 'eu-west-1', bucket_name: BUCKET, flush_size: 5 })).toBe(false);
    expect(validate.errors?.[0]?.instancePath).toBe('/flush_size');
    expect(validate({ region: 'eu-west-1' })).toBe(false);
    expect(validate.errors?.[0]?.params).toEqual({ missingProperty: 'bucket_name' });
    expect(validate({ region: 'eu-west-1', bucket_name: BUCKET, bucket: 'x' })).toBe(false);
    expect(validate({ region: 'eu-west-1', bucket_name: BUCKET, secret_access_key: 's' })).toBe(false);
  });

  it("maps flush_size and rotate_interval to the lane's batching, with emnify's defaults", () => {
    expect(s3Sink.batching?.({ region: 'eu-west-1', bucket_name: BUCKET })).toEqual({
      maxRecords: 10_000,
      lingerMs: 10_000,
    });
    expect(
      s3Sink.batching?.({
        region: 'eu-west-1',
        bucket_name: BUCKET,
        flush_size: 500,
        rotate_interval: 60_000,
      }),
    ).toEqual({ maxRecords: 500, lingerMs: 60_000 });
    expect(s3Sink.formats).toEqual(['Csv', 'NdjsonGzip']);
    expect(s3Sink.secretFields).toEqual(['secret_access_key', 'session_token']);
  });
});

describe('Csv', () => {
  it('writes usage records under the documented key, with emnify column names', async () => {
    const sink = await openSink({ prefix: 'datastreamer' });
    await sink.write(
      batchOf(
        '689d97ba',
        'usage',
        [USAGE_DATA, USAGE_SMS].map((r) => JSON.stringify(r)),
        T_USAGE,
      ),
    );
    const key = 'datastreamer/689d97ba/usage/year=2024/month=02/day=15/hour=14/689d97ba+ds-out+3+1200.csv';
    expect(await keys('datastreamer/689d97ba/')).toEqual([key]);

    const { object, bytes } = await getObject(key);
    expect(object.ContentType).toBe('text/csv; charset=utf-8');
    const text = bytes.toString('utf8');
    expect(text.charCodeAt(0)).not.toBe(0xfeff);
    expect(text.split('\n')[0]).toBe(
      'cost,id,operator_id,operator_name,operator_mnc,operator_country_id,operator_country_mcc,' +
        'operator_country_name,organisation_id,organisation_name,tariff_id,tariff_name,tariff_ratezone_id,' +
        'tariff_ratezone_name,traffic_type_id,traffic_type_description,endpoint_id,endpoint_name,' +
        'endpoint_ip_address,endpoint_tags,endpoint_imei,endpoint_balance,imsi,volume_total,volume_rx,volume_tx,' +
        'start_timestamp,sim_id,sim_iccid,sim_msisdn,sim_production_date,currency_id,currency_code,' +
        'currency_symbol,end_timestamp,imsi_id,session_id',
    );
    expect(parse(text, { columns: true })).toEqual([
      referenceFlatten(USAGE_DATA),
      referenceFlatten(USAGE_SMS),
    ]);
    await sink.close();
  });

  it('writes events with flattened columns, JSON-text arrays, and the union of columns', async () => {
    const sink = await openSink();
    await sink.write(
      batchOf(
        'ev01',
        'events',
        [EVENT_PDP, EVENT_LOCATION].map((r) => JSON.stringify(r)),
        T_EVENT,
      ),
    );
    const [key] = await keys('ev01/');
    expect(key).toBe('ev01/events/year=2021/month=10/day=27/hour=08/ev01+ds-out+3+1200.csv');

    const text = (await getObject(key ?? '')).bytes.toString('utf8');
    const header = text.split('\n')[0]?.split(',') ?? [];
    // Columns emnify names in its own material (UPG2019, CODELAB), as these JSON shapes give them.
    for (const column of [
      'event_type_description',
      'endpoint_id',
      'endpoint_name',
      'endpoint_imei',
      'endpoint_ip_address',
      'endpoint_tags',
      'event_source_id',
      'sim_id',
      'sim_iccid',
      'sim_production_date',
      'imsi_id',
      'imsi_imsi',
    ])
      expect(header).toContain(column);
    // First-seen order over the batch: the location event's own columns come after the PDP event's.
    const pdp = referenceFlatten(EVENT_PDP);
    const location = referenceFlatten(EVENT_LOCATION);
    expect(header).toEqual([...new Set([...Object.keys(pdp), ...Object.keys(location)])]);

    const rows = parse(text, { columns: true }) as Record<string, string>[];
    const blank = Object.fromEntries(header.map((c) => [c, '']));
    expect(rows).toEqual([
      { ...blank, ...pdp },
      { ...blank, ...location },
    ]);
    expect(rows[1]?.detail_tapcode).toBe('[{"id":2,"tapcode":"DEUD2"}]');
    expect(rows[0]?.endpoint_tags).toBe('');
    await sink.close();
  });

  it('keeps numbers and arrays as sent, quotes text safely, and names 2019-style shapes as emnify did', async () => {
    const json =
      '{"id": 9007199254740993, "cost": 0.0000001, "volume": {"total": 1.50}, ' +
      '"description": "a, \\"quoted\\"\\r\\nline € \\u00e9", "empty": {}, "list": [1, {"a": null}], ' +
      '"msisdn": {"msisdn": "423663920123456"}, "operator": {"mncs": "07"}, ' +
      '"event_source": {"id": 0, "name": "Network"}, "user": null, "alert": true}';
    const sink = await openSink();
    await sink.write(batchOf('raw01', 'events', [json], T_EVENT));
    const [key] = await keys('raw01/');
    const rows = parse((await getObject(key ?? '')).bytes.toString('utf8'), { columns: true });
    expect(rows).toEqual([
      {
        id: '9007199254740993',
        cost: '0.0000001',
        volume_total: '1.50',
        description: 'a, "quoted"\r\nline € é',
        empty: '{}',
        list: '[1, {"a": null}]',
        msisdn_msisdn: '423663920123456',
        operator_mncs: '07',
        event_source_id: '0',
        event_source_name: 'Network',
        user: '',
        alert: 'true',
      },
    ]);
    await sink.close();
  });

  it('overwrites the object when the same batch is written again', async () => {
    const sink = await openSink();
    const batch = batchOf('again01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE);
    await sink.write(batch);
    const before = (await getObject((await keys('again01/'))[0] ?? '')).bytes;
    await sink.write(batch);
    const after = await keys('again01/');
    expect(after).toHaveLength(1);
    expect((await getObject(after[0] ?? '')).bytes.equals(before)).toBe(true);
    await sink.close();
  });

  it('writes the valid records and reports the others as partial', async () => {
    const sink = await openSink();
    const batch = batchOf('part01', 'usage', [JSON.stringify(USAGE_DATA), '{"id": 1,', '[1]'], T_USAGE);
    const err = await failure(sink.write(batch));
    expect([err.code, err.kind, err.failed]).toEqual(['SINK_S3_RECORD_INVALID', 'partial', [1, 2]]);
    const rows = parse((await getObject((await keys('part01/'))[0] ?? '')).bytes.toString('utf8'), {
      columns: true,
    });
    expect(rows).toEqual([referenceFlatten(USAGE_DATA)]);

    const none = await failure(sink.write(batchOf('part02', 'usage', ['not json'], T_USAGE)));
    expect([none.code, none.kind]).toEqual(['SINK_S3_RECORD_INVALID', 'permanent']);
    expect(await keys('part02/')).toEqual([]);
    await sink.close();
  });
});

describe('NdjsonGzip', () => {
  it('stores the exact JSON lines, gzip-compressed', async () => {
    const jsons = [
      JSON.stringify(EVENT_PDP),
      '{"id": 9007199254740993, "cost": 0.0000001}',
      JSON.stringify(EVENT_LOCATION),
    ];
    const sink = await openSink({}, 'NdjsonGzip');
    await sink.write(batchOf('nd01', 'events', jsons, T_EVENT, 7));
    const key = 'nd01/events/year=2021/month=10/day=27/hour=08/nd01+ds-out+3+7.ndjson.gz';
    expect(await keys('nd01/')).toEqual([key]);
    const { object, bytes } = await getObject(key);
    expect(object.ContentType).toBe('application/x-ndjson');
    expect(object.ContentEncoding).toBe('gzip');
    expect(gunzipSync(bytes).toString('utf8')).toBe(jsons.map((j) => `${j}\n`).join(''));
    await sink.close();
  });
});

describe('credentials', () => {
  it('assumes role_arn through STS (at the custom endpoint) and writes', async () => {
    const sink = await openSink({ role_arn: 'arn:aws:iam::123456789012:role/datastreamer' });
    await sink.write(batchOf('role01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE));
    expect(await keys('role01/')).toHaveLength(1);
    await sink.close();
  });
});

describe('failures', () => {
  it('a missing bucket is permanent, from open and from write', async () => {
    const sink = s3Sink.create(
      { credentials: credentials({ bucket_name: 'no-such-bucket' }), format: 'Csv' },
      context,
    );
    const opened = await failure(sink.open());
    expect([opened.code, opened.kind, opened.status]).toEqual(['SINK_S3_BUCKET_NOT_FOUND', 'permanent', 404]);
    expect(opened.message).toContain('no-such-bucket');
    const written = await failure(
      sink.write(batchOf('nb01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE)),
    );
    expect([written.code, written.kind, written.status]).toEqual([
      'SINK_S3_BUCKET_NOT_FOUND',
      'permanent',
      404,
    ]);
    expect(written.message).toContain('s3://no-such-bucket/nb01/usage/');
    expect(written.message).not.toContain('test-secret');
    await sink.close();
  });

  it('an already aborted attempt is retriable', async () => {
    const sink = await openSink();
    const err = await failure(
      sink.write(batchOf('ab01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE), AbortSignal.abort()),
    );
    expect([err.code, err.kind]).toEqual(['SINK_S3_ABORTED', 'retriable']);
    await sink.close();
  });

  it('unknown keys are permanent; once the store is gone, writes and open are retriable', async () => {
    // moto checks signatures against its IAM when INITIAL_NO_AUTH_ACTION_COUNT is 0.
    const strict = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: '0' });
    const destination = { credentials: credentials({ endpoint: strict.url }), format: 'Csv' };
    const sink = s3Sink.create(destination, context);
    await sink.open(); // HeadBucket answers 403 without a body: it passes (see sink.ts)
    const batch = batchOf('gone01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE);
    const denied = await failure(sink.write(batch));
    expect([denied.code, denied.kind, denied.status]).toEqual(['SINK_S3_BAD_CREDENTIALS', 'permanent', 403]);
    expect(denied.message).toContain('InvalidAccessKeyId');
    expect(denied.message).not.toContain('test-secret');

    // With role_arn, STS refuses the unknown master keys: open() fails, naming the role.
    const role = 'arn:aws:iam::123456789012:role/datastreamer';
    const refused = await failure(
      s3Sink
        .create(
          { credentials: credentials({ endpoint: strict.url, role_arn: role }), format: 'Csv' },
          context,
        )
        .open(),
    );
    expect([refused.code, refused.kind, refused.status]).toEqual([
      'SINK_S3_BAD_CREDENTIALS',
      'permanent',
      403,
    ]);
    expect(refused.message).toContain(role);

    await stop(strict.child);
    const gone = await failure(sink.write(batch));
    expect([gone.code, gone.kind]).toEqual(['SINK_S3_NETWORK', 'retriable']);
    const reopened = await failure(s3Sink.create(destination, context).open());
    expect([reopened.code, reopened.kind, reopened.status]).toEqual([
      'SINK_S3_NETWORK',
      'retriable',
      'ECONNREFUSED',
    ]);
    await sink.close();
  }, 30_000);

  describe('against a store that answers badly', () => {
    let http: HttpServer;
    let silent: Server;
    let answer: { status: number; code: string; headers?: Record<string, string> };
    const sockets = new Set<Socket>();

    beforeAll(async () => {
      http = createHttpServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(answer.status, { 'content-type': 'application/xml', ...answer.headers });
          res.end(
            `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${answer.code}</Code>` +
              `<Message>injected ${answer.code}</Message><RequestId>1</RequestId></Error>`,
          );
        });
      });
      silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
      await Promise.all([
        new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve)),
        new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve)),
      ]);
    });

    afterAll(() => {
      for (const socket of sockets) socket.destroy();
      http?.close();
      silent?.close();
    });

    const endpointOf = (server: HttpServer | Server) =>
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    it('503 SlowDown is retriable, with Retry-After', async () => {
      answer = { status: 503, code: 'SlowDown', headers: { 'retry-after': '2' } };
      const sink = s3Sink.create(
        { credentials: credentials({ endpoint: endpointOf(http) }), format: 'Csv' },
        context,
      );
      const err = await failure(sink.write(batchOf('sd01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE)));
      expect([err.code, err.kind, err.status, err.retryAfterMs]).toEqual([
        'SINK_S3_THROTTLED',
        'retriable',
        503,
        2000,
      ]);
      expect(err.message).toContain('SlowDown');
      await sink.close();
    });

    it('500 InternalError is retriable, 400 InvalidArgument permanent', async () => {
      const sink = s3Sink.create(
        { credentials: credentials({ endpoint: endpointOf(http) }), format: 'Csv' },
        context,
      );
      const batch = batchOf('ie01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE);
      answer = { status: 500, code: 'InternalError' };
      const internal = await failure(sink.write(batch));
      expect([internal.code, internal.kind, internal.status]).toEqual(['SINK_S3_HTTP_5XX', 'retriable', 500]);
      answer = { status: 400, code: 'InvalidArgument' };
      const invalid = await failure(sink.write(batch));
      expect([invalid.code, invalid.kind, invalid.status]).toEqual(['SINK_S3_HTTP_4XX', 'permanent', 400]);
      await sink.close();
    });

    it('no answer within timeoutMs is retriable', async () => {
      const sink = s3Sink.create(
        { credentials: credentials({ endpoint: endpointOf(silent) }), format: 'Csv' },
        { ...context, timeoutMs: 300 },
      );
      const started = Date.now();
      const err = await failure(sink.write(batchOf('to01', 'usage', [JSON.stringify(USAGE_DATA)], T_USAGE)));
      expect([err.code, err.kind]).toEqual(['SINK_S3_TIMEOUT', 'retriable']);
      expect(Date.now() - started).toBeLessThan(3_000);
      await sink.close();
    });
  });
});
