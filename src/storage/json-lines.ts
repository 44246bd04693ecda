/**
 * The body of an insert of output records into a table's one `json` column, in
 * TabSeparated: one record a line, its JSON text as it is on the output log. TabSeparated
 * reads a backslash as an escape, so a record's backslashes (only inside JSON string
 * escapes, rare) are doubled; a record cannot hold a tab or a line break (compact JSON
 * escapes them in strings), and one that does is refused as not one line of JSON.
 */
import { StorageError } from './errors.js';

const NEWLINE = Buffer.from('\n');
const BACKSLASH = 0x5c;

export function jsonLines(table: string, records: readonly (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [];
  for (const [i, record] of records.entries()) {
    const bytes = typeof record === 'string' ? Buffer.from(record, 'utf8') : record;
    if (bytes[0] !== 0x7b || bytes.includes(0x0a) || bytes.includes(0x09) || bytes.includes(0x0d))
      throw new StorageError(
        'STORAGE_INVALID_INPUT',
        `insert into ${table}: record ${i} is not one line of JSON`,
      );
    parts.push(bytes.includes(BACKSLASH) ? doubleBackslashes(bytes) : bytes, NEWLINE);
  }
  return Buffer.concat(parts);
}

function doubleBackslashes(bytes: Buffer): Buffer {
  let count = 0;
  for (const b of bytes) if (b === BACKSLASH) count++;
  const out = Buffer.allocUnsafe(bytes.length + count);
  let at = 0;
  for (const b of bytes) {
    out[at++] = b;
    if (b === BACKSLASH) out[at++] = BACKSLASH;
  }
  return out;
}
