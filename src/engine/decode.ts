/**
 * Decoding and validating raw inputs as they sit on the input log: one capture line
 * ({"kind": ..., "record": {...}}) per log record. Anything that is not a valid record of
 * its contract comes back as a problem naming what is wrong, for the dead-letter store.
 */
import { avroType, RAW_KIND_SCHEMA } from '../contracts/avro.js';
import type { RawKind, RawRecord } from '../contracts/raw.js';

const KINDS = new Set<string>(Object.keys(RAW_KIND_SCHEMA));

export type Decoded =
  | { ok: true; raw: RawRecord }
  | { ok: false; code: string; reason: string; kind: RawKind | null };

export function decodeRaw(value: Buffer): Decoded {
  let entry: unknown;
  try {
    entry = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return {
      ok: false,
      code: 'MALFORMED_JSON',
      reason: `not valid JSON: ${(error as Error).message}`,
      kind: null,
    };
  }
  if (typeof entry !== 'object' || entry === null)
    return { ok: false, code: 'NOT_A_RECORD', reason: 'not a JSON object', kind: null };
  const { kind, record } = entry as { kind?: unknown; record?: unknown };
  if (typeof kind !== 'string' || !KINDS.has(kind)) {
    return {
      ok: false,
      code: 'UNKNOWN_KIND',
      reason: `kind ${JSON.stringify(kind)} is not one of ${[...KINDS].join(', ')}`,
      kind: null,
    };
  }
  const rawKind = kind as RawKind;
  const type = avroType(RAW_KIND_SCHEMA[rawKind]);
  // The quick check first; the one that names every problem only for a record that fails it.
  if (type.isValid(record)) return { ok: true, raw: { kind: rawKind, record } as RawRecord };
  const problems: string[] = [];
  type.isValid(record, {
    errorHook: (path, value) =>
      problems.push(`${path.join('.') || 'record'} (got ${JSON.stringify(value)?.slice(0, 40)})`),
  });
  if (problems.length > 0) {
    return {
      ok: false,
      code: 'SCHEMA_MISMATCH',
      reason: `${kind} record does not match schemas/avro/${RAW_KIND_SCHEMA[rawKind]}.avsc: invalid ${problems.join(', ')}`,
      kind: rawKind,
    };
  }
  return { ok: true, raw: { kind: rawKind, record } as RawRecord };
}
