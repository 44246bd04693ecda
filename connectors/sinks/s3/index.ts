/**
 * The S3 sink (emnify connection_type `S3`): one object per batch, CSV as emnify delivers
 * it, or gzip-compressed NDJSON.
 *
 * The schema is imported as a JSON module: tsc copies config.schema.json next to the built
 * index.js (dist/connectors/sinks/s3/), so the same import works under vitest and from dist.
 */
import type { SinkFactory } from '../types.js';
import { batchingFor, S3_FORMATS, type S3Credentials } from './config.js';
import schema from './config.schema.json' with { type: 'json' };
import { S3Sink } from './sink.js';

export type { S3Credentials } from './config.js';

export const s3Sink: SinkFactory<S3Credentials> = {
  connectionType: 'S3',
  credentialsSchema: schema,
  formats: [...S3_FORMATS],
  secretFields: ['secret_access_key', 'session_token'],
  batching: batchingFor,
  create: (destination, context) => new S3Sink(destination, context),
};
