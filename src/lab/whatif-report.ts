/**
 * The what-if report (docs/what-if.md): a terminal table, whatif.csv (every organisation x
 * endpoint x ratezone x currency row) and whatif.html (a self-contained page with the
 * terminal's tables). All amounts are exact decimal strings.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { formatDecimal, formatFixed } from '../core/decimal.js';
import {
  addTotals,
  delta,
  emptyTotals,
  type IdName,
  type UsageTotals,
  type WhatIfResult,
  type WhatIfRow,
} from './whatif.js';

/** Endpoints listed in the "largest changes" table. */
export const TOP_ENDPOINTS = 10;

export interface ZoneTotal {
  organisation: IdName;
  tariff: IdName;
  ratezone: IdName;
  currency: string;
  old: UsageTotals;
  new: UsageTotals;
}

export interface CurrencyTotal {
  currency: string;
  old: UsageTotals;
  new: UsageTotals;
}

export interface WhatIfTables {
  zones: ZoneTotal[];
  /** Endpoint rows with a non-zero delta, largest |delta| first. */
  endpoints: WhatIfRow[];
  currencies: CurrencyTotal[];
}

const abs = (n: bigint) => (n < 0n ? -n : n);

export function whatIfTables(rows: WhatIfRow[], top = TOP_ENDPOINTS): WhatIfTables {
  const zones = new Map<string, ZoneTotal>();
  const currencies = new Map<string, CurrencyTotal>();
  for (const row of rows) {
    const zoneKey = `${row.organisation.id}/${row.tariff.id}/${row.ratezone.id}/${row.currency}`;
    let zone = zones.get(zoneKey);
    if (!zone) {
      zone = {
        organisation: row.organisation,
        tariff: row.tariff,
        ratezone: row.ratezone,
        currency: row.currency,
        old: emptyTotals(),
        new: emptyTotals(),
      };
      zones.set(zoneKey, zone);
    }
    let currency = currencies.get(row.currency);
    if (!currency) {
      currency = { currency: row.currency, old: emptyTotals(), new: emptyTotals() };
      currencies.set(row.currency, currency);
    }
    for (const side of ['old', 'new'] as const) {
      addTotals(zone[side], row[side]);
      addTotals(currency[side], row[side]);
    }
  }
  const endpoints = rows
    .filter((r) => delta(r) !== 0n)
    .sort((a, b) => {
      const d = abs(delta(b)) - abs(delta(a));
      return d > 0n ? 1 : d < 0n ? -1 : a.endpoint.id - b.endpoint.id || a.ratezone.id - b.ratezone.id;
    })
    .slice(0, top);
  return {
    zones: [...zones.values()],
    endpoints,
    currencies: [...currencies.values()].sort((a, b) => (a.currency < b.currency ? -1 : 1)),
  };
}

/** "+1.5", "-0.25", "0". */
export function formatDelta(units: bigint): string {
  return units > 0n ? `+${formatDecimal(units)}` : formatDecimal(units);
}

/** True when the alternative run has other records or volumes in this row (coverage or inclusive-volume changes). */
export function volumeChanged(row: { old: UsageTotals; new: UsageTotals }): boolean {
  const { old: a, new: b } = row;
  return a.records !== b.records || a.dataBytes !== b.dataBytes || a.dataMb !== b.dataMb || a.sms !== b.sms;
}

const mb = (units: bigint) => formatFixed(units, 6);

interface Table {
  head: string[];
  /** Columns aligned right. */
  numeric: boolean[];
  rows: string[][];
}

function volumeCells(row: { old: UsageTotals; new: UsageTotals }): string[] {
  const mark = volumeChanged(row) ? ' *' : '';
  return [
    `${row.old.records.toLocaleString('en-US')}${mark}`,
    `${mb(row.old.dataMb)}${mark}`,
    `${row.old.sms.toLocaleString('en-US')}${mark}`,
  ];
}

function costCells(row: { old: UsageTotals; new: UsageTotals }): string[] {
  return [formatDecimal(row.old.cost), formatDecimal(row.new.cost), formatDelta(delta(row))];
}

const VOLUME_HEAD = ['records', 'data MB', 'SMS', 'old cost', 'new cost', 'delta'];
const VOLUME_NUMERIC = [true, true, true, true, true, true];

function tables(result: WhatIfResult): { title: string; table: Table; empty?: string }[] {
  const t = whatIfTables(result.rows);
  return [
    {
      title: 'Per organisation and ratezone',
      table: {
        head: ['organisation', 'tariff', 'ratezone', 'currency', ...VOLUME_HEAD],
        numeric: [false, false, false, false, ...VOLUME_NUMERIC],
        rows: t.zones.map((z) => [
          `${z.organisation.name} (${z.organisation.id})`,
          `${z.tariff.name} (${z.tariff.id})`,
          `${z.ratezone.name} (${z.ratezone.id})`,
          z.currency,
          ...volumeCells(z),
          ...costCells(z),
        ]),
      },
      empty: 'no usage records',
    },
    {
      title: `Endpoints with the largest change (top ${TOP_ENDPOINTS} by |delta|)`,
      table: {
        head: ['endpoint', 'organisation', 'ratezone', 'currency', ...VOLUME_HEAD],
        numeric: [false, false, false, false, ...VOLUME_NUMERIC],
        rows: t.endpoints.map((r) => [
          `${r.endpoint.name} (${r.endpoint.id})`,
          `${r.organisation.name} (${r.organisation.id})`,
          `${r.ratezone.name} (${r.ratezone.id})`,
          r.currency,
          ...volumeCells(r),
          ...costCells(r),
        ]),
      },
      empty: "no endpoint's cost changes",
    },
    {
      title: 'Totals per currency',
      table: {
        head: ['currency', ...VOLUME_HEAD],
        numeric: [false, ...VOLUME_NUMERIC],
        rows: t.currencies.map((c) => [c.currency, ...volumeCells(c), ...costCells(c)]),
      },
      empty: 'no usage records',
    },
  ];
}

function renderText(table: Table): string {
  const widths = table.head.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (table.numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(table.head), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)]
    .map((l) => `  ${l}`)
    .join('\n');
}

function anyVolumeChanged(result: WhatIfResult): boolean {
  return result.rows.some(volumeChanged);
}

const VOLUME_NOTE =
  '* records or volume differ under the alternative tariffs (zone coverage or inclusive volume changed); old values shown, whatif.csv has both';

/** The report as terminal text. */
export function formatWhatIf(result: WhatIfResult): string {
  const out = [
    `What-if: ${result.capture} re-rated with tariff${result.tariffs.length === 1 ? '' : 's'} ${result.tariffs.join(', ')} from ${result.tariffFile}`,
    `  ${result.records.old.processed.toLocaleString('en-US')} raw records replayed twice; old = the capture's own tariffs, new = the alternative`,
  ];
  for (const { title, table, empty } of tables(result)) {
    out.push('', title, table.rows.length > 0 ? renderText(table) : `  (${empty})`);
  }
  if (anyVolumeChanged(result)) out.push('', VOLUME_NOTE);
  return out.join('\n');
}

export const CSV_COLUMNS = [
  'organisation_id',
  'organisation_name',
  'endpoint_id',
  'endpoint_name',
  'tariff_id',
  'tariff_name',
  'ratezone_id',
  'ratezone_name',
  'currency',
  'old_records',
  'new_records',
  'old_data_bytes',
  'new_data_bytes',
  'old_data_mb',
  'new_data_mb',
  'old_sms',
  'new_sms',
  'old_cost',
  'new_cost',
  'delta',
] as const;

/** One CSV row per organisation x endpoint x ratezone x currency; decimals as exact strings. */
export function whatIfCsv(rows: WhatIfRow[]): string {
  return stringify(
    rows.map((r) => [
      r.organisation.id,
      r.organisation.name,
      r.endpoint.id,
      r.endpoint.name,
      r.tariff.id,
      r.tariff.name,
      r.ratezone.id,
      r.ratezone.name,
      r.currency,
      r.old.records,
      r.new.records,
      r.old.dataBytes.toString(),
      r.new.dataBytes.toString(),
      formatDecimal(r.old.dataMb),
      formatDecimal(r.new.dataMb),
      r.old.sms,
      r.new.sms,
      formatDecimal(r.old.cost),
      formatDecimal(r.new.cost),
      formatDecimal(delta(r)),
    ]),
    { header: true, columns: [...CSV_COLUMNS] },
  );
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

function renderHtml(table: Table): string {
  const cell = (tag: 'th' | 'td', text: string, i: number) =>
    `<${tag}${table.numeric[i] ? ' class="n"' : ''}>${escapeHtml(text)}</${tag}>`;
  return [
    '<table>',
    `<thead><tr>${table.head.map((h, i) => cell('th', h, i)).join('')}</tr></thead>`,
    '<tbody>',
    ...table.rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`),
    '</tbody>',
    '</table>',
  ].join('\n');
}

/** A self-contained static page (inline style, no scripts, no external assets). */
export function whatIfHtml(result: WhatIfResult): string {
  const sections = tables(result).map(
    ({ title, table, empty }) =>
      `<h2>${escapeHtml(title)}</h2>\n${table.rows.length > 0 ? renderHtml(table) : `<p>(${escapeHtml(empty ?? '')})</p>`}`,
  );
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>What-if: ${escapeHtml(result.capture)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; text-align: left; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>What-if re-rating</h1>
<p>Capture <code>${escapeHtml(result.capture)}</code> re-rated with tariff${result.tariffs.length === 1 ? '' : 's'} ${escapeHtml(result.tariffs.join(', '))} from <code>${escapeHtml(result.tariffFile)}</code>: ${escapeHtml(result.records.old.processed.toLocaleString('en-US'))} raw records replayed twice. Old = the capture's own tariffs, new = the alternative. Every row per endpoint is in whatif.csv.</p>
${sections.join('\n')}
${anyVolumeChanged(result) ? `<p>${escapeHtml(VOLUME_NOTE)}</p>\n` : ''}</body>
</html>
`;
}

/** Writes whatif.csv and whatif.html into `dir` (created if missing); returns their paths. */
export function writeWhatIfReport(dir: string, result: WhatIfResult): { csv: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, 'whatif.csv');
  const html = join(dir, 'whatif.html');
  writeFileSync(csv, whatIfCsv(result.rows));
  writeFileSync(html, whatIfHtml(result));
  return { csv, html };
}

function totalsJson(t: UsageTotals) {
  return {
    records: t.records,
    data_bytes: t.dataBytes.toString(),
    data_mb: formatDecimal(t.dataMb),
    sms: t.sms,
    cost: formatDecimal(t.cost),
  };
}

/** The report as plain JSON (decimals and byte counts as strings). */
export function whatIfJson(result: WhatIfResult) {
  const t = whatIfTables(result.rows);
  const row = (r: { old: UsageTotals; new: UsageTotals }) => ({
    old: totalsJson(r.old),
    new: totalsJson(r.new),
    delta: formatDecimal(delta(r)),
  });
  return {
    capture: result.capture,
    tariff_file: result.tariffFile,
    tariffs: result.tariffs,
    raw_records: result.records.old.processed,
    ...(result.kept ? { data_dirs: result.kept } : {}),
    currencies: t.currencies.map((c) => ({ currency: c.currency, ...row(c) })),
    zones: t.zones.map((z) => ({
      organisation: z.organisation,
      tariff: z.tariff,
      ratezone: z.ratezone,
      currency: z.currency,
      ...row(z),
    })),
    rows: result.rows.map((r) => ({
      organisation: r.organisation,
      endpoint: r.endpoint,
      tariff: r.tariff,
      ratezone: r.ratezone,
      currency: r.currency,
      ...row(r),
    })),
  };
}
