/**
 * The ids of the records in a webhook body (a JSON array of records, or one bare record),
 * without parsing them: a receiver that parsed every 3 MB batch would spend more CPU than
 * the lanes that send it, on the same two cores. Record ids are the first key of each
 * top-level object (`{"id":N,...`, as the engine writes them); ids of nested objects (the
 * operator lists in event details) are skipped by tracking depth and strings. Undefined
 * for a body of another shape: the caller parses it.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const ID_KEY = Buffer.from('{"id":');

export function recordIds(body: Buffer): number[] | undefined {
  const ids: number[] = [];
  // Depth of the record objects: 0 for a bare record, 1 inside the top-level array.
  const recordDepth = body[0] === OPEN_ARRAY ? 1 : 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (c === OPEN_OBJECT && depth === recordDepth) {
        if (body.compare(ID_KEY, 0, ID_KEY.length, i, i + ID_KEY.length) !== 0) return undefined;
        let id = 0;
        let j = i + ID_KEY.length;
        for (let d = body[j]; d !== undefined && d >= 0x30 && d <= 0x39; d = body[++j])
          id = id * 10 + (d - 0x30);
        if (j === i + ID_KEY.length) return undefined;
        ids.push(id);
      }
      depth++;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) depth--;
  }
  return ids;
}
