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
import { setTimeout as sleep } from 'node:timers/promises';
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

/**
 * Where a capture line goes on the raw topic: its endpoint's partition (directory index
 * modulo the partitions) with the endpoint id as key, or a hash of what identifies it (an
 * IMSI or endpoint the reference data does not know: the processor dead-letters it), or
 * partition 0 for garbage. The engine, the re-keying step and the simulator producing to
 * Kafka all use it, so one endpoint's records are always in one partition.
 */
export function routeOfLine(
  line: string,
  dir: Directory,
  partitions: number,
): { partition: number; key: string | null } {
  const imsi = IMSI.exec(line)?.[1];
  if (imsi) {
    const ref = dir.resolveImsi(imsi);
    return ref
      ? { partition: ref.index % partitions, key: String(dir.endpointId(ref.index)) }
      : { partition: hash32(Number(imsi.slice(-9))) % partitions, key: null };
  }
  const endpoint = ENDPOINT.exec(line)?.[1];
  if (endpoint) {
    const index = dir.indexOfEndpointId(Number(endpoint));
    return index === undefined
      ? { partition: hash32(Number(endpoint)) % partitions, key: null }
      : { partition: index % partitions, key: endpoint };
  }
  return { partition: 0, key: null };
}

/** The partition of a capture line (routeOfLine). */
export function partitionOfLine(line: string, dir: Directory, partitions: number): number {
  return routeOfLine(line, dir, partitions).partition;
}

/**
 * A capture's lines in chunks of at most `size`, each chunk handed over when it is due: at
 * once (no speed), or paced so that a line goes when the wall time since the first line
 * reaches its event time since the first line / speed (lines due within 50 ms go together).
 */
export async function* pacedChunks(
  lines: AsyncIterable<string>,
  size: number,
  speed?: number,
): AsyncGenerator<string[]> {
  const pace = speed && Number.isFinite(speed) ? speed : undefined;
  let first: { time: number; wall: number } | undefined;
  let chunk: string[] = [];
  for await (const line of lines) {
    // Only a paced run reads a line's time here.
    const at = pace ? lineTime(line) : undefined;
    if (pace && at !== undefined) {
      first ??= { time: at, wall: performance.now() };
      const due = first.wall + (at - first.time) / pace;
      if (due - performance.now() > 50) {
        if (chunk.length > 0) yield chunk;
        chunk = [];
        await sleep(due - performance.now());
      }
    }
    chunk.push(line);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
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

  /**
   * @param resume the log holds an earlier run of the same input: skip what it holds (a
   * capture into its own data dir). Off: append every line (into a log others write too).
   */
  static async open(topic: Topic, dir: Directory, { resume = true } = {}): Promise<Ingestor> {
    const ends: number[] = [];
    for (let p = 0; p < topic.partitions; p++) ends.push(resume ? await topic.endOffset(p) : 0);
    return new Ingestor(topic, dir, ends);
  }

  /** Partition of a line (partitionOfLine). */
  partitionOf(line: string): number {
    return partitionOfLine(line, this.dir, this.topic.partitions);
  }

  /** Event time of the latest line added (skipped ones included), ms; null before the first. */
  latestTime: number | null = null;

  /** Queues one line; lines a partition already holds (from an earlier run) are skipped. */
  add(line: string): void {
    const time = lineTime(line);
    if (time !== undefined && time > (this.latestTime ?? Number.NEGATIVE_INFINITY)) this.latestTime = time;
    const { partition: p, key } = routeOfLine(line, this.dir, this.topic.partitions);
    const n = this.seen[p] as number;
    this.seen[p] = n + 1;
    if (n < (this.ends[p] as number)) return;
    (this.pending[p] as AppendRecord[]).push({ key, value: Buffer.from(line), timestamp: time ?? 0 });
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
