/**
 * Capture from the engine's log: the raw records (and the engine commands, which are raw
 * records too) of an event-time range, read back from a data directory's raw topic and
 * written as a normal capture file (docs/capture-format.md, "Capturing from an engine").
 *
 * Order: the raw topic's partitions are merged head by head by the log timestamp (the
 * record's event time), ties by partition; within a partition the log order is kept. So a
 * replay of the capture puts every record in the same partition at the same position as
 * on the log it came from, which is what makes its outputs identical.
 *
 * Two passes over the log: the first finds the time range covered and the lines the
 * capture format cannot hold (they go into the header, which is written first), the second
 * writes. The log's end offsets are fixed when it is opened; the directory lock keeps the
 * engine out meanwhile.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { avroType, RAW_KIND_SCHEMA } from '../contracts/avro.js';
import type { RawKind, RawRecord } from '../contracts/raw.js';
import { LogError } from '../log/errors.js';
import { openEmbeddedLog } from '../log/index.js';
import type { Log, LogRecord, Topic } from '../log/types.js';
import { validateReferenceData } from '../reference/loader.js';
import { TimerHeap } from '../simulator/heap.js';
import { referenceSha256 } from '../simulator/run.js';
import { DataStreamerError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import {
  CAPTURE_FORMAT,
  CAPTURE_VERSION,
  type CaptureHeader,
  type CaptureTrailer,
  encodingOf,
} from './format.js';
import { captureLine } from './ndjson.js';
import { CaptureWriter } from './writer.js';

/** The engine's input topic (src/engine/engine.ts). */
export const RAW_TOPIC = 'raw';
/** Lines listed one by one in the header's source.not_captured_lines; the count is always complete. */
const LISTED = 100;
const READ_BATCH = 4096;
const WRITE_BATCH = 4096;
const KINDS = new Set<string>(Object.keys(RAW_KIND_SCHEMA));

export interface LogCaptureOptions {
  /** The engine's data directory (reference.json, engine.json, log/). */
  dataDir: string;
  /** Capture file: .ndjson, .ndjson.gz, .avro, or '-' for NDJSON on stdout. */
  out: string;
  /** Event-time range [since, until), ms since the epoch; unset ends take the whole log. */
  since?: number;
  until?: number;
  /** Called now and then with the records written so far (second pass). */
  onProgress?: (written: number, total: number) => void;
}

/** A raw log line the capture could not hold. */
export interface NotCaptured {
  partition: number;
  offset: number;
  /** Its log timestamp (0 for a line without a time). */
  timestamp: number;
  code: 'MALFORMED_JSON' | 'NOT_A_RECORD' | 'NOT_CANONICAL' | 'NOT_AVRO_ENCODABLE';
  reason: string;
}

export interface LogCaptureSummary {
  out: string;
  dataDir: string;
  partitions: number;
  since: string | null;
  until: string | null;
  /** Event times of the first and last record written, ISO-8601 (null when none). */
  first_event_time: string | null;
  last_event_time: string | null;
  records: number;
  by_kind: Record<string, number>;
  /** Records the engine accepted whose line was not in canonical form: written canonically. */
  normalised: number;
  not_captured: NotCaptured[];
  /** How many lines in range were not captured (not_captured lists at most 100). */
  not_captured_count: number;
  trailer: CaptureTrailer;
}

/** Checks that DIR holds an engine and reads what the capture needs from it. */
function engineDir(dataDir: string): { reference: CaptureHeader['reference']; partitions: number } {
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory())
    throw new DataStreamerError('DATA_DIR_NOT_FOUND', `data directory ${dataDir} does not exist`);
  const missing = ['engine.json', 'reference.json', join('log', RAW_TOPIC, 'topic.json')].filter(
    (file) => !existsSync(join(dataDir, file)),
  );
  if (missing.length > 0)
    throw new DataStreamerError(
      'DATA_DIR_EMPTY',
      `${dataDir} holds no engine data (missing ${missing.join(', ')}); replay a capture into it first`,
    );
  const referenceFile = join(dataDir, 'reference.json');
  const reference = validateReferenceData(readJson(referenceFile), referenceFile);
  const configFile = join(dataDir, 'engine.json');
  const partitions = (readJson(configFile) as { partitions?: unknown }).partitions;
  if (!Number.isSafeInteger(partitions) || (partitions as number) < 1)
    throw new DataStreamerError('DATA_DIR_DAMAGED', `${configFile}: partitions is not a positive integer`);
  return { reference, partitions: partitions as number };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new DataStreamerError('DATA_DIR_DAMAGED', `${file}: ${(error as Error).message}`);
  }
}

async function openLog(dataDir: string): Promise<Log> {
  try {
    // Retention off, as the engine opens it: opening must never remove anything.
    return await openEmbeddedLog({
      dir: join(dataDir, 'log'),
      fsync: 'never',
      retentionMs: Number.POSITIVE_INFINITY,
    });
  } catch (error) {
    if (error instanceof LogError && error.code === 'LOG_LOCKED')
      throw new DataStreamerError(
        'DATA_DIR_LOCKED',
        `${dataDir} is in use by another process (an engine runs on it); capture once it has stopped (${error.message})`,
        'retriable',
        { cause: error },
      );
    throw error;
  }
}

type Verdict = { ok: true; normalised: boolean } | { ok: false; code: NotCaptured['code']; reason: string };

/**
 * Whether a raw log line can go into a capture as it is. NDJSON keeps a line byte for byte
 * when it is in the writer's canonical form (every line from `simulate` or from a capture
 * is); Avro can only hold records that match their contract.
 */
function judge(text: string, avro: boolean): Verdict {
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch (error) {
    return { ok: false, code: 'MALFORMED_JSON', reason: `not valid JSON: ${(error as Error).message}` };
  }
  const { kind, record } = (entry ?? {}) as { kind?: unknown; record?: unknown };
  if (typeof entry !== 'object' || entry === null || typeof kind !== 'string' || !KINDS.has(kind))
    return { ok: false, code: 'NOT_A_RECORD', reason: 'not a {"kind", "record"} line of a known kind' };
  if (typeof record !== 'object' || record === null)
    return { ok: false, code: 'NOT_A_RECORD', reason: `${kind} line without a record object` };
  const canonical = captureLine(entry as RawRecord) === text;
  if (canonical && !avro) return { ok: true, normalised: false };
  const problems: string[] = [];
  avroType(RAW_KIND_SCHEMA[kind as RawKind]).isValid(record, {
    errorHook: (path) => problems.push(path.join('.') || 'record'),
  });
  if (problems.length === 0) return { ok: true, normalised: !canonical };
  return avro
    ? {
        ok: false,
        code: 'NOT_AVRO_ENCODABLE',
        reason: `${kind} record does not match its Avro contract (invalid ${problems.join(', ')})`,
      }
    : {
        ok: false,
        code: 'NOT_CANONICAL',
        reason: `${kind} record that neither matches its contract (invalid ${problems.join(', ')}) nor is in canonical form`,
      };
}

/** Records of one partition from `from` up to (not including) `end`, in batches. */
async function* partitionRecords(topic: Topic, p: number, from: number, end: number) {
  let offset = from;
  while (offset < end) {
    const batch = await topic.read(p, offset, Math.min(READ_BATCH, end - offset));
    if (batch.length === 0) return;
    yield batch;
    offset = (batch[batch.length - 1] as LogRecord).offset + 1;
  }
}

/** Every partition's records merged by timestamp, ties by partition, each partition's order kept. */
async function* merged(topic: Topic, starts: number[], ends: number[]): AsyncGenerator<LogRecord> {
  const sources = starts.map((start, p) => partitionRecords(topic, p, start, ends[p] as number));
  const heads: { batch: LogRecord[]; at: number }[] = sources.map(() => ({ batch: [], at: 0 }));
  const heap = new TimerHeap(sources.length);
  const advance = async (p: number) => {
    const head = heads[p] as { batch: LogRecord[]; at: number };
    if (head.at >= head.batch.length) {
      const next = await (sources[p] as AsyncGenerator<LogRecord[]>).next();
      head.batch = next.done ? [] : next.value;
      head.at = 0;
    }
    const record = head.batch[head.at];
    if (record) heap.push(record.timestamp, p);
  };
  for (let p = 0; p < sources.length; p++) await advance(p);
  while (heap.size > 0) {
    const p = heap.peekDevice();
    heap.pop();
    const head = heads[p] as { batch: LogRecord[]; at: number };
    yield head.batch[head.at++] as LogRecord;
    await advance(p);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Writes the raw records of DIR's log whose event time is in [since, until) to a capture
 * file, in event-time order, with the reference data of DIR in the header.
 */
export async function captureFromLog(options: LogCaptureOptions): Promise<LogCaptureSummary> {
  const { dataDir, out, since, until } = options;
  if (since !== undefined && until !== undefined && since >= until)
    throw new DataStreamerError(
      'CAPTURE_RANGE_EMPTY',
      `the range ${iso(since)} .. ${iso(until)} is empty: since must be before until`,
    );
  const { reference, partitions } = engineDir(dataDir);
  const avro = out !== '-' && encodingOf(out) === 'avro';
  const inRange = (t: number) => (since === undefined || t >= since) && (until === undefined || t < until);
  const log = await openLog(dataDir);
  try {
    const raw = await log.topic(RAW_TOPIC, partitions);
    const starts: number[] = [];
    const ends: number[] = [];
    for (let p = 0; p < partitions; p++) {
      starts.push(await raw.startOffset(p));
      ends.push(await raw.endOffset(p));
    }

    // Pass 1: what the capture will hold.
    const skipped = new Set<string>();
    const notCaptured: NotCaptured[] = [];
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    let total = 0;
    let normalised = 0;
    for (let p = 0; p < partitions; p++) {
      for await (const batch of partitionRecords(raw, p, starts[p] as number, ends[p] as number)) {
        for (const record of batch) {
          if (!inRange(record.timestamp)) continue;
          const verdict = judge(record.value.toString('utf8'), avro);
          if (!verdict.ok) {
            skipped.add(`${p}:${record.offset}`);
            if (notCaptured.length < LISTED)
              notCaptured.push({
                partition: p,
                offset: record.offset,
                timestamp: record.timestamp,
                code: verdict.code,
                reason: verdict.reason,
              });
            continue;
          }
          total++;
          if (verdict.normalised) normalised++;
          if (record.timestamp < first) first = record.timestamp;
          if (record.timestamp > last) last = record.timestamp;
        }
      }
    }

    const header: CaptureHeader = {
      format: CAPTURE_FORMAT,
      version: CAPTURE_VERSION,
      created_by: `data-streamer ${VERSION} capture`,
      // No path or wall-clock time: the same log gives the same file, wherever it lives.
      source: {
        kind: 'log',
        topic: RAW_TOPIC,
        partitions,
        since: since === undefined ? null : iso(since),
        until: until === undefined ? null : iso(until),
        log_end_offsets: ends,
        normalised,
        not_captured: skipped.size,
        not_captured_lines: notCaptured,
      },
      start: iso(since ?? (total > 0 ? first : (until ?? 0))),
      end: iso(until ?? (total > 0 ? last + 1 : (since ?? 0))),
      reference_sha256: referenceSha256(reference),
      reference,
    };

    // Pass 2: write, in merged event-time order.
    const writer = CaptureWriter.open(out, header);
    let trailer: CaptureTrailer;
    try {
      const batch: RawRecord[] = [];
      for await (const record of merged(raw, starts, ends)) {
        if (!inRange(record.timestamp) || skipped.has(`${record.partition}:${record.offset}`)) continue;
        batch.push(JSON.parse(record.value.toString('utf8')) as RawRecord);
        if (batch.length >= WRITE_BATCH) {
          await writer.write(batch);
          batch.length = 0;
          options.onProgress?.(writer.records, total);
        }
      }
      await writer.write(batch);
    } finally {
      trailer = await writer.close();
    }
    options.onProgress?.(writer.records, total);
    return {
      out,
      dataDir,
      partitions,
      since: since === undefined ? null : iso(since),
      until: until === undefined ? null : iso(until),
      first_event_time: total > 0 ? iso(first) : null,
      last_event_time: total > 0 ? iso(last) : null,
      records: trailer.records,
      by_kind: trailer.by_kind,
      normalised,
      not_captured: notCaptured,
      not_captured_count: skipped.size,
      trailer,
    };
  } finally {
    await log.close();
  }
}
