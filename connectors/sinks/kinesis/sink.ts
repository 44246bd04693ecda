/**
 * The Kinesis sink: each batch goes out as PutRecords requests, one after another, and the
 * per-entry answers are folded into one outcome for the lane.
 */
import {
  DescribeStreamSummaryCommand,
  type KinesisClient,
  PutRecordsCommand,
  type PutRecordsResultEntry,
} from '@aws-sdk/client-kinesis';
import type { ErrorKind } from '../../../src/util/errors.js';
import { DeliveryError, type Sink, type SinkBatch, type SinkContext } from '../types.js';
import { createKinesisClient } from './client.js';
import { describeStream, type KinesisCredentials, secretValues } from './credentials.js';
import { classifyKinesisError, isPermanentEntryError, scrub } from './errors.js';
import { planPutRecords } from './requests.js';

/** A record of the batch that Kinesis did not take, and why. */
interface Rejection {
  index: number;
  code: string;
  message: string;
}

/** Everything a write learnt before it stopped. */
interface BatchAnswers {
  accepted: number;
  /** Entries Kinesis answered with an error code, in batch order. */
  rejected: Rejection[];
  /** Records of the request that failed as a whole (callError) and of the requests after it. */
  unsent: number[];
  callError?: DeliveryError;
}

export class KinesisSink implements Sink {
  private readonly client: KinesisClient;
  private readonly target: string;
  private readonly secrets: string[];

  constructor(
    private readonly credentials: KinesisCredentials,
    context: SinkContext,
  ) {
    this.client = createKinesisClient(credentials, context);
    this.target = describeStream(credentials);
    this.secrets = secretValues(credentials);
  }

  /** Checks the credentials and that the stream exists and takes writes. */
  async open(): Promise<void> {
    let status: string | undefined;
    try {
      const out = await this.client.send(
        new DescribeStreamSummaryCommand({ StreamName: this.credentials.stream_name }),
      );
      status = out.StreamDescriptionSummary?.StreamStatus;
    } catch (error) {
      // The role policy emnify documents grants only kinesis:PutRecord(s). Denied here, the
      // credentials did authenticate: leave the verdict to the first write.
      if ((error as { name?: string } | null)?.name === 'AccessDeniedException') return;
      throw this.classify(error, 'DescribeStreamSummary');
    }
    // ACTIVE and UPDATING take writes; CREATING will; DELETING never will again.
    const notReady = (code: string, what: string, kind: ErrorKind) =>
      new DeliveryError(code, `${this.target} is ${what}`, kind, { status });
    if (status === 'DELETING') throw notReady('SINK_KINESIS_STREAM_DELETING', 'being deleted', 'permanent');
    if (status === 'CREATING') throw notReady('SINK_KINESIS_STREAM_BUSY', 'still being created', 'retriable');
  }

  async write(batch: SinkBatch, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted)
      throw new DeliveryError(
        'SINK_KINESIS_ABORTED',
        `${this.target}: write aborted before sending`,
        'retriable',
      );
    const { requests, unsendable } = planPutRecords(batch.records);
    if (unsendable.length > 0) {
      const shown = unsendable.slice(0, 10).map((r) => `id ${r.id} (${r.reason})`);
      if (unsendable.length > 10) shown.push(`and ${unsendable.length - 10} more`);
      throw new DeliveryError(
        'SINK_KINESIS_RECORD_TOO_LARGE',
        `${this.target}: ${unsendable.length} record(s) exceed Kinesis limits (1 MiB per record with its partition key, 256-character partition key) and can never be written: ${shown.join(', ')}`,
        'permanent',
        { status: 'RecordTooLarge' },
      );
    }

    const rejected: Rejection[] = [];
    let accepted = 0;
    // Sequential on purpose: a request starts only once the previous one is answered, so
    // an endpoint's records reach its shard in batch order, and a stream that throttles
    // or fails one request is not sent the rest of the batch.
    for (const [n, request] of requests.entries()) {
      let results: PutRecordsResultEntry[];
      try {
        const out = await this.client.send(
          new PutRecordsCommand({ StreamName: this.credentials.stream_name, Records: request.entries }),
          { abortSignal: signal },
        );
        results = out.Records ?? [];
      } catch (error) {
        const unsent = requests.slice(n).flatMap((r) => r.indices);
        throw this.outcome(batch, {
          accepted,
          rejected,
          unsent,
          callError: this.classify(error, 'PutRecords'),
        });
      }
      request.indices.forEach((index, i) => {
        const result = results[i];
        if (result?.SequenceNumber && !result.ErrorCode) accepted++;
        else
          rejected.push({
            index,
            code: result?.ErrorCode ?? 'MissingResult',
            message: scrub(result?.ErrorMessage ?? 'no result for this record in the answer', this.secrets),
          });
      });
    }
    if (rejected.length > 0) throw this.outcome(batch, { accepted, rejected, unsent: [] });
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.client.destroy();
  }

  /**
   * Folds a batch's answers into one error. Some records were taken: 'partial' listing the
   * others (entries Kinesis rejected, then every record of the request that failed as a
   * whole and of those not sent after it). None were: that failed call's own error, or, if
   * only entries failed, 'retriable' unless one of their error codes is permanent.
   */
  private outcome(batch: SinkBatch, { accepted, rejected, unsent, callError }: BatchAnswers): DeliveryError {
    if (accepted === 0 && callError && rejected.length === 0) return callError;

    const failed = [...rejected.map((r) => r.index), ...unsent];
    const callStatus = typeof callError?.status === 'number' ? `HTTP ${callError.status}` : callError?.status;
    const codes = countCodes([...rejected.map((r) => r.code), ...unsent.map(() => String(callStatus))]);
    const first = rejected[0]?.message ?? callError?.message;
    const summary = `${failed.length} of ${batch.records.length} records not accepted (${codes}); first: ${first}`;
    const status = rejected[0]?.code ?? callError?.status;
    if (accepted > 0)
      return new DeliveryError('SINK_KINESIS_PARTIAL', `${this.target}: ${summary}`, 'partial', {
        status,
        failed,
        cause: callError,
      });
    const permanent = callError?.kind === 'permanent' || rejected.some((r) => isPermanentEntryError(r.code));
    return new DeliveryError(
      permanent ? 'SINK_KINESIS_RECORDS_REJECTED' : 'SINK_KINESIS_RECORDS_FAILED',
      `${this.target}: ${summary}`,
      permanent ? 'permanent' : 'retriable',
      { status, cause: callError },
    );
  }

  private classify(error: unknown, what: string): DeliveryError {
    return classifyKinesisError(error, this.target, what, this.secrets);
  }
}

/** "ProvisionedThroughputExceededException ×3, InternalFailure ×1" */
function countCodes(codes: string[]): string {
  const counts = new Map<string, number>();
  for (const code of codes) counts.set(code, (counts.get(code) ?? 0) + 1);
  return [...counts].map(([code, n]) => `${code} ×${n}`).join(', ');
}
