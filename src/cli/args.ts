import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../util/errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Strict parsing: an unknown flag or a missing value is a UsageError naming it. */
export function parse<T extends OptionSpec>(argv: string[], options: T, command: string) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(`${command}: ${message} (see data-streamer ${command} --help)`);
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "30m", "6h", "7d" -> milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match)
    throw new UsageError(
      `${flag}: "${text}" is not a duration; use a number with ms, s, m, h or d (e.g. 24h)`,
    );
  const ms = Math.round(Number(match[1]) * (UNITS[match[2] as string] as number));
  if (ms <= 0) throw new UsageError(`${flag}: must be longer than 0`);
  return ms;
}

export function parseInteger(text: string, flag: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${flag}: "${text}" is not an integer`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${flag}: must be from ${min} to ${max}, got ${n}`);
  return n;
}

export function parseNumber(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: "${text}" is not a number`);
  if (n < min || n > max) throw new UsageError(`${flag}: must be from ${min} to ${max}, got ${n}`);
  return n;
}

/** ISO-8601 UTC instant -> ms since epoch. */
export function parseInstant(text: string, flag: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z)?$/.test(text)
    ? Date.parse(text)
    : Number.NaN;
  if (!Number.isFinite(ms))
    throw new UsageError(`${flag}: "${text}" is not an ISO-8601 UTC time such as 2026-01-05T00:00:00Z`);
  return ms;
}
