/** Turns a batch's records into the body of one S3 object, in the stream's format. */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { stringify } from 'csv-stringify/sync';
import type { SinkRecord } from '../types.js';
import type { S3Format } from './config.js';
import { type Cells, flattenRecord } from './flatten.js';

const gzipAsync = promisify(gzip);

export interface EncodedFile {
  body: Buffer;
  contentType: string;
  contentEncoding?: string;
  /** Object key suffix, without the dot. */
  extension: string;
  /** Records left out because they are not one JSON object: index into the batch, and why. */
  rejected: { index: number; reason: string }[];
}

export function encodeFile(format: S3Format, records: SinkRecord[]): Promise<EncodedFile> {
  return format === 'Csv' ? Promise.resolve(encodeCsv(records)) : encodeNdjsonGzip(records);
}

/**
 * emnify's S3 format: UTF-8 CSV without BOM, a header row, one row per record, `\n` line
 * ends. Columns are the union of the records' flattened fields in first-seen order, so a
 * batch always gives the same file; a field a record lacks is an empty cell.
 */
function encodeCsv(records: SinkRecord[]): EncodedFile {
  const columns = new Set<string>();
  const rows: Cells[] = [];
  const rejected: EncodedFile['rejected'] = [];
  records.forEach((record, index) => {
    try {
      const cells = flattenRecord(record.json);
      for (const column of cells.keys()) columns.add(column);
      rows.push(cells);
    } catch (err) {
      rejected.push({ index, reason: (err as Error).message });
    }
  });
  const header = [...columns];
  const text = stringify([header, ...rows.map((cells) => header.map((column) => cells.get(column) ?? ''))], {
    record_delimiter: 'unix',
  });
  return {
    body: Buffer.from(text, 'utf8'),
    contentType: 'text/csv; charset=utf-8',
    extension: 'csv',
    rejected,
  };
}

/**
 * Our addition: one record's JSON text per line, gzip-compressed. Stored with
 * Content-Encoding gzip so the object's metadata says exactly what the bytes are.
 */
async function encodeNdjsonGzip(records: SinkRecord[]): Promise<EncodedFile> {
  const lines: string[] = [];
  const rejected: EncodedFile['rejected'] = [];
  records.forEach((record, index) => {
    const problem = notOneObject(record.json);
    if (problem) rejected.push({ index, reason: problem });
    // Raw line breaks in valid JSON can only be whitespace between tokens: a space keeps the value.
    else lines.push(/[\r\n]/.test(record.json) ? record.json.replace(/[\r\n]+/g, ' ') : record.json);
  });
  return {
    body: await gzipAsync(Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8')),
    contentType: 'application/x-ndjson',
    contentEncoding: 'gzip',
    extension: 'ndjson.gz',
    rejected,
  };
}

function notOneObject(json: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return (err as Error).message;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? undefined
    : 'expected a JSON object';
}
