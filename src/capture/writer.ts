import { once } from 'node:events';
import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { crc32, createGzip, deflateRaw } from 'node:zlib';
import avro from 'avsc';
import { rawUnionType } from '../contracts/avro.js';
import type { RawRecord } from '../contracts/raw.js';
import { DataStreamerError } from '../util/errors.js';
import { hash32 } from '../util/random.js';
import {
  AVRO_HEADER_KEY,
  type CaptureEncoding,
  type CaptureHeader,
  type CaptureTrailer,
  encodingOf,
} from './format.js';
import { captureLine } from './ndjson.js';

const AVRO_NAME: Record<RawRecord['kind'], string> = {
  signaling: 'io.datastreamer.raw.SignalingRecord',
  data_cdr: 'io.datastreamer.raw.DataCdr',
  sms: 'io.datastreamer.raw.SmsRecord',
  command: 'io.datastreamer.command.EngineCommand',
};

/** Flushes NDJSON to the stream in chunks of about this many characters. */
const CHUNK_CHARS = 1 << 20;

/**
 * Writes a capture file: NDJSON (optionally gzip) or an Avro object container file,
 * chosen by the file name. `write` resolves when the stream accepts more (backpressure).
 * Output is a pure function of the header and records: no wall-clock time, fixed sync marker.
 */
export class CaptureWriter {
  readonly encoding: CaptureEncoding;
  private readonly file: Writable;
  private readonly sink: Writable;
  private readonly avroEncoder: avro.streams.BlockEncoder | undefined;
  private crc = 0;
  private pending = '';
  private count = 0;
  private readonly byKind: Record<string, number> = {};

  private constructor(
    readonly path: string,
    header: CaptureHeader,
  ) {
    this.encoding = encodingOf(path);
    this.file = path === '-' ? process.stdout : openChecked(path);
    if (this.encoding === 'avro') {
      const sync = Buffer.alloc(16);
      for (let k = 0; k < 4; k++)
        sync.writeUInt32BE(hash32(0xca97, k, header.reference_sha256.charCodeAt(k)), k * 4);
      this.avroEncoder = new avro.streams.BlockEncoder(rawUnionType(), {
        codec: 'deflate',
        // Level 1: 1.5x the speed of the default level for 15% more bytes (load-tests/RESULTS.md).
        codecs: {
          deflate: (data: Buffer, cb: (error: Error | null, out?: Buffer) => void) =>
            deflateRaw(data, { level: 1 }, cb),
        },
        blockSize: 1 << 20,
        syncMarker: sync,
        metadata: { [AVRO_HEADER_KEY]: Buffer.from(JSON.stringify(header)) },
        // `metadata` is supported by avsc but missing from its type declarations.
      } as unknown as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
      this.avroEncoder.pipe(this.file);
      this.sink = this.avroEncoder;
    } else {
      if (this.encoding === 'ndjson.gz') {
        // Level 3: within 20% of level 6's size at twice its speed (load-tests/RESULTS.md).
        const gzip = createGzip({ level: 3 });
        gzip.pipe(this.file);
        this.sink = gzip;
      } else {
        this.sink = this.file;
      }
      this.sink.write(`${JSON.stringify({ kind: 'header', ...header })}\n`);
    }
  }

  static open(path: string, header: CaptureHeader): CaptureWriter {
    return new CaptureWriter(path, header);
  }

  get records(): number {
    return this.count;
  }

  async write(records: readonly RawRecord[]): Promise<void> {
    for (const raw of records) {
      this.count++;
      this.byKind[raw.kind] = (this.byKind[raw.kind] ?? 0) + 1;
      if (this.avroEncoder) {
        if (!this.avroEncoder.write({ [AVRO_NAME[raw.kind]]: raw.record }))
          await once(this.avroEncoder, 'drain');
        continue;
      }
      this.pending += `${captureLine(raw)}\n`;
      if (this.pending.length >= CHUNK_CHARS) await this.flushPending();
    }
  }

  private async flushPending(): Promise<void> {
    if (this.pending.length === 0) return;
    // Encode once: the checksum and the stream both take the same bytes.
    const chunk = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    this.crc = crc32(chunk, this.crc);
    if (!this.sink.write(chunk)) await once(this.sink, 'drain');
  }

  /** Writes the trailer (NDJSON) and waits until everything is on disk. */
  async close(): Promise<CaptureTrailer> {
    await this.flushPending();
    const trailer: CaptureTrailer = { records: this.count, by_kind: this.byKind };
    if (!this.avroEncoder) trailer.crc32 = this.crc.toString(16).padStart(8, '0');
    if (!this.avroEncoder) this.sink.write(`${JSON.stringify({ kind: 'trailer', ...trailer })}\n`);
    if (this.path === '-') {
      if (this.sink !== this.file) {
        this.sink.end();
        await once(this.sink, 'end').catch(() => undefined);
      }
      return trailer;
    }
    const finished = once(this.file, 'close');
    this.sink.end();
    await finished;
    return trailer;
  }
}

function openChecked(path: string): WriteStream {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new DataStreamerError(
      'OUTPUT_NOT_WRITABLE',
      `cannot write ${path}: ${code === 'ENOENT' ? 'its folder does not exist' : code === 'EACCES' ? 'permission denied' : code}`,
    );
  }
  closeSync(fd);
  return createWriteStream(path);
}
