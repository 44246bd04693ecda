/**
 * The processor of one partition: reads raw records from the input log, folds them
 * (src/core/fold.ts), and commits in this order: outputs appended to the output topics
 * (durable), then a snapshot of the state with the input offset it covers. A crash
 * between the two re-processes the tail after the snapshot; the fold is deterministic, so
 * it produces the same outputs again, and those already on the output log are skipped
 * (counted per topic), so the output log never holds a record twice.
 */
import { join } from 'node:path';
import { captureLine } from '../capture/ndjson.js';
import { eventTime } from '../contracts/raw.js';
import {
  emptyOutputs,
  emptyState,
  type FoldOutputs,
  PartitionFold,
  type PartitionState,
  restoreState,
} from '../core/fold.js';
import { outputId } from '../core/ids.js';
import { eventBytes, usageBytes } from '../core/output-json.js';
import type { Topic } from '../log/types.js';
import type { Directory } from '../reference/directory.js';
import { decodeRaw } from './decode.js';
import { readSnapshot, writeSnapshot } from './snapshot.js';

/** The output topics every processor writes, partition for partition. */
export const OUTPUT_TOPICS = ['events', 'usage', 'enforcement', 'dead-letters'] as const;
export type OutputTopic = (typeof OUTPUT_TOPICS)[number];

interface Snapshot {
  /**
   * 2 since the repeat windows keep minutes and sessions are lists; 3 since the CDR window
   * is kept per bearer (restoreState).
   */
  version: 1 | 2 | 3;
  partition: number;
  /** Next raw offset to process. */
  inputOffset: number;
  /** End offset of every output topic when the snapshot was taken. */
  outputEnd: Record<OutputTopic, number>;
  state: PartitionState;
}

/** Date.parse, remembering the last text: the outputs of one input mostly share their time. */
let lastTimeText = '';
let lastTime = Number.NaN;
function parseTime(text: string): number {
  if (text !== lastTimeText) {
    lastTime = Date.parse(text);
    lastTimeText = text;
  }
  return lastTime;
}

export interface ProcessorStats {
  records: number;
  deadLetters: number;
  duplicates: number;
}

export class PartitionProcessor {
  private fold: PartitionFold;
  private inputOffset = 0;
  /** The input offset of the snapshot on disk: a restart never reads the raw records below it. */
  private snapshotted = 0;
  /** Outputs to skip per topic: written before a crash, after the last snapshot. */
  private skip: Record<OutputTopic, number> = { events: 0, usage: 0, enforcement: 0, 'dead-letters': 0 };
  readonly stats: ProcessorStats = { records: 0, deadLetters: 0, duplicates: 0 };
  /** Raw records processed since the last snapshot. */
  private unsnapshotted = 0;
  /** Time this partition spent processing since its last snapshot, and how long that took (ms). */
  private busySinceSnapshot = 0;
  private snapshotTook = 0;

  private constructor(
    readonly partition: number,
    private readonly dir: Directory,
    private readonly raw: Topic,
    private readonly outputs: Record<OutputTopic, Topic>,
    private readonly snapshotFile: string,
    private readonly snapshotEvery: number,
  ) {
    this.fold = new PartitionFold(dir, emptyState());
  }

  /**
   * @param snapshotEvery raw records between snapshots: a crash re-processes at most this
   * many (their outputs are recognised and not written twice).
   */
  static async open(
    partition: number,
    dir: Directory,
    raw: Topic,
    outputs: Record<OutputTopic, Topic>,
    snapshotDir: string,
    snapshotEvery = 50_000,
  ): Promise<PartitionProcessor> {
    const processor = new PartitionProcessor(
      partition,
      dir,
      raw,
      outputs,
      join(snapshotDir, `partition-${partition}.json`),
      snapshotEvery,
    );
    await processor.restore();
    return processor;
  }

  private async restore(): Promise<void> {
    const snapshot = await readSnapshot<Snapshot>(this.snapshotFile);
    const ends = snapshot?.outputEnd;
    if (snapshot) {
      this.fold = new PartitionFold(this.dir, restoreState(snapshot.version, snapshot.state));
      this.inputOffset = snapshot.inputOffset;
      this.snapshotted = snapshot.inputOffset;
    }
    for (const topic of OUTPUT_TOPICS) {
      const end = await this.outputs[topic].endOffset(this.partition);
      // Negative only if outputs the snapshot counts were lost (a power loss without fsync).
      this.skip[topic] = Math.max(0, end - (ends?.[topic] ?? 0));
    }
  }

  get offset(): number {
    return this.inputOffset;
  }

  /** Raw records below this offset are in the snapshot on disk: retention may remove them. */
  get durableOffset(): number {
    return this.snapshotted;
  }

  /** Records the clock guard holds until later records confirm their time (src/core/fold.ts). */
  get heldBack(): number {
    return this.fold.state.held?.length ?? 0;
  }

  /** Raw records not processed yet. */
  async lag(): Promise<number> {
    return (await this.raw.endOffset(this.partition)) - this.inputOffset;
  }

  state(): PartitionState {
    return this.fold.state;
  }

  /** Processes up to `max` raw records; returns how many. */
  async step(max: number): Promise<number> {
    const began = performance.now();
    const records = await this.raw.read(this.partition, this.inputOffset, max);
    if (records.length === 0) return 0;
    const out = emptyOutputs();
    const deadLetters: { key: string | null; value: Buffer; timestamp: number }[] = [];
    for (const record of records) {
      const decoded = decodeRaw(record.value);
      const before = out.deadLetters.length;
      if (decoded.ok) this.applySafely(decoded.raw, record.offset, out);
      else
        out.deadLetters.push({
          id: outputId(this.partition, record.offset, 0),
          stage: 'validate',
          reason_code: decoded.code,
          reason: decoded.reason,
        });
      for (let i = before; i < out.deadLetters.length; i++) {
        const dl = out.deadLetters[i] as FoldOutputs['deadLetters'][number];
        // A record the clock guard held back may be rejected while a later one is applied.
        const source = dl.held
          ? {
              offset: dl.held.offset,
              timestamp: eventTime(dl.held.raw),
              kind: dl.held.raw.kind,
              payload: captureLine(dl.held.raw),
            }
          : {
              offset: record.offset,
              timestamp: record.timestamp,
              kind: decoded.ok ? decoded.raw.kind : decoded.kind,
              payload: record.value.toString('utf8'),
            };
        deadLetters.push({
          key: null,
          timestamp: source.timestamp,
          value: Buffer.from(
            JSON.stringify({
              id: dl.id,
              timestamp: source.timestamp,
              stage: dl.stage,
              reason_code: dl.reason_code,
              reason: dl.reason,
              source: 'raw',
              partition: this.partition,
              offset: source.offset,
              record_kind: source.kind,
              payload: source.payload,
            }),
          ),
        });
      }
    }
    this.stats.records += records.length;
    this.stats.deadLetters += out.deadLetters.length;
    this.stats.duplicates += out.duplicates;
    await this.commit(out, deadLetters);
    this.inputOffset = (records[records.length - 1]?.offset ?? this.inputOffset - 1) + 1;
    this.unsnapshotted += records.length;
    this.busySinceSnapshot += performance.now() - began;
    // A big state (100 MB of JSON at 135,000 devices a partition) is not written again
    // before this partition has spent ten times its writing time processing: its snapshots
    // take at most about a tenth of its time, and a crash re-processes a bit more. Its own
    // time, not the wall clock's: the partitions of an engine take turns on one thread, and
    // by the wall clock each would spend a tenth, all of them together nearly half.
    if (this.unsnapshotted >= this.snapshotEvery && this.busySinceSnapshot >= 10 * this.snapshotTook)
      await this.snapshot();
    return records.length;
  }

  /**
   * A record the fold cannot handle must not stop the partition (every restart would meet
   * it again): its outputs so far are dropped and it becomes a dead letter with the error.
   */
  private applySafely(raw: Parameters<PartitionFold['apply']>[0], offset: number, out: FoldOutputs): void {
    const lengths = [out.events.length, out.usage.length, out.enforcement.length, out.deadLetters.length];
    try {
      this.fold.apply(raw, this.partition, offset, out);
    } catch (error) {
      out.events.length = lengths[0] as number;
      out.usage.length = lengths[1] as number;
      out.enforcement.length = lengths[2] as number;
      out.deadLetters.length = lengths[3] as number;
      out.deadLetters.push({
        id: outputId(this.partition, offset, 0),
        stage: 'fold',
        reason_code: 'PROCESSING_FAILED',
        reason: `the engine could not process this record: ${(error as Error).message}`,
      });
    }
  }

  private async commit(
    out: FoldOutputs,
    deadLetters: { key: string | null; value: Buffer; timestamp: number }[],
  ): Promise<void> {
    const values: Record<OutputTopic, { key: string | null; value: Buffer; timestamp: number }[]> = {
      events: out.events.map((e) => ({
        key: e.endpoint ? String(e.endpoint.id) : null,
        value: eventBytes(e),
        timestamp: parseTime(e.timestamp),
      })),
      usage: out.usage.map((u) => ({
        key: String(u.endpointId),
        value: usageBytes(u.record),
        timestamp: parseTime(u.record.end_timestamp),
      })),
      enforcement: out.enforcement.map((c) => ({
        key: String(c.endpoint_id),
        value: Buffer.from(JSON.stringify(c)),
        timestamp: c.timestamp,
      })),
      'dead-letters': deadLetters,
    };
    await Promise.all(
      OUTPUT_TOPICS.map(async (topic) => {
        const skipped = Math.min(this.skip[topic], values[topic].length);
        this.skip[topic] -= skipped;
        const fresh = values[topic].slice(skipped);
        if (fresh.length > 0) await this.outputs[topic].append(this.partition, fresh);
      }),
    );
  }

  /** Commits the input offset: a snapshot of the state that covers it. */
  async snapshot(): Promise<void> {
    const began = performance.now();
    this.unsnapshotted = 0;
    const outputEnd = {} as Record<OutputTopic, number>;
    for (const topic of OUTPUT_TOPICS)
      outputEnd[topic] = (await this.outputs[topic].endOffset(this.partition)) - this.skip[topic];
    const snapshot: Snapshot = {
      version: 3,
      partition: this.partition,
      inputOffset: this.inputOffset,
      outputEnd,
      state: this.fold.state,
    };
    await writeSnapshot(this.snapshotFile, snapshot);
    this.snapshotted = snapshot.inputOffset;
    this.snapshotTook = performance.now() - began;
    this.busySinceSnapshot = 0;
  }
}
