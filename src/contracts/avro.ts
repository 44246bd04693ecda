import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { packageRoot } from '../util/paths.js';
import type { RawKind } from './raw.js';

/** Every contract in schemas/avro/, by file name without extension. */
export const SCHEMA_FILES = [
  'signaling',
  'data-cdr',
  'sms',
  'engine-command',
  'enforcement-command',
  'event',
  'usage-record',
  'dead-letter',
] as const;
export type SchemaName = (typeof SCHEMA_FILES)[number];

export const RAW_KIND_SCHEMA: Record<RawKind, SchemaName> = {
  signaling: 'signaling',
  data_cdr: 'data-cdr',
  sms: 'sms',
  command: 'engine-command',
};

export function schemaPath(name: string): string {
  return join(packageRoot(), 'schemas', 'avro', `${name}.avsc`);
}

export function readSchema(file: string): avro.Schema {
  return JSON.parse(readFileSync(file, 'utf8')) as avro.Schema;
}

const cache = new Map<string, avro.Type>();

/** The compiled avsc type of a contract. */
export function avroType(name: SchemaName): avro.Type {
  let type = cache.get(name);
  if (!type) {
    type = avro.Type.forSchema(readSchema(schemaPath(name)));
    cache.set(name, type);
  }
  return type;
}

/** Record names of the raw kinds, as they appear as union branches in Avro capture files. */
export const RAW_KIND_BY_AVRO_NAME: Record<string, RawKind> = {
  'io.datastreamer.raw.SignalingRecord': 'signaling',
  'io.datastreamer.raw.DataCdr': 'data_cdr',
  'io.datastreamer.raw.SmsRecord': 'sms',
  'io.datastreamer.command.EngineCommand': 'command',
};

/** Union of the four input records: the schema of an Avro capture file. */
export function rawUnionType(): avro.Type {
  const key = '#raw-union';
  let type = cache.get(key);
  if (!type) {
    const branches = (['signaling', 'data-cdr', 'sms', 'engine-command'] as const).map((n) =>
      readSchema(schemaPath(n)),
    );
    // 'auto' wraps only this union (its record branches are ambiguous); nullable fields stay plain.
    type = avro.Type.forSchema(branches as unknown as avro.Schema);
    cache.set(key, type);
  }
  return type;
}
