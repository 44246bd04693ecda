import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { crc32, createGunzip } from 'node:zlib';
import avro from 'avsc';
import { RAW_KIND_BY_AVRO_NAME, rawUnionType } from '../contracts/avro.js';
import type { RawKind, RawRecord } from '../contracts/raw.js';
import { DataStreamerError } from '../util/errors.js';
import {
  AVRO_HEADER_KEY,
  CAPTURE_FORMAT,
  CAPTURE_VERSION,
  type CaptureHeader,
  type CaptureTrailer,
  encodingOf,
} from './format.js';

const KINDS = new Set<RawKind>(['signaling', 'data_cdr', 'sms', 'command']);

export class CaptureError extends DataStreamerError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'CaptureError';
  }
}

export interface CaptureContents {
  header: CaptureHeader;
  records: AsyncGenerator<RawRecord>;
  /** Set once `records` is exhausted (NDJSON files only). */
  trailer(): CaptureTrailer | undefined;
}

/**
 * Opens a capture file and reads its header. Records are read lazily; reading checks the
 * trailer's count and checksum at the end and throws a CaptureError naming the line of
 * any damage (the records before it have been delivered).
 */
export async function openCapture(path: string): Promise<CaptureContents> {
  if (!existsSync(path)) throw new CaptureError('CAPTURE_NOT_FOUND', `capture ${path} does not exist`);
  return encodingOf(path) === 'avro' ? openAvro(path) : openNdjson(path);
}

async function openNdjson(path: string): Promise<CaptureContents> {
  const input = createReadStream(path);
  const text = encodingOf(path) === 'ndjson.gz' ? input.pipe(createGunzip()) : input;
  const lines = createInterface({ input: text, crlfDelay: Number.POSITIVE_INFINITY })[Symbol.asyncIterator]();
  const first = await lines.next().catch((error: Error) => {
    throw new CaptureError('CAPTURE_UNREADABLE', `${path}: ${error.message}`);
  });
  let header: CaptureHeader;
  try {
    const parsed = JSON.parse(first.done ? '' : first.value) as { kind?: string } & CaptureHeader;
    if (parsed.kind !== 'header' || parsed.format !== CAPTURE_FORMAT) throw new Error('not a header');
    const { kind: _, ...rest } = parsed;
    header = rest;
  } catch {
    throw new CaptureError('CAPTURE_NOT_A_CAPTURE', `${path}: line 1 is not a ${CAPTURE_FORMAT} header`);
  }
  checkHeader(path, header);
  let trailer: CaptureTrailer | undefined;
  async function* records(): AsyncGenerator<RawRecord> {
    let crc = 0;
    let lineNo = 1;
    let count = 0;
    try {
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        lineNo++;
        const line = next.value;
        let entry: { kind?: string; record?: unknown };
        try {
          entry = JSON.parse(line);
        } catch {
          throw new CaptureError('CAPTURE_DAMAGED', `${path}: line ${lineNo} is not valid JSON`);
        }
        if (entry.kind === 'trailer') {
          const { kind: _, ...rest } = entry as { kind: string } & CaptureTrailer;
          trailer = rest;
          break;
        }
        if (!KINDS.has(entry.kind as RawKind) || typeof entry.record !== 'object' || entry.record === null) {
          throw new CaptureError('CAPTURE_DAMAGED', `${path}: line ${lineNo} is not a capture record`);
        }
        crc = crc32(`${line}\n`, crc);
        count++;
        yield entry as RawRecord;
      }
    } catch (error) {
      if (error instanceof CaptureError) throw error;
      throw new CaptureError(
        'CAPTURE_DAMAGED',
        `${path}: unreadable after line ${lineNo}: ${(error as Error).message}`,
      );
    }
    if (!trailer)
      throw new CaptureError(
        'CAPTURE_TRUNCATED',
        `${path}: ends after line ${lineNo} without a trailer; ${count} records were read`,
      );
    if (trailer.records !== count) {
      throw new CaptureError(
        'CAPTURE_DAMAGED',
        `${path}: trailer says ${trailer.records} records, ${count} were read`,
      );
    }
    if (trailer.crc32 !== crc.toString(16).padStart(8, '0')) {
      throw new CaptureError(
        'CAPTURE_DAMAGED',
        `${path}: checksum of the record lines does not match the trailer`,
      );
    }
  }
  return { header, records: records(), trailer: () => trailer };
}

async function openAvro(path: string): Promise<CaptureContents> {
  const input = createReadStream(path);
  const decoder = new avro.streams.BlockDecoder({ readerSchema: rawUnionType() });
  input.pipe(decoder);
  const header = await new Promise<CaptureHeader>((resolve, reject) => {
    decoder.once('metadata', (_type: unknown, _codec: unknown, meta: { meta: Record<string, Buffer> }) => {
      const raw = meta.meta[AVRO_HEADER_KEY];
      if (!raw)
        reject(
          new CaptureError('CAPTURE_NOT_A_CAPTURE', `${path}: Avro file without a ${AVRO_HEADER_KEY} entry`),
        );
      else resolve(JSON.parse(raw.toString('utf8')) as CaptureHeader);
    });
    // A file cut inside its Avro header ends without the decoder ever announcing the metadata.
    input.once('end', () =>
      setImmediate(() =>
        reject(new CaptureError('CAPTURE_TRUNCATED', `${path}: ends inside its Avro header`)),
      ),
    );
    decoder.once('error', (error: Error) =>
      reject(new CaptureError('CAPTURE_UNREADABLE', `${path}: ${error.message}`)),
    );
  });
  checkHeader(path, header);
  async function* records(): AsyncGenerator<RawRecord> {
    let count = 0;
    try {
      for await (const value of decoder as AsyncIterable<Record<string, unknown>>) {
        const name = Object.keys(value)[0] as string;
        count++;
        yield { kind: RAW_KIND_BY_AVRO_NAME[name], record: value[name] } as RawRecord;
      }
    } catch (error) {
      throw new CaptureError(
        'CAPTURE_DAMAGED',
        `${path}: unreadable after record ${count}: ${(error as Error).message}`,
      );
    }
  }
  return { header, records: records(), trailer: () => undefined };
}

/** A header this reader understands, whose embedded reference data is intact. */
function checkHeader(path: string, header: CaptureHeader): void {
  if (header.version !== CAPTURE_VERSION) {
    throw new CaptureError(
      'CAPTURE_VERSION_UNSUPPORTED',
      `${path}: capture format version ${header.version}; this version reads version ${CAPTURE_VERSION}`,
    );
  }
  const sha = createHash('sha256').update(JSON.stringify(header.reference)).digest('hex');
  if (sha !== header.reference_sha256) {
    throw new CaptureError(
      'CAPTURE_DAMAGED',
      `${path}: the reference data in the header does not match its sha256`,
    );
  }
}
