import type { ReferenceData } from '../reference/types.js';

/**
 * Capture files hold raw records exactly as they were on the input log, with the
 * reference data they were produced against. docs/capture-format.md is the spec.
 */
export const CAPTURE_FORMAT = 'data-streamer/capture';
export const CAPTURE_VERSION = 1;

export type CaptureEncoding = 'ndjson' | 'ndjson.gz' | 'avro';

export interface CaptureHeader {
  format: typeof CAPTURE_FORMAT;
  version: typeof CAPTURE_VERSION;
  /** Program and command that wrote the capture. */
  created_by: string;
  /** How the records came about: the simulator's arguments, or the log range captured. */
  source: Record<string, unknown>;
  /** Virtual time range covered, ISO-8601 UTC. */
  start: string;
  end: string;
  /** sha256 of the reference data's canonical JSON (JSON.stringify of `reference`). */
  reference_sha256: string;
  reference: ReferenceData;
}

export interface CaptureTrailer {
  records: number;
  by_kind: Record<string, number>;
  /** NDJSON only: CRC-32 (hex) over the record lines exactly as written, newlines included. */
  crc32?: string;
}

export function encodingOf(path: string): CaptureEncoding {
  if (/\.avro$/i.test(path)) return 'avro';
  if (/\.gz$/i.test(path)) return 'ndjson.gz';
  return 'ndjson';
}

/** Metadata key of the header in an Avro object container file. */
export const AVRO_HEADER_KEY = 'datastreamer.capture.header';
