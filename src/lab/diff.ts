/**
 * `data-streamer diff A B`: compares the output topics of two engine data directories
 * record by record, e.g. the same capture replayed by two engine versions.
 *
 * Records are matched per topic by their id (`id`; `command_id` for enforcement
 * commands; the position `partition:offset` for a record that has neither). Both sides
 * are read in (partition, offset) order side by side: while the two line up, the
 * records' bytes are compared and nothing is parsed or kept. Only records whose bytes
 * differ are parsed, and only records whose ids do not line up are held (until their
 * partner turns up or the topic ends), so two identical data dirs cost one pass and
 * almost no memory.
 *
 * Values are compared exactly: numbers keep the digits of their JSON text (money is a
 * JSON number in the output records, and `0.10` is not `0.1` here), never a float.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { ORGANISATION_TOPICS } from '../engine/organisation-runner.js';
import { OUTPUT_TOPICS } from '../engine/processor.js';
import { openEmbeddedLog } from '../log/index.js';
import { topicRecords } from '../log/read.js';
import type { Log } from '../log/types.js';
import { DataStreamerError } from '../util/errors.js';

/** The topics `diff` compares, in this order. */
export const DIFF_TOPICS = [...OUTPUT_TOPICS, ...ORGANISATION_TOPICS] as const;
export type DiffTopic = (typeof DIFF_TOPICS)[number];

export const DEFAULT_DIFF_LIMIT = 20;

/** Where a record is on its topic. */
export interface Position {
  partition: number;
  offset: number;
}

/** One field that differs; `old`/`new` are the field's JSON text, absent when the field is not there. */
export interface FieldChange {
  /** `cost`, `rating.rate`, `detail.tapcode[0].id`; empty for the record as a whole. */
  path: string;
  old?: string;
  new?: string;
}

export type Difference =
  | { topic: DiffTopic; kind: 'missing'; key: string; a: Position; value: string }
  | { topic: DiffTopic; kind: 'extra'; key: string; b: Position; value: string }
  | { topic: DiffTopic; kind: 'changed'; key: string; a: Position; b: Position; fields: FieldChange[] };

export interface TopicSummary {
  topic: DiffTopic;
  /** Records on the topic in A and in B. */
  a: number;
  b: number;
  identical: number;
  changed: number;
  /** In A, not in B. */
  missing: number;
  /** In B, not in A. */
  extra: number;
}

export interface DiffReport {
  a: string;
  b: string;
  identical: boolean;
  partitions: { a: number; b: number };
  topics: TopicSummary[];
  /** changed + missing + extra over all topics. */
  total_differences: number;
  /** The first `limit` differences, topic by topic in log order. */
  differences: Difference[];
  /** Things to know when reading the report (e.g. partition counts that differ). */
  notes: string[];
}

export interface DiffOptions {
  /** How many differences to keep in the report (all are counted). Default 20. */
  limit?: number;
  /** Topics to compare; default all of DIFF_TOPICS. */
  topics?: readonly DiffTopic[];
}

/** A record as the comparison sees it. */
export interface DiffRecord extends Position {
  value: Buffer;
}

// ---------------------------------------------------------------------------------------
// Exact JSON: numbers keep their text.

/** A JSON number, kept as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Parses JSON keeping each number's digits; throws a SyntaxError on anything else. */
export function parseExactJson(text: string): JsonValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const space = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const string = (): string => {
    const start = i;
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 0x22) break;
      i += c === 0x5c ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): JsonValue => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const object: { [key: string]: JsonValue } = Object.create(null);
      space();
      if (text[i] === '}') {
        i++;
        return object;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        space();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        object[key] = value();
        space();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return object;
        } else fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const array: JsonValue[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return array;
        } else fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return result;
      }
    }
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (!match) return fail('unexpected character');
    i += match[0].length;
    return new JsonNumber(match[0]);
  };
  const result = value();
  space();
  if (i !== text.length) fail('unexpected text after the value');
  return result;
}

const isObject = (v: JsonValue): v is { [key: string]: JsonValue } =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonNumber);

/** JSON text of a value, numbers as they were written. */
export function jsonText(value: JsonValue): string {
  if (value instanceof JsonNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (isObject(value))
    return `{${Object.keys(value)
      .map((k) => `${JSON.stringify(k)}:${jsonText(value[k] as JsonValue)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const child = (path: string, key: string) =>
  IDENTIFIER.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;

/** The fields in which `b` differs from `a`, depth first in `a`'s field order, then `b`'s new fields. */
export function fieldChanges(a: JsonValue, b: JsonValue, path = '', out: FieldChange[] = []): FieldChange[] {
  if (isObject(a) && isObject(b)) {
    for (const key of Object.keys(a)) {
      const p = child(path, key);
      if (!(key in b)) out.push({ path: p, old: jsonText(a[key] as JsonValue) });
      else fieldChanges(a[key] as JsonValue, b[key] as JsonValue, p, out);
    }
    for (const key of Object.keys(b))
      if (!(key in a)) out.push({ path: child(path, key), new: jsonText(b[key] as JsonValue) });
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let k = 0; k < Math.max(a.length, b.length); k++) {
      const p = `${path}[${k}]`;
      if (k >= b.length) out.push({ path: p, old: jsonText(a[k] as JsonValue) });
      else if (k >= a.length) out.push({ path: p, new: jsonText(b[k] as JsonValue) });
      else fieldChanges(a[k] as JsonValue, b[k] as JsonValue, p, out);
    }
    return out;
  }
  const [ta, tb] = [jsonText(a), jsonText(b)];
  if (ta !== tb) out.push({ path, old: ta, new: tb });
  return out;
}

/** The changed fields of two record texts (which differ); not-JSON records differ as a whole. */
export function recordChanges(a: string, b: string): FieldChange[] {
  let pa: JsonValue;
  let pb: JsonValue;
  try {
    pa = parseExactJson(a);
    pb = parseExactJson(b);
  } catch {
    return [{ path: '', old: a, new: b }];
  }
  const changes = fieldChanges(pa, pb);
  // Same fields and values, other field order or spacing: still not the same bytes.
  return changes.length > 0 ? changes : [{ path: '', old: a, new: b }];
}

// ---------------------------------------------------------------------------------------
// Keys.

const ID = /^\{"id":(-?\d+)[,}]/;
const COMMAND_ID = /^\{"command_id":("(?:[^"\\]|\\.)*")[,}]/;

/** The key a record is matched by: its `id`, its `command_id`, or its position. */
export function recordKey(value: Buffer, position: Position): string {
  const text = value.toString('utf8');
  const fast = ID.exec(text)?.[1] ?? COMMAND_ID.exec(text)?.[1];
  if (fast !== undefined) return fast.startsWith('"') ? (JSON.parse(fast) as string) : fast;
  try {
    const record = JSON.parse(text) as unknown;
    if (record !== null && typeof record === 'object' && !Array.isArray(record)) {
      const { id, command_id } = record as { id?: unknown; command_id?: unknown };
      if (typeof id === 'number' || typeof id === 'string') return String(id);
      if (typeof command_id === 'string') return command_id;
    }
  } catch {
    // not JSON: by position
  }
  return `@${position.partition}:${position.offset}`;
}

// ---------------------------------------------------------------------------------------
// The comparison of one topic.

interface Pending extends DiffRecord {
  key: string;
}

/** Keeps the first `limit` differences of each kind, to be merged in log order at the end. */
class Collector {
  changed: Difference[] = [];
  missing: Difference[] = [];
  extra: Difference[] = [];
  constructor(private readonly limit: number) {}
  add(list: Difference[], make: () => Difference): void {
    if (list.length < this.limit) list.push(make());
  }
}

const at = ({ partition, offset }: Position): Position => ({ partition, offset });

/**
 * Compares two record sequences of one topic, each in (partition, offset) order.
 * Returns the counts and up to `limit` differences in log order.
 */
export async function diffRecords(
  topic: DiffTopic,
  a: AsyncIterable<DiffRecord>,
  b: AsyncIterable<DiffRecord>,
  limit: number,
): Promise<{ summary: TopicSummary; differences: Difference[] }> {
  const summary: TopicSummary = { topic, a: 0, b: 0, identical: 0, changed: 0, missing: 0, extra: 0 };
  const keep = new Collector(limit);
  // Records whose partner has not turned up yet, by key (a queue per key, should ids repeat).
  const waitingA = new Map<string, Pending[]>();
  const waitingB = new Map<string, Pending[]>();
  const take = (waiting: Map<string, Pending[]>, key: string): Pending | undefined => {
    const queue = waiting.get(key);
    const first = queue?.shift();
    if (queue && queue.length === 0) waiting.delete(key);
    return first;
  };
  const hold = (waiting: Map<string, Pending[]>, held: Pending) => {
    // A copy: the value may be a slice of a whole read batch, which would stay in memory.
    const record = { ...held, value: Buffer.from(held.value) };
    const queue = waiting.get(record.key);
    if (queue) queue.push(record);
    else waiting.set(record.key, [record]);
  };
  const compare = (x: Pending | DiffRecord, y: Pending | DiffRecord, key: string) => {
    if (x.value.equals(y.value)) {
      summary.identical++;
      return;
    }
    summary.changed++;
    keep.add(keep.changed, () => ({
      topic,
      kind: 'changed',
      key,
      a: at(x),
      b: at(y),
      fields: recordChanges(x.value.toString('utf8'), y.value.toString('utf8')),
    }));
  };
  const fromA = (record: DiffRecord, key: string) => {
    const partner = take(waitingB, key);
    if (partner) compare(record, partner, key);
    else hold(waitingA, { ...record, key });
  };
  const fromB = (record: DiffRecord, key: string) => {
    const partner = take(waitingA, key);
    if (partner) compare(partner, record, key);
    else hold(waitingB, { ...record, key });
  };

  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  for (;;) {
    const [ra, rb] = await Promise.all([ia.next(), ib.next()]);
    if (ra.done && rb.done) break;
    if (!ra.done) summary.a++;
    if (!rb.done) summary.b++;
    // The common case: the two sides line up byte for byte.
    if (
      !ra.done &&
      !rb.done &&
      waitingA.size === 0 &&
      waitingB.size === 0 &&
      ra.value.value.equals(rb.value.value)
    ) {
      summary.identical++;
      continue;
    }
    const ka = ra.done ? undefined : recordKey(ra.value.value, ra.value);
    const kb = rb.done ? undefined : recordKey(rb.value.value, rb.value);
    if (!ra.done && !rb.done && ka === kb && waitingA.size === 0 && waitingB.size === 0) {
      compare(ra.value, rb.value, ka as string);
      continue;
    }
    if (!ra.done) fromA(ra.value, ka as string);
    if (!rb.done) fromB(rb.value, kb as string);
  }
  for (const queue of waitingA.values())
    for (const record of queue) {
      summary.missing++;
      keep.add(keep.missing, () => ({
        topic,
        kind: 'missing',
        key: record.key,
        a: at(record),
        value: record.value.toString('utf8'),
      }));
    }
  for (const queue of waitingB.values())
    for (const record of queue) {
      summary.extra++;
      keep.add(keep.extra, () => ({
        topic,
        kind: 'extra',
        key: record.key,
        b: at(record),
        value: record.value.toString('utf8'),
      }));
    }
  const position = (d: Difference) => (d.kind === 'extra' ? d.b : d.a);
  const differences = [...keep.changed, ...keep.missing, ...keep.extra]
    .sort((x, y) => {
      const [px, py] = [position(x), position(y)];
      return px.partition - py.partition || px.offset - py.offset;
    })
    .slice(0, limit);
  return { summary, differences };
}

// ---------------------------------------------------------------------------------------
// Data directories.

async function* none(): AsyncGenerator<DiffRecord> {}

/** An engine data directory opened for reading its output topics. */
class DataDir {
  private constructor(
    readonly path: string,
    readonly partitions: number,
    private readonly log: Log,
  ) {}

  static async open(path: string, which: 'A' | 'B'): Promise<DataDir> {
    const config = join(path, 'engine.json');
    if (!existsSync(path))
      throw new DataStreamerError('DIFF_DATA_DIR_NOT_FOUND', `diff: ${which} (${path}) does not exist`);
    if (!existsSync(config) || !existsSync(join(path, 'log')))
      throw new DataStreamerError(
        'DIFF_NOT_A_DATA_DIR',
        `diff: ${which} (${path}) is not an engine data directory (no engine.json and log/); replay a capture into it first`,
      );
    let partitions: unknown;
    try {
      partitions = (JSON.parse(readFileSync(config, 'utf8')) as { partitions?: unknown }).partitions;
    } catch (error) {
      throw new DataStreamerError('DIFF_NOT_A_DATA_DIR', `diff: ${config} is not valid JSON`, 'permanent', {
        cause: error,
      });
    }
    if (!Number.isSafeInteger(partitions) || (partitions as number) < 1)
      throw new DataStreamerError(
        'DIFF_NOT_A_DATA_DIR',
        `diff: ${config} has no valid "partitions" (a whole number >= 1)`,
      );
    // Read only: no fsync timer, and no retention that could remove anything.
    const log = await openEmbeddedLog({
      dir: join(path, 'log'),
      fsync: 'never',
      retentionMs: Number.POSITIVE_INFINITY,
    });
    return new DataDir(path, partitions as number, log);
  }

  /** The topic's records; none when the topic does not exist (nothing is created). */
  async records(name: DiffTopic): Promise<AsyncIterable<DiffRecord>> {
    if (!existsSync(join(this.path, 'log', name))) return none();
    const partitions = (ORGANISATION_TOPICS as readonly string[]).includes(name) ? 1 : this.partitions;
    return topicRecords(await this.log.topic(name, partitions));
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

/** Compares the output topics of data directories `a` and `b`. */
export async function diffDataDirs(a: string, b: string, options: DiffOptions = {}): Promise<DiffReport> {
  const limit = options.limit ?? DEFAULT_DIFF_LIMIT;
  const topics = options.topics ?? DIFF_TOPICS;
  const dirA = await DataDir.open(a, 'A');
  // The same directory twice: one log (it is locked against a second opening).
  const same = existsSync(b) && realpathSync(a) === realpathSync(b);
  let dirB: DataDir;
  try {
    dirB = same ? dirA : await DataDir.open(b, 'B');
  } catch (error) {
    await dirA.close();
    throw error;
  }
  try {
    const report: DiffReport = {
      a,
      b,
      identical: true,
      partitions: { a: dirA.partitions, b: dirB.partitions },
      topics: [],
      total_differences: 0,
      differences: [],
      notes: [],
    };
    if (dirA.partitions !== dirB.partitions)
      report.notes.push(
        `A has ${dirA.partitions} partitions and B ${dirB.partitions}: record ids are derived from the partition and the input offset, so few records can line up`,
      );
    for (const topic of topics) {
      const { summary, differences } = await diffRecords(
        topic,
        await dirA.records(topic),
        await dirB.records(topic),
        limit - report.differences.length,
      );
      report.topics.push(summary);
      report.total_differences += summary.changed + summary.missing + summary.extra;
      report.differences.push(...differences);
    }
    report.identical = report.total_differences === 0;
    return report;
  } finally {
    await dirA.close();
    if (!same) await dirB.close();
  }
}

// ---------------------------------------------------------------------------------------
// The terminal report.

const count = (n: number) => n.toLocaleString('en-US');

function short(text: string | undefined, max = 80): string {
  if (text === undefined) return '(absent)';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line per difference: `usage 704: cost 0.0219726563 -> 0.0439453126`. */
export function formatDifference(d: Difference): string {
  if (d.kind === 'missing')
    return `${d.topic} ${d.key}: missing (in A at ${d.a.partition}:${d.a.offset}, not in B): ${short(d.value)}`;
  if (d.kind === 'extra')
    return `${d.topic} ${d.key}: extra (in B at ${d.b.partition}:${d.b.offset}, not in A): ${short(d.value)}`;
  const fields = d.fields.map((f) => `${f.path || '(record)'} ${short(f.old, 60)} -> ${short(f.new, 60)}`);
  return `${d.topic} ${d.key}: ${fields.join('; ')}`;
}

export function formatDiffReport(report: DiffReport): string {
  const header = ['topic', 'A', 'B', 'identical', 'changed', 'missing', 'extra'];
  const rows = report.topics.map((t) => [
    t.topic,
    count(t.a),
    count(t.b),
    count(t.identical),
    count(t.changed),
    count(t.missing),
    count(t.extra),
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => (r[k] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, k) => (k === 0 ? c.padEnd(widths[k] as number) : c.padStart(widths[k] as number)))
      .join('  ');
  const out = [
    `A: ${report.a}`,
    `B: ${report.b}`,
    ...report.notes.map((n) => `note: ${n}`),
    '',
    line(header),
    ...rows.map(line),
    '',
  ];
  if (report.identical) out.push('identical: every record of every output topic is the same in A and B');
  else {
    const n = report.differences.length;
    out.push(
      `${count(report.total_differences)} difference${report.total_differences === 1 ? '' : 's'}` +
        (n < report.total_differences ? `; the first ${count(n)}:` : ':'),
    );
    for (const d of report.differences) out.push(`  ${formatDifference(d)}`);
  }
  return out.join('\n');
}
