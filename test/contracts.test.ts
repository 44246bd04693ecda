import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroType, readSchema, SCHEMA_FILES, type SchemaName, schemaPath } from '../src/contracts/avro.js';
import type {
  DataCdr,
  EnforcementCommand,
  EngineCommand,
  SignalingRecord,
  SmsRecord,
} from '../src/contracts/raw.js';
import { packageRoot } from '../src/util/paths.js';

const signaling: SignalingRecord = {
  record_id: 'core1-1',
  type: 'CREATE_PDP_CONTEXT',
  timestamp: Date.UTC(2026, 0, 5, 8, 38, 2),
  imsi: '295050901064821',
  imeisv: '3569380356438091',
  result: 'REJECTED',
  cause: 'USER_AUTHENTICATION_FAILED',
  cause_code: 209,
  visited_mcc: '262',
  visited_mnc: '01',
  rat_type: 6,
  lac: 921,
  cell_id: 5174,
  network_node: '117.72.59.30',
  charging_id: 4_000_000_000,
  gateway_address: '100.64.0.10',
  apn: 'em',
  pdp_address: null,
  nsapi: 5,
};

const cdr: DataCdr = {
  recordType: 85,
  nodeID: 'pgw-eu-west-1a',
  localSequenceNumber: 17,
  servedIMSI: '295050901064821',
  servedIMEISV: null,
  servedMSISDN: '423663920123456',
  chargingID: 4_000_000_000,
  recordSequenceNumber: 2,
  pGWAddress: '100.64.0.10',
  servingNodeAddress: '117.72.59.30',
  servingNodePLMNIdentifier: '26201',
  rATType: 6,
  accessPointNameNI: 'em',
  servedPDPPDNAddress: '10.0.0.7',
  recordOpeningTime: 1_767_600_000_000,
  timeOfFirstUsage: 1_767_600_001_000,
  timeOfLastUsage: 1_767_600_045_000,
  duration: 45,
  dataVolumeUplink: 80_000,
  dataVolumeDownlink: 40_000,
  causeForRecClosing: 17,
  locationAreaCode: null,
  cellIdentity: null,
};

const sms: SmsRecord = {
  sms_id: 'smsc1-9',
  direction: 'MT',
  timestamp: 1_767_600_000_000,
  imsi: '295050901064821',
  msisdn: null,
  other_party: 'emnify',
  visited_mcc: '262',
  visited_mnc: '01',
  smsc_address: '423663900001',
  delivered: false,
  cause: 'absentSubscriber',
  length: 42,
};

const command: EngineCommand = {
  command_id: 'cmd-1',
  timestamp: 1_767_600_000_000,
  type: 'QUOTA_ASSIGN',
  endpoint_id: 20_200_078,
  service: 'DATA',
  volume: '100.5',
  expiry_date: 1_770_000_000_000,
  threshold_percentage: 15,
  action_on_exhaustion: 'THROTTLE',
  peak_throughput: 128_000,
  auto_refill: true,
  issued_by: 'api-token-1',
};

const enforcement: EnforcementCommand = {
  command_id: 'enf-0-17-0',
  timestamp: 1_767_600_000_000,
  action: 'THROTTLE',
  scope: 'DATA',
  level: 'ENDPOINT',
  endpoint_id: 20_200_078,
  imsis: ['901430000000102', '295050000000102'],
  peak_throughput: 64_000,
  reason: 'data quota used up',
  cause_event_id: 31_877_325_941,
};

const event = {
  id: 31_877_325_941,
  timestamp: '2021-10-27T08:38:02.000Z',
  alert: false,
  description: 'New PDP Context successfully activated',
  event_type: { id: 3, description: 'Create PDP Context' },
  event_source: { id: 0, description: 'Network' },
  event_severity: { id: 0, description: 'Info' },
  organisation: { id: 1825, name: 'Test Org' },
  user: null,
  endpoint: {
    id: 20_200_078,
    name: 'Test Sim 2',
    ip_address: '189.79.243.228',
    tags: null,
    imei: '960407272413998',
  },
  sim: {
    id: 646_486,
    iccid: '5746435358418205328',
    msisdn: null,
    production_date: '2020-12-23T13:02:11.000Z',
  },
  imsi: { id: 12_105_613, imsi: '693601932595201', import_date: '2020-12-23T13:02:11.000Z' },
  detail: JSON.stringify({ id: 3, name: 'Vodafone', session_id: 'd12c574f-e219-45a4-8836-d17a50f66fb1' }),
};

const usage = {
  id: 333_333_333_333_333,
  traffic_type: { id: 5, description: 'Data' },
  start_timestamp: '2022-04-26T11:53:43.000Z',
  end_timestamp: '2022-04-26T11:54:28.000Z',
  organisation: { id: 12_345, name: 'Example Organization' },
  endpoint: {
    id: 123_456_789,
    name: 'Example Device',
    ip_address: '192.0.2.7',
    tags: 'V1',
    imei: '8677300511111142',
    balance: null,
  },
  sim: {
    id: 3_324_192,
    iccid: '89883030000080139311',
    msisdn: '423663920123456',
    production_date: '2020-09-09T06:42:59.000Z',
  },
  imsi_id: 9_624_042,
  imsi: '295050901064821',
  operator: { id: 5, name: 'Telefonica O2', mnc: '07', country: { id: 74, mcc: '262', name: 'Germany' } },
  tariff: { id: 1, name: 'Internal Test Data Plan', ratezone: { id: 2, name: 'Area 2' } },
  volume: { total: '0.219933', rx: '0.172848', tx: '0.047085' },
  cost: '0.0018851200',
  currency: { id: 1, code: 'EUR', symbol: '€' },
  session_id: '722aeb56-c4de-4753-ac23-4f99c1980c5e',
  rating: {
    tariff_version: 1,
    rate: '0.10',
    billable_bytes: 230_400,
    inclusive: false,
    rx_bytes: 181_248,
    tx_bytes: 49_152,
  },
};

const deadLetter = {
  id: 42,
  timestamp: 1_767_600_000_000,
  stage: 'resolve',
  reason_code: 'UNKNOWN_IMSI',
  reason: 'IMSI 999999999999999 belongs to no SIM',
  source: 'raw',
  partition: 3,
  offset: 1234,
  record_kind: 'signaling',
  payload: Buffer.from('{"kind":"signaling"}'),
};

const SAMPLES: Record<SchemaName, object> = {
  signaling,
  'data-cdr': cdr,
  sms,
  'engine-command': command,
  'enforcement-command': enforcement,
  event,
  'usage-record': usage,
  'dead-letter': deadLetter,
};

/** Every record and field of a schema, recursively, with its path. */
function walk(
  schema: unknown,
  path: string,
  visit: (node: Record<string, unknown>, path: string) => void,
): void {
  if (Array.isArray(schema)) {
    schema.forEach((branch, i) => {
      walk(branch, `${path}|${i}`, visit);
    });
    return;
  }
  if (!schema || typeof schema !== 'object') return;
  const node = schema as Record<string, unknown>;
  visit(node, path);
  if (node.type === 'record')
    for (const field of node.fields as Record<string, unknown>[])
      walk(field.type, `${path}.${field.name}`, visit);
  else if (node.type && typeof node.type === 'object') walk(node.type, path, visit);
  if (node.items) walk(node.items, `${path}[]`, visit);
}

describe('Avro contracts in schemas/avro', () => {
  it('lists every .avsc file of the folder', () => {
    const files = readdirSync(join(packageRoot(), 'schemas', 'avro'))
      .filter((f) => f.endsWith('.avsc'))
      .map((f) => f.replace('.avsc', ''));
    expect(files.sort()).toEqual([...SCHEMA_FILES].sort());
  });

  it.each(SCHEMA_FILES)('%s compiles with avsc and documents every record and field', (name) => {
    expect(() => avroType(name)).not.toThrow();
    const undocumented: string[] = [];
    walk(readSchema(schemaPath(name)), name, (node, path) => {
      if (node.type === 'record') {
        if (!node.doc) undocumented.push(path);
        for (const field of node.fields as Record<string, unknown>[])
          if (!field.doc) undocumented.push(`${path}.${field.name}`);
      }
      if ((node.type === 'enum' || node.type === 'fixed') && !node.doc) undocumented.push(path);
    });
    expect(undocumented).toEqual([]);
  });

  it.each(SCHEMA_FILES)('%s round-trips a full record through the binary encoding', (name) => {
    const type = avroType(name);
    const sample = SAMPLES[name];
    expect(type.isValid(sample)).toBe(true);
    const decoded = type.fromBuffer(type.toBuffer(sample));
    expect(JSON.parse(JSON.stringify(decoded))).toEqual(JSON.parse(JSON.stringify(sample)));
  });

  it('the TypeScript record types carry exactly the schema fields, in order', () => {
    for (const name of ['signaling', 'data-cdr', 'sms', 'engine-command', 'enforcement-command'] as const) {
      const fields = (readSchema(schemaPath(name)) as unknown as { fields: { name: string }[] }).fields.map(
        (f) => f.name,
      );
      expect(Object.keys(SAMPLES[name])).toEqual(fields);
    }
  });

  it('rejects a record with a wrong type and names the field', () => {
    const bad = { ...cdr, dataVolumeUplink: 'lots' };
    const paths: string[] = [];
    avroType('data-cdr').isValid(bad, { errorHook: (path) => paths.push(path.join('.')) });
    expect(paths).toEqual(['dataVolumeUplink']);
  });
});

describe('schema evolution', () => {
  it('reads signaling records written with version 1 (no cell_id) with the current schema', () => {
    const v1 = avro.Type.forSchema(
      readSchema(join(packageRoot(), 'schemas', 'avro', 'history', 'signaling.v1.avsc')),
    );
    const current = avroType('signaling');
    const { cell_id: _, ...oldRecord } = signaling;
    const bytes = v1.toBuffer(oldRecord);
    const resolver = current.createResolver(v1);
    const read = current.fromBuffer(bytes, resolver) as SignalingRecord;
    expect(read.cell_id).toBeNull();
    expect(read.lac).toBe(921);
    expect(read.cause).toBe('USER_AUTHENTICATION_FAILED');
  });

  it('reads enforcement commands written with version 1 (no level) as the endpoint level', () => {
    const v1 = avro.Type.forSchema(
      readSchema(join(packageRoot(), 'schemas', 'avro', 'history', 'enforcement-command.v1.avsc')),
    );
    const current = avroType('enforcement-command');
    const { level: _, ...oldRecord } = enforcement;
    const read = current.fromBuffer(v1.toBuffer(oldRecord), current.createResolver(v1)) as EnforcementCommand;
    expect(read.level).toBe('ENDPOINT');
    expect(read.action).toBe('THROTTLE');
    expect(read.peak_throughput).toBe(64_000);
  });

  it('maps a cause symbol added by a newer writer to UNKNOWN (enum default)', () => {
    const newer = JSON.parse(JSON.stringify(readSchema(schemaPath('signaling'))));
    const causeField = newer.fields.find((f: { name: string }) => f.name === 'cause');
    causeField.type[1].symbols.push('NETWORK_SLICE_UNAVAILABLE');
    const writer = avro.Type.forSchema(newer);
    const current = avroType('signaling');
    const bytes = writer.toBuffer({ ...signaling, cause: 'NETWORK_SLICE_UNAVAILABLE' });
    const read = current.fromBuffer(bytes, current.createResolver(writer)) as SignalingRecord;
    expect(read.cause).toBe('UNKNOWN');
  });
});
