/** Writes each batch as one S3 object (see key.ts for its name and formats.ts for its body). */
import { HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DataStreamerError } from '../../../src/util/errors.js';
import {
  DeliveryError,
  type Sink,
  type SinkBatch,
  type SinkContext,
  type SinkDestination,
} from '../types.js';
import { createS3Client, usesStaticKeys } from './client.js';
import { S3_FORMATS, type S3Credentials, type S3Format } from './config.js';
import { classifyS3Error, type S3Call } from './errors.js';
import { encodeFile } from './formats.js';
import { objectKey } from './key.js';

export class S3Sink implements Sink {
  private readonly client: S3Client;
  private readonly format: S3Format;
  private readonly bucket: string;
  private readonly staticCredentials: boolean;

  constructor(
    private readonly destination: SinkDestination<S3Credentials>,
    context: SinkContext,
  ) {
    if (!(S3_FORMATS as string[]).includes(destination.format))
      throw new DataStreamerError(
        'SINK_S3_FORMAT_UNKNOWN',
        `S3 destination: format ${JSON.stringify(destination.format)} is not one of ${S3_FORMATS.join(', ')}`,
      );
    this.format = destination.format as S3Format;
    this.bucket = destination.credentials.bucket_name;
    this.staticCredentials = usesStaticKeys(destination.credentials);
    this.client = createS3Client(destination.credentials, context);
  }

  /**
   * Checks that the bucket exists (and, with role_arn, that the role can be assumed). A 403
   * passes: emnify's setup grants the role s3:PutObject only, which does not allow
   * HeadBucket, and S3 answers 403 only for a bucket that exists. Bad static keys show at
   * the first write.
   */
  async open(): Promise<void> {
    // Credentials first, on their own: an STS refusal is a 403 too, but one that must fail.
    try {
      await this.client.config.credentials();
    } catch (err) {
      throw classifyS3Error(err, this.call('Credentials'));
    }
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const failure = classifyS3Error(err, this.call('HeadBucket'));
      if (failure.status !== 403) throw failure;
    }
  }

  async write(batch: SinkBatch, signal?: AbortSignal): Promise<void> {
    if (batch.records.length === 0) return;
    const file = await encodeFile(this.format, batch.records);
    const key = objectKey(batch, this.destination.credentials.prefix, file.extension);
    const first = file.rejected[0];
    const rejectedText = first
      ? `${file.rejected.length} of ${batch.records.length} records are not one JSON object ` +
        `(first: id ${batch.records[first.index]?.id}, ${first.reason})`
      : '';
    if (file.rejected.length === batch.records.length)
      throw new DeliveryError(
        'SINK_S3_RECORD_INVALID',
        `S3 s3://${this.bucket}/${key}: ${rejectedText}`,
        'permanent',
      );

    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: file.body,
          ContentType: file.contentType,
          ...(file.contentEncoding ? { ContentEncoding: file.contentEncoding } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (err) {
      throw classifyS3Error(err, this.call('PutObject', key));
    }

    if (file.rejected.length > 0)
      throw new DeliveryError(
        'SINK_S3_RECORD_INVALID',
        `S3 s3://${this.bucket}/${key}: written without ${rejectedText}`,
        'partial',
        { failed: file.rejected.map((r) => r.index) },
      );
  }

  /** Nothing is buffered here: the lane batches (flush_size, rotate_interval). */
  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.client.destroy();
  }

  private call(operation: S3Call['operation'], key?: string): S3Call {
    return {
      operation,
      bucket: this.bucket,
      staticCredentials: this.staticCredentials,
      ...(this.destination.credentials.role_arn ? { roleArn: this.destination.credentials.role_arn } : {}),
      ...(key ? { key } : {}),
    };
  }
}
