/**
 * Ingest: a capture's raw records onto the raw input log, keyed by endpoint so that one
 * endpoint's records stay in one partition. Damaged lines are ingested as they are (the
 * processor dead-letters them with the reason), so nothing is lost and the records around
 * them go on. Resumable without a cursor of its own: the partition of each line is a pure
 * function of the line, so on a restart the lines a partition already holds are counted
 * and skipped.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { encodingOf } from '../capture/format.js';
import { captureLine } from '../capture/ndjson.js';
import { openCapture } from '../capture/reader.js';
import type { AppendRecord, Topic } from '../log/types.js';
import type { Directory } from '../reference/directory.js';
import { hash32 } from '../util/random.js';

const IMSI = /"(?:imsi|servedIMSI)":"(\d{15})"/;
const ENDPOINT = /"endpoint_id":(\d+)/;
const TIME = /"(?:timeOfLastUsage|timestamp)":(\d+)/;

/** Event time of a capture line (ms), or undefined for a line without one. */
export function lineTime(line: string): number | undefined {
  const time = Number(TIME.exec(line)?.[1]);
  return Number.isSafeInteger(time) ? time : undefined;
}

export interface IngestProgress {
  lines: number;
  appended: number;
}

/** The raw lines of a capture, damaged ones included; header and trailer left out. */
export async function* captureLines(path: string): AsyncGenerator<string> {
  if (encodingOf(path) === 'avro') {
    const capture = await openCapture(path);
    for await (const raw of capture.records) yield captureLine(raw);
    return;
  }
  const input = createReadStream(path);
  const text = encodingOf(path) === 'ndjson.gz' ? input.pipe(createGunzip()) : input;
  const lines = createInterface({ input: text, crlfDelay: Number.POSITIVE_INFINITY });
  let first = true;
  try {
    for await (const line of lines) {
      if (first) {
        first = false;
        if (line.startsWith('{"kind":"header"')) continue;
      }
      if (line.startsWith('{"kind":"trailer"') || line.trim() === '') continue;
      yield line;
    }
  } catch {
    // A truncated gzip stream ends the capture; what was read has been ingested.
  }
}

export class Ingestor {
  private readonly seen: number[];
  private readonly ends: number[];
  private readonly pending: AppendRecord[][];

  private constructor(
    private readonly topic: Topic,
    private readonly dir: Directory,
    ends: number[],
  ) {
    this.ends = ends;
    this.seen = ends.map(() => 0);
    this.pending = ends.map(() => []);
  }

  static async open(topic: Topic, dir: Directory): Promise<Ingestor> {
    const ends: number[] = [];
    for (let p = 0; p < topic.partitions; p++) ends.push(await topic.endOffset(p));
    return new Ingestor(topic, dir, ends);
  }

  /** Partition of a line: its endpoint's, or a hash of what identifies it, or 0 for garbage. */
  partitionOf(line: string): number {
    const partitions = this.topic.partitions;
    const imsi = IMSI.exec(line)?.[1];
    if (imsi) {
      const ref = this.dir.resolveImsi(imsi);
      return ref ? ref.index % partitions : hash32(Number(imsi.slice(-9))) % partitions;
    }
    const endpoint = ENDPOINT.exec(line)?.[1];
    if (endpoint) {
      const index = this.dir.indexOfEndpointId(Number(endpoint));
      return (index ?? hash32(Number(endpoint))) % partitions;
    }
    return 0;
  }

  /** Event time of the latest line added (skipped ones included), ms; null before the first. */
  latestTime: number | null = null;

  /** Queues one line; lines a partition already holds (from an earlier run) are skipped. */
  add(line: string): void {
    const time = lineTime(line);
    if (time !== undefined && time > (this.latestTime ?? Number.NEGATIVE_INFINITY)) this.latestTime = time;
    const p = this.partitionOf(line);
    const n = this.seen[p] as number;
    this.seen[p] = n + 1;
    if (n < (this.ends[p] as number)) return;
    (this.pending[p] as AppendRecord[]).push({ key: null, value: Buffer.from(line), timestamp: time ?? 0 });
  }

  get queued(): number {
    return this.pending.reduce((n, batch) => n + batch.length, 0);
  }

  /** Appends everything queued; resolves when it is durable. */
  async flush(): Promise<number> {
    let appended = 0;
    for (let p = 0; p < this.pending.length; p++) {
      const batch = this.pending[p] as AppendRecord[];
      if (batch.length === 0) continue;
      await this.topic.append(p, batch);
      this.ends[p] = (this.ends[p] as number) + batch.length;
      appended += batch.length;
      this.pending[p] = [];
    }
    return appended;
  }
}
