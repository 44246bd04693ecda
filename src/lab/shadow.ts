/**
 * Shadow replay (docs/shadow-replay.md): a capture's traffic of some organisations replayed
 * as new organisations (shadows) into the ClickHouse server of a running deployment, so
 * its dashboards and API show them beside the live data. The shadow run has its own data
 * dir (embedded log, snapshots) and shares only the store. What keeps it from touching
 * the live rows:
 *  - its organisations have ids of their own (events and usage are keyed by organisation);
 *  - records of the other organisations are left out before ingest, never dead-lettered;
 *  - its insert tokens and dead-letter sources carry prefixes (ShadowStoring), as its
 *    output ids, made from input positions, are the live engine's ids too.
 */
import { createHash } from 'node:crypto';
import { openCapture } from '../capture/reader.js';
import { EmbeddedEngine, type EngineProgress } from '../engine/engine.js';
import { routeOfLine } from '../engine/ingest.js';
import { type EngineSummary, summarise } from '../engine/summary.js';
import { Directory } from '../reference/directory.js';
import { validateReferenceData } from '../reference/loader.js';
import type { ReferenceData } from '../reference/types.js';
import { openStore, StorageError, type Store, type StoreOptions } from '../storage/index.js';
import { loadMigrations } from '../storage/migrations.js';
import { DataStreamerError, UsageError } from '../util/errors.js';

/** One organisation of the capture and the id it is replayed as. */
export interface ShadowMapping {
  organisation: number;
  shadow: number;
}

const MAPPING = /^(\d+)=(\d+)$/;

/** The name a shadow organisation gets. */
export function shadowName(name: string): string {
  return `${name} (shadow)`;
}

/**
 * `ORG=SHADOW[,ORG=SHADOW...]` -> mappings. Refuses malformed items, ids that are not
 * positive safe integers, an organisation mapped twice, a shadow id used twice, and an
 * organisation mapped to itself.
 */
export function parseShadowMappings(text: string): ShadowMapping[] {
  const mappings: ShadowMapping[] = [];
  for (const item of text.split(',')) {
    const match = MAPPING.exec(item.trim());
    const [organisation, shadow] = [Number(match?.[1]), Number(match?.[2])];
    if (!match || !isId(organisation) || !isId(shadow))
      throw new UsageError(
        `--shadow: "${item.trim()}" is not ORG=SHADOW with two organisation ids (whole numbers from 1), e.g. 1001=91001`,
      );
    if (organisation === shadow)
      throw new UsageError(`--shadow ${item.trim()}: a shadow needs an id of its own, not ${organisation}`);
    if (mappings.some((m) => m.organisation === organisation))
      throw new UsageError(`--shadow: organisation ${organisation} is mapped twice`);
    if (mappings.some((m) => m.shadow === shadow))
      throw new UsageError(`--shadow: shadow id ${shadow} is given twice`);
    mappings.push({ organisation, shadow });
  }
  return mappings;
}

function isId(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1;
}

/** The mappings as `1=91001,2=91002`, by organisation. */
function mappingText(mappings: readonly ShadowMapping[]): string {
  return [...mappings]
    .sort((a, b) => a.organisation - b.organisation)
    .map((m) => `${m.organisation}=${m.shadow}`)
    .join(',');
}

/**
 * The capture's reference data with each mapped organisation under its shadow id and name,
 * and its endpoints and fleets moved to it. Nothing else changes, the order of endpoints
 * and fleets included, so every endpoint keeps its directory index (and so its partition).
 * Refuses an organisation the capture lacks and a shadow id it already has.
 */
export function shadowReference(reference: ReferenceData, mappings: readonly ShadowMapping[]): ReferenceData {
  const known = new Set(reference.organisations.map((o) => o.id));
  for (const { organisation, shadow } of mappings) {
    if (!known.has(organisation))
      throw new UsageError(
        `--shadow ${organisation}=${shadow}: organisation ${organisation} is not in the capture's reference data (its organisations: ${[...known].join(', ')})`,
      );
    if (known.has(shadow))
      throw new UsageError(
        `--shadow ${organisation}=${shadow}: ${shadow} is already an organisation of the capture's reference data; give the shadow an id no organisation has`,
      );
  }
  const to = new Map(mappings.map((m) => [m.organisation, m.shadow]));
  const move = <T extends { organisation_id: number }>(item: T): T => {
    const shadow = to.get(item.organisation_id);
    return shadow === undefined ? item : { ...item, organisation_id: shadow };
  };
  const data: ReferenceData = {
    ...reference,
    organisations: reference.organisations.map((o) => {
      const shadow = to.get(o.id);
      return shadow === undefined ? o : { ...o, id: shadow, name: shadowName(o.name) };
    }),
    ...(reference.endpoints ? { endpoints: reference.endpoints.map(move) } : {}),
    ...(reference.fleets ? { fleets: reference.fleets.map(move) } : {}),
  };
  return validateReferenceData(data, 'the shadow reference data');
}

/** A routed line's partition with this many partitions is its endpoint's directory index. */
const UNPARTITIONED = Number.MAX_SAFE_INTEGER;

/** What the filter left out. */
export interface Skipped {
  records: number;
  /** Records of organisations not mapped, by organisation id. */
  by_organisation: Record<string, number>;
  /** Records of no organisation: unknown IMSIs and endpoints, damaged lines (the live run dead-letters them). */
  without_organisation: number;
}

/**
 * Which capture lines go to the shadow run: those whose IMSI or endpoint belongs to a
 * mapped organisation, found with the ingestor's own routing (routeOfLine). The rest are
 * counted, not ingested.
 */
export class ShadowFilter {
  /** [first index, count, organisation] runs of the directory, by first index. */
  private readonly runs: { first: number; count: number; organisation: number }[] = [];
  private readonly mapped: Set<number>;
  private readonly others = new Map<number, number>();
  private unresolved = 0;

  constructor(
    private readonly directory: Directory,
    mappings: readonly ShadowMapping[],
  ) {
    this.mapped = new Set(mappings.map((m) => m.organisation));
    for (const { id } of directory.data.organisations)
      for (const run of directory.endpointRunsOf(id)) this.runs.push({ ...run, organisation: id });
    this.runs.sort((a, b) => a.first - b.first);
  }

  /** The organisation owning an endpoint index. */
  private organisationOf(index: number): number | undefined {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const run = this.runs[mid] as (typeof this.runs)[number];
      if (index < run.first) hi = mid - 1;
      else if (index >= run.first + run.count) lo = mid + 1;
      else return run.organisation;
    }
    return undefined;
  }

  /** Whether the line goes to the shadow run; counted as skipped otherwise. */
  keep(line: string): boolean {
    const { partition, key } = routeOfLine(line, this.directory, UNPARTITIONED);
    // Without a key the line names no endpoint of the reference data.
    const organisation = key === null ? undefined : this.organisationOf(partition);
    if (organisation === undefined) {
      this.unresolved++;
      return false;
    }
    if (this.mapped.has(organisation)) return true;
    this.others.set(organisation, (this.others.get(organisation) ?? 0) + 1);
    return false;
  }

  get skipped(): Skipped {
    const byOrganisation = [...this.others].sort(([a], [b]) => a - b);
    return {
      records: byOrganisation.reduce((n, [, count]) => n + count, 0) + this.unresolved,
      by_organisation: Object.fromEntries(byOrganisation.map(([id, n]) => [String(id), n])),
      without_organisation: this.unresolved,
    };
  }
}

/** What the shadow run's writer puts in front of its tokens and dead-letter sources. */
export function shadowPrefixes(
  mappings: readonly ShadowMapping[],
  capture: { header: object; partitions: number },
): { tokenPrefix: string; sourcePrefix: string } {
  // The tokens name the content: the same capture, mappings and partitions give the same
  // outputs in the same ranges, anything else other tokens (never dropped as a repeat).
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ header: capture.header, partitions: capture.partitions }))
    .digest('hex')
    .slice(0, 12);
  const shadows = [...mappings].sort((a, b) => a.organisation - b.organisation).map((m) => m.shadow);
  return {
    tokenPrefix: `shadow:${mappingText(mappings)}:${fingerprint}:`,
    sourcePrefix: `shadow:${shadows.join(',')}`,
  };
}

const MISSING = new Set(['UNKNOWN_TABLE', 'UNKNOWN_DATABASE']);

/**
 * Before anything is written: the store must hold a running engine's schema, at the
 * version of this build (a shadow run must not migrate a live store), and each shadow id
 * must be free there or hold an earlier run of the same shadow (its organisation name).
 */
export async function checkShadowStore(
  store: Store,
  where: string,
  mappings: readonly ShadowMapping[],
  reference: ReferenceData,
): Promise<void> {
  const newest = loadMigrations().at(-1)?.version ?? 0;
  let version = 0;
  try {
    const [row] = await store.query('SELECT toString(max(version)) AS version FROM schema_migrations');
    version = Number(row?.version ?? 0);
  } catch (error) {
    if (!(error instanceof StorageError && MISSING.has(error.clickhouseType ?? ''))) throw error;
  }
  if (version === 0)
    throw new DataStreamerError(
      'SHADOW_STORE_EMPTY',
      `${where} holds no Data Streamer tables: a shadow replay goes beside a running engine, into the store it writes (check clickhouse.url and clickhouse.database)`,
    );
  if (version < newest)
    throw new DataStreamerError(
      'SHADOW_STORE_SCHEMA',
      `${where} is at schema migration ${version}, this build of data-streamer has ${newest}: a shadow replay does not migrate the live store; run the deployment's version, or upgrade the deployment first`,
    );
  const names = new Map(reference.organisations.map((o) => [o.id, o.name]));
  for (const { organisation, shadow } of mappings) {
    const expected = shadowName(names.get(organisation) ?? '');
    for (const table of ['usage_records', 'events']) {
      const [row] = await store.query(
        `SELECT JSONExtractString(json, 'organisation', 'name') AS name FROM ${table} WHERE organisation_id = ${shadow} AND name != '${expected.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}' LIMIT 1`,
      );
      if (row)
        throw new UsageError(
          `--shadow ${organisation}=${shadow}: organisation ${shadow} already has ${table === 'events' ? 'events' : 'usage records'} in ${where}, named "${String(row.name)}", so it is not a shadow of organisation ${organisation}; choose an id no organisation uses`,
        );
    }
  }
}

export interface ShadowProgress extends EngineProgress {
  /** Capture lines left out so far (other organisations, no organisation). */
  skipped: number;
}

export interface ShadowResult {
  capture: string;
  dataDir: string;
  organisations: { id: number; name: string; shadow: { id: number; name: string } }[];
  progress: ShadowProgress;
  skipped: Skipped;
  /** The shadow run's outputs (its own log): what it stored. */
  summary: EngineSummary;
}

/**
 * Replays `capture` as shadow organisations into a ClickHouse server another engine writes.
 * Resumable and idempotent like replay: the same data dir again carries on or adds
 * nothing; a fresh data dir inserts the same ranges with the same tokens, which
 * ClickHouse drops within its deduplication window.
 */
export async function shadowReplay(options: {
  capture: string;
  mappings: readonly ShadowMapping[];
  store: Extract<StoreOptions, { kind: 'server' }>;
  /** How the store is named in messages (no credentials). */
  storeName: string;
  dataDir: string;
  partitions: number;
  speed?: number;
  onProgress?: (progress: ShadowProgress) => void;
}): Promise<ShadowResult> {
  const { header } = await openCapture(options.capture);
  const reference = shadowReference(header.reference, options.mappings);
  const check = await openStore(options.store);
  try {
    await checkShadowStore(check, options.storeName, options.mappings, header.reference);
  } finally {
    await check.close();
  }
  let complete = false;
  const engine = await EmbeddedEngine.open(
    {
      dataDir: options.dataDir,
      partitions: options.partitions,
      store: options.store,
      shadow: {
        ...shadowPrefixes(options.mappings, { header, partitions: options.partitions }),
        complete: () => complete,
      },
    },
    reference,
  );
  try {
    if (engine.raw.partitions !== options.partitions)
      throw new UsageError(
        `${options.dataDir} was made with ${engine.raw.partitions} partitions, the configuration has ${options.partitions}: use a fresh --data-dir`,
      );
    const filter = new ShadowFilter(new Directory(header.reference), options.mappings);
    const report = (p: EngineProgress) => options.onProgress?.({ ...p, skipped: filter.skipped.records });
    const replayed = await engine.replay(options.capture, report, {
      ...(options.speed === undefined ? {} : { speed: options.speed }),
      keep: (line) => filter.keep(line),
    });
    // Every output is on the log now: the partial last ranges may be stored.
    complete = true;
    await engine.settle();
    const progress: ShadowProgress = { ...replayed, skipped: filter.skipped.records };
    report(progress);
    const names = new Map(header.reference.organisations.map((o) => [o.id, o.name]));
    return {
      capture: options.capture,
      dataDir: options.dataDir,
      organisations: options.mappings.map((m) => {
        const name = names.get(m.organisation) ?? '';
        return { id: m.organisation, name, shadow: { id: m.shadow, name: shadowName(name) } };
      }),
      progress,
      skipped: filter.skipped,
      summary: await summarise(engine),
    };
  } finally {
    await engine.close();
  }
}
