/**
 * Flattens one record's JSON text into named CSV cells, the way emnify names its S3 columns:
 * a nested object's fields become `<object>_<field>`, recursively (`endpoint_id`,
 * `event_type_description`, `detail_pdp_context_apn`). Arrays, and objects that are still
 * objects once flattened (`{}`), are one cell holding their JSON text; null is an empty cell.
 *
 * Cells are cut from the record's own text rather than from JSON.parse: a number keeps its
 * digits as sent (ids near 2^63, a cost of 0.0000001 that JSON.stringify would print as
 * 1e-7), and an array cell is its exact text. Strings are decoded (escapes resolved).
 */

/** Column name → cell text, in the record's field order. */
export type Cells = Map<string, string>;

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Throws a SyntaxError when `json` is not exactly one JSON object. */
export function flattenRecord(json: string): Cells {
  return new RecordScanner(json).record();
}

/** A strict JSON scanner that writes leaf values into `Cells` as it goes. */
class RecordScanner {
  private pos = 0;

  constructor(private readonly text: string) {}

  record(): Cells {
    const cells: Cells = new Map();
    this.whitespace();
    if (this.text[this.pos] !== '{') this.fail('expected a JSON object');
    this.object('', cells);
    this.whitespace();
    if (this.pos < this.text.length) this.fail('unexpected text after the object');
    return cells;
  }

  /** At `{`. With `cells` null the value is only skipped (inside arrays). */
  private object(column: string, cells: Cells | null): void {
    const start = this.pos++;
    this.whitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      if (column) cells?.set(column, this.text.slice(start, this.pos));
      return;
    }
    for (;;) {
      this.whitespace();
      if (this.text[this.pos] !== '"') this.fail('expected a field name');
      const name = this.string();
      this.whitespace();
      if (this.text[this.pos++] !== ':') this.fail("expected ':'");
      this.value(column ? `${column}_${name}` : name, cells);
      this.whitespace();
      const next = this.text[this.pos++];
      if (next === '}') return;
      if (next !== ',') this.fail("expected ',' or '}'");
    }
  }

  private value(column: string, cells: Cells | null): void {
    this.whitespace();
    const c = this.text[this.pos];
    if (c === '{') {
      this.object(column, cells);
      return;
    }
    if (c === '[') {
      const start = this.pos;
      this.array();
      cells?.set(column, this.text.slice(start, this.pos));
      return;
    }
    if (c === '"') {
      const text = this.string();
      cells?.set(column, text);
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        cells?.set(column, literal === 'null' ? '' : literal);
        return;
      }
    }
    NUMBER.lastIndex = this.pos;
    const number = NUMBER.exec(this.text);
    if (!number) this.fail('expected a value');
    this.pos += number[0].length;
    cells?.set(column, number[0]);
  }

  /** At `[`: skips the array (its elements are validated, not kept). */
  private array(): void {
    this.pos++;
    this.whitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (;;) {
      this.value('', null);
      this.whitespace();
      const next = this.text[this.pos++];
      if (next === ']') return;
      if (next !== ',') this.fail("expected ',' or ']'");
    }
  }

  /** At `"`: returns the decoded string. */
  private string(): string {
    const start = this.pos++;
    let escaped = false;
    for (;;) {
      const code = this.text.charCodeAt(this.pos);
      if (Number.isNaN(code) || code < 0x20) this.fail('unterminated string');
      this.pos++;
      if (code === 0x5c /* \ */) {
        escaped = true;
        this.pos++;
      } else if (code === 0x22 /* " */) break;
    }
    const raw = this.text.slice(start, this.pos);
    if (!escaped) return raw.slice(1, -1);
    try {
      return JSON.parse(raw) as string;
    } catch {
      return this.fail('invalid escape in string');
    }
  }

  private whitespace(): void {
    for (;;) {
      const c = this.text[this.pos];
      if (c !== ' ' && c !== '\n' && c !== '\r' && c !== '\t') return;
      this.pos++;
    }
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.pos}`);
  }
}
