/**
 * The AwsKinesis sink (emnify's connection_type): one Kinesis record per output record,
 * written with PutRecords. See README.md.
 */
import type { SinkFactory } from '../types.js';
// An import attribute, not a file read: tsc copies the JSON next to the compiled module
// (dist/connectors/sinks/kinesis/), so the same line works under vitest and from dist.
import schema from './config.schema.json' with { type: 'json' };
import { KINESIS_SECRET_FIELDS, type KinesisCredentials } from './credentials.js';
import { KinesisSink } from './sink.js';

export type { KinesisCredentials } from './credentials.js';

export const kinesisSink: SinkFactory<KinesisCredentials> = {
  connectionType: 'AwsKinesis',
  credentialsSchema: schema,
  formats: ['Json'],
  secretFields: [...KINESIS_SECRET_FIELDS],
  create: (destination, context) => new KinesisSink(destination.credentials, context),
};
