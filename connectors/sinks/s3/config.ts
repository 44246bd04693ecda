/** `destination.credentials` of an S3 stream (config.schema.json), and its defaults. */
import type { SinkBatching } from '../types.js';

export interface S3Credentials {
  region: string;
  bucket_name: string;
  role_arn?: string;
  prefix?: string;
  flush_size?: number;
  rotate_interval?: number;
  endpoint?: string;
  access_key_id?: string;
  secret_access_key?: string;
  session_token?: string;
}

/** emnify's defaults (API v2 data stream, S3 destination). */
export const DEFAULT_FLUSH_SIZE = 10_000;
export const DEFAULT_ROTATE_INTERVAL_MS = 10_000;

export type S3Format = 'Csv' | 'NdjsonGzip';
export const S3_FORMATS: S3Format[] = ['Csv', 'NdjsonGzip'];

export function batchingFor(credentials: S3Credentials): SinkBatching {
  return {
    maxRecords: credentials.flush_size ?? DEFAULT_FLUSH_SIZE,
    lingerMs: credentials.rotate_interval ?? DEFAULT_ROTATE_INTERVAL_MS,
  };
}
