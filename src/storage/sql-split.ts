/**
 * Splits SQL text into statements at top-level semicolons. ClickHouse's HTTP interface runs
 * one statement per request, so a migration file with several goes out one by one.
 * Semicolons inside 'strings', "identifiers", `identifiers`, -- comments and block
 * comments do not split.
 */

export interface SqlStatement {
  sql: string;
  /** 1-based line of the statement's first character in the text, for error messages. */
  line: number;
}

export function splitStatements(text: string): SqlStatement[] {
  const out: SqlStatement[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number) => {
    const raw = text.slice(start, end);
    if (stripComments(raw).trim() !== '') {
      // Leading comments document the statement in the file; ClickHouse needs only the SQL.
      const offset = start + skipLeadingComments(raw);
      out.push({ sql: text.slice(offset, end).trim(), line: lineAt(text, offset) });
    }
    start = end + 1;
  };
  while (i < text.length) {
    const ch = text[i];
    const next = text[i + 1];
    if (ch === "'" || ch === '"' || ch === '`') {
      i = skipQuoted(text, i, ch);
    } else if (ch === '-' && next === '-') {
      i = skipLineComment(text, i);
    } else if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (ch === ';') {
      push(i);
      i++;
    } else {
      i++;
    }
  }
  push(text.length);
  return out;
}

/** Index just past the closing quote; a backslash escapes, a doubled quote is one quote. */
function skipQuoted(text: string, open: number, quote: string): number {
  let i = open + 1;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\') i += 2;
    else if (ch === quote && text[i + 1] === quote) i += 2;
    else if (ch === quote) return i + 1;
    else i++;
  }
  return text.length;
}

function skipLineComment(text: string, from: number): number {
  const end = text.indexOf('\n', from);
  return end < 0 ? text.length : end + 1;
}

/** The text with comments removed (quoted text kept), to tell an empty statement. */
function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    const next = text[i + 1];
    if (ch === "'" || ch === '"' || ch === '`') {
      const end = skipQuoted(text, i, ch);
      out += text.slice(i, end);
      i = end;
    } else if (ch === '-' && next === '-') {
      i = skipLineComment(text, i);
    } else if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/** Index of the first character of `text` that is neither blank nor in a comment. */
function skipLeadingComments(text: string): number {
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    if (text.startsWith('--', i)) i = skipLineComment(text, i);
    else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else return i;
  }
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
