/**
 * What-if re-rating: the same capture replayed twice, once with the reference data it was
 * recorded with and once with some of its tariffs replaced (docs/what-if.md), and the
 * usage records of both runs compared per organisation x endpoint x ratezone x currency.
 *
 * Everything is summed exactly: costs and MB as BigInt 10^-10 units (src/core/decimal.ts),
 * bytes as BigInt, never floats.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCapture } from '../capture/reader.js';
import { parseDecimal } from '../core/decimal.js';
import { usageFromJson } from '../core/output.js';
import { EmbeddedEngine, type EngineProgress } from '../engine/engine.js';
import { topicValues } from '../engine/topic-values.js';
import { readDataFile, validateReferenceData } from '../reference/loader.js';
import type { ReferenceData, Tariff } from '../reference/types.js';
import { DataStreamerError, ReferenceDataError } from '../util/errors.js';

/** Sums of one side (old or new) of one row. Costs and MB in 10^-10 units. */
export interface UsageTotals {
  records: number;
  /** Data records: bytes moved (rating.rx_bytes + rating.tx_bytes) and the records' MB volumes summed. */
  dataBytes: bigint;
  dataMb: bigint;
  /** SMS records (one message each). */
  sms: number;
  cost: bigint;
}

export interface IdName {
  id: number;
  name: string;
}

export interface WhatIfRow {
  organisation: IdName;
  endpoint: IdName;
  tariff: IdName;
  ratezone: IdName;
  currency: string;
  /** Under the capture's own tariffs. */
  old: UsageTotals;
  /** Under the alternative tariffs. */
  new: UsageTotals;
}

/** Usage rows keyed by organisation, endpoint, tariff, ratezone and currency. */
export type UsageAggregate = Map<string, { key: Omit<WhatIfRow, 'old' | 'new'>; totals: UsageTotals }>;

export function emptyTotals(): UsageTotals {
  return { records: 0, dataBytes: 0n, dataMb: 0n, sms: 0, cost: 0n };
}

export function addTotals(into: UsageTotals, from: UsageTotals): UsageTotals {
  into.records += from.records;
  into.dataBytes += from.dataBytes;
  into.dataMb += from.dataMb;
  into.sms += from.sms;
  into.cost += from.cost;
  return into;
}

/** New cost minus old cost, in 10^-10 units. */
export function delta(row: { old: UsageTotals; new: UsageTotals }): bigint {
  return row.new.cost - row.old.cost;
}

/**
 * Reads an alternative-tariffs file `{ "tariffs": [ ... ] }` (JSON or YAML) and returns the
 * capture's reference data with those tariffs in place of the ones with the same id.
 * Validated with the reference-data schema and cross-reference checks; the alternative
 * tariffs are checked at the front of the tariff list, so a problem's path
 * (`tariffs[0].ratezones[1].rates.data_per_mb`) is its path in the file.
 */
export function alternativeReference(
  file: string,
  reference: ReferenceData,
): { reference: ReferenceData; replaced: number[] } {
  const data = readDataFile(file);
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new ReferenceDataError(file, ['(top level): must be an object { "tariffs": [ ... ] }']);
  const extra = Object.keys(data).filter((k) => k !== 'tariffs');
  const problems = extra.map(
    (k) => `${k}: is not a known field (an alternative-tariffs file holds only "tariffs")`,
  );
  const tariffs = (data as { tariffs?: unknown }).tariffs;
  if (tariffs === undefined) problems.push('tariffs: is required');
  else if (!Array.isArray(tariffs) || tariffs.length === 0)
    problems.push('tariffs: must be a non-empty array');
  if (problems.length > 0) throw new ReferenceDataError(file, problems);
  const alternative = tariffs as Tariff[];
  // First the ids: a what-if replaces tariffs, it does not add them.
  const known = new Set(reference.tariffs.map((t) => t.id));
  const unknown = alternative
    .map((t, i) => ({ id: (t as { id?: unknown } | null)?.id, i }))
    .filter(({ id }) => typeof id === 'number' && !known.has(id))
    .map(({ id, i }) => `tariffs[${i}].id: tariff ${id} is not in the capture's reference data`);
  if (unknown.length > 0)
    throw new DataStreamerError(
      'WHATIF_UNKNOWN_TARIFF',
      `${file}: ${unknown.join('; ')} (its tariffs: ${[...known].join(', ')}); a what-if replaces tariffs, it does not add them`,
    );
  const ids = new Set(alternative.map((t) => t?.id));
  // The alternative tariffs first, so schema paths are the file's own; then the rest.
  validateReferenceData(
    { ...reference, tariffs: [...alternative, ...reference.tariffs.filter((t) => !ids.has(t.id))] },
    file,
  );
  const byId = new Map(alternative.map((t) => [t.id, t]));
  return {
    reference: { ...reference, tariffs: reference.tariffs.map((t) => byId.get(t.id) ?? t) },
    replaced: [...byId.keys()],
  };
}

/** Replays a capture into a fresh data dir with `reference`; the engine is left open. */
export async function replayWith(
  capture: string,
  reference: ReferenceData,
  dataDir: string,
  options: { partitions?: number; onProgress?: (p: EngineProgress) => void } = {},
): Promise<{ engine: EmbeddedEngine; progress: EngineProgress }> {
  const engine = await EmbeddedEngine.open(
    { dataDir, ...(options.partitions ? { partitions: options.partitions } : {}) },
    reference,
  );
  try {
    const progress = await engine.replay(capture, options.onProgress);
    return { engine, progress };
  } catch (error) {
    await engine.close();
    throw error;
  }
}

/** The engine's usage records (the 'usage' topic) summed per organisation x endpoint x ratezone x currency. */
export async function aggregateUsage(engine: EmbeddedEngine): Promise<UsageAggregate> {
  const rows: UsageAggregate = new Map();
  for await (const json of topicValues(engine.outputTopic('usage'))) {
    const r = usageFromJson(json);
    const name = `${r.organisation.id}/${r.endpoint.id}/${r.tariff.id}/${r.tariff.ratezone.id}/${r.currency.code}`;
    let row = rows.get(name);
    if (!row) {
      row = {
        key: {
          organisation: { id: r.organisation.id, name: r.organisation.name },
          endpoint: { id: r.endpoint.id, name: r.endpoint.name },
          tariff: { id: r.tariff.id, name: r.tariff.name },
          ratezone: { id: r.tariff.ratezone.id, name: r.tariff.ratezone.name },
          currency: r.currency.code,
        },
        totals: emptyTotals(),
      };
      rows.set(name, row);
    }
    const t = row.totals;
    t.records++;
    t.cost += parseDecimal(r.cost);
    if (r.traffic_type.id === 5) {
      t.dataBytes += BigInt(r.rating.rx_bytes) + BigInt(r.rating.tx_bytes);
      t.dataMb += parseDecimal(r.volume.total);
    } else {
      t.sms++;
    }
  }
  return rows;
}

/** Joins both runs' rows (a row only one run has gets empty totals on the other side), in a stable order. */
export function joinRuns(old: UsageAggregate, alt: UsageAggregate): WhatIfRow[] {
  const rows: WhatIfRow[] = [];
  for (const name of new Set([...old.keys(), ...alt.keys()])) {
    const a = old.get(name);
    const b = alt.get(name);
    const key = (a ?? b)?.key as Omit<WhatIfRow, 'old' | 'new'>;
    rows.push({ ...key, old: a?.totals ?? emptyTotals(), new: b?.totals ?? emptyTotals() });
  }
  return rows.sort(
    (x, y) =>
      x.organisation.id - y.organisation.id ||
      x.tariff.id - y.tariff.id ||
      x.ratezone.id - y.ratezone.id ||
      x.endpoint.id - y.endpoint.id ||
      (x.currency < y.currency ? -1 : x.currency > y.currency ? 1 : 0),
  );
}

export interface WhatIfResult {
  capture: string;
  tariffFile: string;
  /** The alternative tariffs' ids. */
  tariffs: number[];
  records: { old: EngineProgress; new: EngineProgress };
  rows: WhatIfRow[];
  /** The data dirs of both runs, when kept. */
  kept?: { old: string; new: string };
}

/**
 * Replays `capture` under its own tariffs and under those of `tariffFile`, each into a
 * fresh temporary data dir, and compares the usage records. The temporary dirs are
 * removed afterwards unless `keep` is set.
 */
export async function whatIf(options: {
  capture: string;
  tariffFile: string;
  partitions?: number;
  keep?: boolean;
  onProgress?: (run: 'old' | 'new', p: EngineProgress) => void;
}): Promise<WhatIfResult> {
  const { header } = await openCapture(options.capture);
  const { reference: alternative, replaced } = alternativeReference(options.tariffFile, header.reference);
  const base = mkdtempSync(join(tmpdir(), 'data-streamer-whatif-'));
  const dirs = { old: join(base, 'old'), new: join(base, 'new') };
  try {
    const runs = {} as Record<'old' | 'new', { aggregate: UsageAggregate; progress: EngineProgress }>;
    for (const run of ['old', 'new'] as const) {
      const { engine, progress } = await replayWith(
        options.capture,
        run === 'old' ? header.reference : alternative,
        dirs[run],
        {
          ...(options.partitions ? { partitions: options.partitions } : {}),
          onProgress: (p) => options.onProgress?.(run, p),
        },
      );
      try {
        runs[run] = { aggregate: await aggregateUsage(engine), progress };
      } finally {
        await engine.close();
      }
    }
    return {
      capture: options.capture,
      tariffFile: options.tariffFile,
      tariffs: replaced,
      records: { old: runs.old.progress, new: runs.new.progress },
      rows: joinRuns(runs.old.aggregate, runs.new.aggregate),
      ...(options.keep ? { kept: dirs } : {}),
    };
  } finally {
    if (!options.keep) rmSync(base, { recursive: true, force: true });
  }
}
