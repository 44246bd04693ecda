import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECIMAL_ONE, formatDecimal, parseDecimal } from '../src/core/decimal.js';
import { dataCost } from '../src/core/rating.js';
import { alternativeReference, emptyTotals, type WhatIfResult } from '../src/lab/whatif.js';
import { CSV_COLUMNS, escapeHtml, whatIfCsv, whatIfHtml } from '../src/lab/whatif-report.js';
import { generateReferenceData } from '../src/reference/generator.js';
import type { Ratezone, Tariff } from '../src/reference/types.js';
import { runSimulation } from '../src/simulator/run.js';
import { openStore } from '../src/storage/index.js';
import { DataStreamerError, ReferenceDataError } from '../src/util/errors.js';
import { CLI, cli } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-whatif-'));

const double = (rate: string) => formatDecimal(parseDecimal(rate) * 2n);

/** The tariff with one zone's prices doubled: data, excess, MO and MT (the zone gets its own MT rate). */
function doubled(original: Tariff, zoneId: number): Tariff {
  const tariff = structuredClone(original);
  return {
    ...tariff,
    ratezones: tariff.ratezones.map((z): Ratezone => {
      if (z.id !== zoneId) return z;
      return {
        ...z,
        rates: {
          data_per_mb: double(z.rates.data_per_mb),
          sms_mo: double(z.rates.sms_mo),
          sms_mt: double(z.rates.sms_mt ?? tariff.default_sms_mt_rate),
        },
        // The inclusive volume is a volume, not a price: it stays; its excess rate doubles.
        ...(z.inclusive_volume
          ? {
              inclusive_volume: {
                ...z.inclusive_volume,
                excess_per_mb: double(z.inclusive_volume.excess_per_mb),
              },
            }
          : {}),
      };
    }),
  };
}

// 2,000 devices over 7.5 virtual hours: about 105,000 raw records (checked below).
const reference = generateReferenceData({ devices: 2000, seed: 7 });
const capture = join(dir, 'capture.ndjson');
const tariff = reference.tariffs.find((t) => t.id === 582) as Tariff;
const zone = tariff.ratezones.find((z) => z.name === 'Zone A') as Ratezone;
const altFile = join(dir, 'alt.json');
let records = 0;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it)`);
  const summary = await runSimulation({
    reference,
    seed: 7,
    start: Date.UTC(2026, 0, 5),
    durationMs: 7.5 * 3_600_000,
    out: capture,
  });
  records = summary.records;
  writeFileSync(altFile, JSON.stringify({ tariffs: [doubled(tariff, zone.id)] }, null, 2));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('what-if re-rating (replay --tariff --diff)', () => {
  it("doubles exactly one zone's cost on a 100k-record capture; every other zone and every volume unchanged", async () => {
    expect(records).toBeGreaterThanOrEqual(100_000);
    expect(records).toBeLessThan(130_000);
    // Why "exactly" holds here (docs/what-if.md): with 1 KB blocks a data record costs
    // blocks x rate / 1024 (in 10^-10 units), rounded half-up per record. Zone A's 0.20/MB
    // is a multiple of 1024 such units, so no record's cost is rounded and doubling the rate
    // doubles every record's cost exactly. SMS costs are the rate itself: always exact.
    expect(tariff.data_blocksize_bytes).toBe(1024);
    expect(zone.inclusive_volume).toBeUndefined();
    expect(parseDecimal(zone.rates.data_per_mb) % 1024n).toBe(0n);

    const report = join(dir, 'report');
    const result = await cli('replay', capture, '--tariff', altFile, '--diff', '--report', report, '--quiet');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const kept = /Data dirs kept \(--report\): (\S+) \(capture tariffs\), (\S+) \(alternative\)/.exec(
      result.stdout,
    );
    expect(kept).not.toBeNull();
    const [oldDir, newDir] = [kept?.[1] as string, kept?.[2] as string];
    try {
      const rows = parseCsv(readFileSync(join(report, 'whatif.csv'), 'utf8'), { columns: true }) as Record<
        (typeof CSV_COLUMNS)[number],
        string
      >[];
      expect(Object.keys(rows[0] ?? {})).toEqual([...CSV_COLUMNS]);
      const zoneOld = emptyTotals();
      const zoneNew = emptyTotals();
      const otherZones = new Set<string>();
      const zoneByOrganisation = new Map<string, bigint>();
      let all = { old: 0n, new: 0n };
      for (const row of rows) {
        // Volumes (and record counts) are the same traffic in both runs.
        expect([row.new_records, row.new_data_bytes, row.new_data_mb, row.new_sms]).toEqual([
          row.old_records,
          row.old_data_bytes,
          row.old_data_mb,
          row.old_sms,
        ]);
        const [o, n] = [parseDecimal(row.old_cost), parseDecimal(row.new_cost)];
        expect(parseDecimal(row.delta)).toBe(n - o);
        all = { old: all.old + o, new: all.new + n };
        if (row.tariff_id === '582' && row.ratezone_id === String(zone.id)) {
          // Per endpoint too: every record of the zone doubles exactly.
          expect(n).toBe(2n * o);
          zoneOld.cost += o;
          zoneNew.cost += n;
          zoneOld.records += Number(row.old_records);
          zoneOld.sms += Number(row.old_sms);
          zoneByOrganisation.set(
            row.organisation_id,
            (zoneByOrganisation.get(row.organisation_id) ?? 0n) + o,
          );
        } else {
          expect(n).toBe(o);
          otherZones.add(`${row.tariff_id}/${row.ratezone_id}`);
        }
      }
      expect(zoneOld.records).toBeGreaterThan(10_000);
      expect(zoneOld.sms).toBeGreaterThan(0);
      expect(zoneOld.cost).toBeGreaterThan(0n);
      expect(zoneNew.cost).toBe(2n * zoneOld.cost);
      expect(otherZones.size).toBeGreaterThan(5);

      // Independent of the report's own sums: ClickHouse in the kept data dirs, per zone.
      const perZone = async (dataDir: string) => {
        const store = await openStore({ kind: 'embedded', dataDir: join(dataDir, 'clickhouse') });
        try {
          const result = await store.query(
            'SELECT tariff_id, ratezone_id, toString(sum(cost)) AS cost, toString(sum(volume_total)) AS mb, count() AS n FROM usage_records GROUP BY ALL ORDER BY ALL',
          );
          return new Map(result.map((r) => [`${r.tariff_id}/${r.ratezone_id}`, r]));
        } finally {
          await store.close();
        }
      };
      const [chOld, chNew] = [await perZone(oldDir), await perZone(newDir)];
      expect([...chNew.keys()]).toEqual([...chOld.keys()]);
      let chTotal = 0n;
      for (const [key, o] of chOld) {
        const n = chNew.get(key) as Record<string, string>;
        expect([n.n, n.mb]).toEqual([o.n, o.mb]);
        const factor = key === `582/${zone.id}` ? 2n : 1n;
        expect(parseDecimal(n.cost as string)).toBe(factor * parseDecimal(o.cost as string));
        chTotal += parseDecimal(o.cost as string);
      }
      expect(chTotal).toBe(all.old);
      expect(parseDecimal((chOld.get(`582/${zone.id}`) as Record<string, string>).cost as string)).toBe(
        zoneOld.cost,
      );

      // The terminal table: the zone's line and the grand total with the same exact delta.
      expect(result.stdout).toContain('Per organisation and ratezone');
      expect(result.stdout).toContain('Totals per currency');
      const zoneSection = result.stdout
        .split('\n\n')
        .find((s) => s.startsWith('Per organisation and ratezone'));
      const zoneLines = (zoneSection ?? '').split('\n').filter((l) => l.includes(`Zone A (${zone.id})  `));
      expect(zoneLines.length).toBe(zoneByOrganisation.size);
      for (const line of zoneLines) {
        // Per organisation in the zone: delta = old cost (doubled).
        const organisation = /\((\d+)\)/.exec(line)?.[1] as string;
        const cost = zoneByOrganisation.get(organisation) as bigint;
        expect(line.trim().split(/\s+/).slice(-3)).toEqual([
          formatDecimal(cost),
          formatDecimal(2n * cost),
          `+${formatDecimal(cost)}`,
        ]);
      }
      const total = result.stdout.split('\n').find((l) => /^\s+EUR\s/.test(l)) ?? '';
      expect(total).toContain(formatDecimal(all.old));
      expect(total).toContain(formatDecimal(all.new));
      expect(total.trim().endsWith(`+${formatDecimal(all.new - all.old)}`)).toBe(true);

      // The page: self-contained, the same numbers.
      const html = readFileSync(join(report, 'whatif.html'), 'utf8');
      expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
      expect(html).not.toMatch(/<script|<link|\bsrc=|\bhref=|url\(/i);
      expect(html).toContain(`<td>Zone A (${zone.id})</td>`);
      expect(html).toContain(`<td class="n">+${formatDecimal(all.new - all.old)}</td>`);
      expect((html.match(/<table>/g) ?? []).length).toBe(3);
    } finally {
      // Both live in one data-streamer-whatif-* dir.
      rmSync(dirname(oldDir), { recursive: true, force: true });
      rmSync(dirname(newDir), { recursive: true, force: true });
    }
  }, 180_000);

  it('--tariff without --diff replays only the alternative into --data-dir', async () => {
    const small = join(dir, 'small.ndjson');
    await runSimulation({
      reference,
      seed: 3,
      start: Date.UTC(2026, 0, 5),
      durationMs: 1_800_000,
      out: small,
    });
    const dataDir = join(dir, 'alt-engine');
    const alone = await cli('replay', small, '--tariff', altFile, '--data-dir', dataDir, '--json', '--quiet');
    expect(alone.stderr).toBe('');
    expect(alone.code).toBe(0);
    const stored = JSON.parse(readFileSync(join(dataDir, 'reference.json'), 'utf8')) as typeof reference;
    const storedZone = stored.tariffs.find((t) => t.id === 582)?.ratezones.find((z) => z.id === zone.id);
    expect(storedZone?.rates.data_per_mb).toBe(double(zone.rates.data_per_mb));
    const diff = await cli('replay', small, '--tariff', altFile, '--diff', '--json', '--quiet');
    expect(diff.code).toBe(0);
    const report = JSON.parse(diff.stdout) as { currencies: { currency: string; new: { cost: string } }[] };
    expect(report.currencies.find((c) => c.currency === 'EUR')?.new.cost).toBe(
      JSON.parse(alone.stdout).cost.EUR,
    );
  }, 120_000);

  it('refuses a bad alternative-tariffs file, naming the file and the field', async () => {
    const write = (name: string, data: unknown) => {
      const file = join(dir, name);
      writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data));
      return file;
    };
    const badPrice = doubled(tariff, zone.id);
    (badPrice.ratezones[1] as { rates: { data_per_mb: unknown } }).rates.data_per_mb = 0.5;
    const priceFile = write('bad-price.json', { tariffs: [badPrice] });
    expect(() => alternativeReference(priceFile, reference)).toThrow(ReferenceDataError);
    expect(() => alternativeReference(priceFile, reference)).toThrow(
      /bad-price\.json: 1 problem[\s\S]*tariffs\[0\]\.ratezones\[1\]\.rates\.data_per_mb: must be a decimal string/,
    );

    const unknownFile = write('unknown.json', { tariffs: [{ ...tariff, id: 999 }] });
    try {
      alternativeReference(unknownFile, reference);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(DataStreamerError);
      expect((error as DataStreamerError).code).toBe('WHATIF_UNKNOWN_TARIFF');
      expect((error as Error).message).toMatch(
        /unknown\.json: tariffs\[0\]\.id: tariff 999 is not in the capture's/,
      );
    }
    // A zone id that another tariff uses: the reference data's cross-reference check.
    const clash = doubled(tariff, zone.id);
    (clash.ratezones[0] as { id: number }).id = (reference.tariffs[1] as Tariff).ratezones[0]?.id as number;
    expect(() => alternativeReference(write('clash.json', { tariffs: [clash] }), reference)).toThrow(
      ReferenceDataError,
    );
    expect(() => alternativeReference(write('shape.json', { tariff: [] }), reference)).toThrow(
      /tariff: is not a known field[\s\S]*tariffs: is required/,
    );
    expect(() => alternativeReference(write('broken.json', '{"tariffs": ['), reference)).toThrow(
      /broken\.json: 1 problem[\s\S]*cannot be parsed as JSON/,
    );
    // YAML works too.
    const yamlFile = write('alt.yaml', `tariffs:\n  - ${JSON.stringify(doubled(tariff, zone.id))}\n`);
    expect(alternativeReference(yamlFile, reference).replaced).toEqual([582]);

    // Through the CLI: exit 1 with the message, before any replay; flag mistakes exit 2.
    const bad = await cli('replay', capture, '--tariff', priceFile, '--diff');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('tariffs[0].ratezones[1].rates.data_per_mb: must be a decimal string');
    const unknown = await cli('replay', capture, '--tariff', unknownFile, '--diff');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('tariff 999');
    const noTariff = await cli('replay', capture, '--diff');
    expect([noTariff.code, noTariff.stderr]).toEqual([2, expect.stringContaining('--diff needs --tariff')]);
    const reportFile = await cli('replay', capture, '--tariff', altFile, '--diff', '--report', altFile);
    expect([reportFile.code, reportFile.stderr]).toEqual([2, expect.stringContaining('--report')]);
    expect((await cli('replay', capture, '--tariff', altFile, '--report', dir)).stderr).toContain(
      '--report DIR needs --diff',
    );
    expect((await cli('replay', capture, '--tariff', altFile, '--diff', '--data-dir', dir)).code).toBe(2);
  }, 60_000);
});

describe('what-if report files', () => {
  const nasty = '<b>"Acme" & Co, \'Ltd\'\n</b>';
  const result: WhatIfResult = {
    capture: 'c<1>.ndjson',
    tariffFile: 'alt.json',
    tariffs: [1],
    records: {
      old: { ingested: 2, processed: 2, lag: 0, virtualTime: null },
      new: { ingested: 2, processed: 2, lag: 0, virtualTime: null },
    },
    rows: [
      {
        organisation: { id: 1, name: nasty },
        endpoint: { id: 2, name: 'e,"2"' },
        tariff: { id: 1, name: 'T' },
        ratezone: { id: 3, name: 'Z' },
        currency: 'EUR',
        old: { records: 1, dataBytes: 10n, dataMb: 1n, sms: 0, cost: 15n },
        new: { records: 1, dataBytes: 10n, dataMb: 1n, sms: 0, cost: 31n },
      },
    ],
  };

  it('CSV quotes through csv-stringify and parses back to the same strings', () => {
    const [row] = parseCsv(whatIfCsv(result.rows), { columns: true }) as Record<string, string>[];
    expect(row?.organisation_name).toBe(nasty);
    expect(row?.endpoint_name).toBe('e,"2"');
    expect([row?.old_cost, row?.new_cost, row?.delta, row?.old_data_mb]).toEqual([
      '0.0000000015',
      '0.0000000031',
      '0.0000000016',
      '0.0000000001',
    ]);
  });

  it('HTML escapes every name', () => {
    const html = whatIfHtml(result);
    expect(html).not.toContain('<b>');
    expect(html).toContain(escapeHtml(nasty));
    expect(html).toContain('&lt;b&gt;&quot;Acme&quot; &amp; Co, &#39;Ltd&#39;');
    expect(html).toContain('c&lt;1&gt;.ndjson');
  });
});

describe('rounding when a rate doubles (docs/what-if.md)', () => {
  it('per record: exact when rate x 10^10 is a multiple of 1024, else off by at most 10^-10', () => {
    let differs = 0;
    for (const rate of ['0.20', '1.00', '0.24', '0.10', '0.25', '0.30', '0.35', '0.0123456789']) {
      const exact = parseDecimal(rate) % 1024n === 0n;
      for (let blocks = 1n; blocks <= 2000n; blocks++) {
        const bytes = blocks * 1024n;
        const old = dataCost(bytes, rate);
        const now = dataCost(bytes, double(rate));
        const gap = now - 2n * old;
        if (exact) expect(gap).toBe(0n);
        expect(gap >= -1n && gap <= 1n).toBe(true);
        if (gap !== 0n) differs++;
      }
    }
    // 1 KB at 0.10/MB: 0.00009765625 rounds to 0.0000976563, doubled 0.0001953125, not 0.0001953126.
    expect(dataCost(1024n, '0.10')).toBe(976563n);
    expect(dataCost(1024n, '0.20')).toBe(1953125n);
    expect(differs).toBeGreaterThan(0);
    expect(DECIMAL_ONE).toBe(10n ** 10n);
  });
});
