/**
 * Batches a stream could not deliver, kept with the error until they are redriven. One
 * file per batch, named by the batch's first record, so the same batch failing again
 * replaces its file instead of adding a copy.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SinkRecord } from '../../connectors/sinks/types.js';
import { writeFileAtomic } from '../log/embedded/files.js';
import type { DeliveryFailed } from './delivery.js';

export interface DeadLetteredBatch {
  stream_id: string;
  failed_at: string;
  attempts: number;
  error: { code: string; kind: string; message: string; status?: number | string };
  records: SinkRecord[];
}

export class BatchDeadLetters {
  constructor(private readonly dir: string) {}

  private folder(streamId: string): string {
    return join(this.dir, streamId);
  }

  /** Keeps what a delivery gave up on: after a partial failure, only the records still undelivered. */
  addFailed(streamId: string, failure: DeliveryFailed, at: number): Promise<string> {
    const { last } = failure;
    return this.add({
      stream_id: streamId,
      failed_at: new Date(at).toISOString(),
      attempts: failure.attempts,
      error: {
        code: last.code,
        kind: last.kind,
        message: last.message,
        ...(last.status === undefined ? {} : { status: last.status }),
      },
      records: failure.records,
    });
  }

  async add(batch: DeadLetteredBatch): Promise<string> {
    const first = batch.records[0] as SinkRecord;
    const name = `${first.topic}-${first.partition}-${first.offset}.json`;
    mkdirSync(this.folder(batch.stream_id), { recursive: true });
    await writeFileAtomic(join(this.folder(batch.stream_id), name), JSON.stringify(batch));
    return name;
  }

  /** The stream's dead-lettered batches, oldest position first. */
  list(streamId: string): { name: string; batch: DeadLetteredBatch }[] {
    let names: string[];
    try {
      names = readdirSync(this.folder(streamId)).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    return names
      .map((name) => ({
        name,
        batch: JSON.parse(readFileSync(join(this.folder(streamId), name), 'utf8')) as DeadLetteredBatch,
      }))
      .sort((a, b) => {
        const x = a.batch.records[0] as SinkRecord;
        const y = b.batch.records[0] as SinkRecord;
        return x.timestamp - y.timestamp || x.partition - y.partition || x.offset - y.offset;
      });
  }

  remove(streamId: string, name: string): void {
    rmSync(join(this.folder(streamId), name), { force: true });
  }

  removeAll(streamId: string): void {
    rmSync(this.folder(streamId), { recursive: true, force: true });
  }
}
