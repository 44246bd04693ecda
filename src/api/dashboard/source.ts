/**
 * The dashboard's figures, read from the engine's public reads on each poll:
 *   - throughput: a bounded ring of (wall time, processedCount) samples, at most one per
 *     `sampleMs`, taken when someone asks; records/s is the slope between two samples;
 *   - the virtual clock: engine.eventTime;
 *   - devices: engine.fleetOf(organisation), by status and visited country;
 *   - usage and cost per ratezone: the `usage_daily` rollup in ClickHouse, summed there
 *     (decimals leave it as text and stay text);
 *     both cached per organisation for `cacheMs`: many viewers polling every 2 s cost one
 *     cheap query and one walk over the organisation's devices per organisation per window;
 *   - data streams: the StreamManager's list and status of the organisation's streams.
 */
import type { EmbeddedEngine, FleetSummary } from '../../engine/engine.js';
import type { Store } from '../../storage/store.js';
import { type StreamManager, StreamNotFound, type StreamStatus } from '../../streams/manager.js';
import { DataStreamerError } from '../../util/errors.js';
import { ISO_NUMERIC } from './iso-numeric.js';
import type { DashboardSnapshot, DashboardSource } from './plugin.js';

export interface DashboardSourceOptions {
  /** Wall clock, ms (tests move it). Default Date.now. */
  now?: () => number;
  /** Minimum wall time between two throughput samples, ms. Default 1000. */
  sampleMs?: number;
  /** Throughput samples kept (the chart's history). Default 300. */
  samples?: number;
  /** How long one organisation's device counts and ClickHouse figures are reused, ms. Default 2000. */
  cacheMs?: number;
}

type Usage = DashboardSnapshot['usage'];

const TRAFFIC: Record<number, { description: string; unit: string }> = {
  5: { description: 'Data', unit: 'MB' },
  6: { description: 'SMS', unit: 'SMS' },
};

/** A fixed-size ring of (wall ms, processed count) samples, oldest first when read. */
export class ThroughputRing {
  private readonly times: number[] = [];
  private readonly counts: number[] = [];

  constructor(
    private readonly capacity: number,
    private readonly minGapMs: number,
  ) {}

  /** Records a sample unless the last one is younger than the minimum gap. */
  sample(at: number, count: number): void {
    const last = this.times[this.times.length - 1];
    if (last !== undefined && at - last < this.minGapMs) return;
    this.times.push(at);
    this.counts.push(count);
    if (this.times.length > this.capacity) {
      this.times.shift();
      this.counts.shift();
    }
  }

  /** Records/s between consecutive samples, stamped with the later one's time. */
  rates(): { at: number; perSecond: number }[] {
    const out: { at: number; perSecond: number }[] = [];
    for (let i = 1; i < this.times.length; i++) {
      const dt = ((this.times[i] as number) - (this.times[i - 1] as number)) / 1000;
      const dn = (this.counts[i] as number) - (this.counts[i - 1] as number);
      // A reopened engine starts counting at 0 again: no negative rates.
      out.push({ at: this.times[i] as number, perSecond: dt > 0 ? Math.max(0, dn) / dt : 0 });
    }
    return out;
  }
}

/** The organisation id as a SQL literal: a checked integer (Store.query takes SQL text only). */
function orgLiteral(organisationId: number): string {
  if (!Number.isSafeInteger(organisationId) || organisationId < 0)
    throw new DataStreamerError(
      'DASHBOARD_INVALID_ORGANISATION',
      `organisation id ${organisationId} is not valid`,
    );
  return String(organisationId);
}

/**
 * Volume, records and cost per ratezone x traffic type x currency over every day, and
 * records and cost per currency: one scan of the organisation's part of the rollup (the
 * organisation leads its sort key). sum(...) GROUP BY because a SummingMergeTree sums
 * rows of one key only when it merges.
 */
export function ratezoneSql(organisationId: number): string {
  return (
    'SELECT grouping(ratezone_id, traffic_type) = 0 AS detail, ratezone_id AS rz, traffic_type AS tt, ' +
    'toString(currency) AS cur, toString(sum(records)) AS n, toString(sum(volume_total)) AS v, ' +
    'toString(sum(cost)) AS c ' +
    `FROM usage_daily WHERE organisation_id = ${orgLiteral(organisationId)} ` +
    'GROUP BY GROUPING SETS ((ratezone_id, traffic_type, currency), (currency)) ' +
    'ORDER BY detail, cur, rz, tt'
  );
}

async function readUsage(store: Store, organisationId: number, names: Map<number, string>, at: number) {
  const rows = await store.query(ratezoneSql(organisationId));
  const usage: Usage = { read_at: new Date(at).toISOString(), ratezones: [], totals: [] };
  for (const r of rows) {
    if (Number(r.detail) === 1) {
      const id = Number(r.rz);
      const tt = Number(r.tt);
      usage.ratezones.push({
        ratezone: { id, name: names.get(id) ?? `Ratezone ${id}` },
        traffic_type: { id: tt, ...(TRAFFIC[tt] ?? { description: 'Unknown', unit: '' }) },
        currency: String(r.cur),
        records: String(r.n),
        volume: String(r.v),
        cost: String(r.c),
      });
    } else usage.totals.push({ currency: String(r.cur), records: String(r.n), cost: String(r.c) });
  }
  return usage;
}

function errorRate(metrics: { delivered_batches: number; failed_attempts: Record<string, number> }) {
  const failed = Object.values(metrics.failed_attempts).reduce((a, b) => a + b, 0);
  const attempts = failed + metrics.delivered_batches;
  return attempts === 0 ? null : failed / attempts;
}

export function engineDashboardSource(
  engine: EmbeddedEngine,
  streams: StreamManager,
  options: DashboardSourceOptions = {},
): DashboardSource {
  const now = options.now ?? Date.now;
  const cacheMs = options.cacheMs ?? 2000;
  const ring = new ThroughputRing(options.samples ?? 300, options.sampleMs ?? 1000);
  const ratezoneNames = new Map<number, string>();
  for (const tariff of engine.directory.data.tariffs)
    for (const zone of tariff.ratezones)
      if (!ratezoneNames.has(zone.id)) ratezoneNames.set(zone.id, zone.name);
  // One read in flight or fresh per organisation; viewers of one organisation share it.
  const cache = new Map<number, { at: number; fleet: FleetSummary; usage: Promise<Usage> }>();

  const cachedOf = (organisationId: number, at: number) => {
    for (const [org, entry] of cache) if (at - entry.at >= cacheMs) cache.delete(org);
    const cached = cache.get(organisationId);
    if (cached) return cached;
    const entry = {
      at,
      fleet: engine.fleetOf(organisationId),
      usage: readUsage(engine.store, organisationId, ratezoneNames, at),
    };
    cache.set(organisationId, entry);
    // A failed read is not kept: the next poll tries again.
    entry.usage.catch(() => {
      if (cache.get(organisationId) === entry) cache.delete(organisationId);
    });
    return entry;
  };

  /** A stream removed since it was listed is left out, not an error. */
  const statusOf = (organisationId: number, id: string): Promise<StreamStatus | undefined> =>
    streams.status(organisationId, id).catch((error: unknown) => {
      if (error instanceof StreamNotFound) return undefined;
      throw error;
    });

  return {
    async snapshot(organisationId) {
      const at = now();
      const processed = engine.processedCount;
      ring.sample(at, processed);
      const rates = ring.rates();
      const eventTime = engine.eventTime;
      const { fleet, usage: reading } = cachedOf(organisationId, at);
      const list = streams.list(organisationId);
      const [usage, statuses] = await Promise.all([
        reading,
        Promise.all(list.map((s) => statusOf(organisationId, s.id))),
      ]);
      return {
        generated_at: new Date(at).toISOString(),
        organisation_id: organisationId,
        engine: {
          processed_records: processed,
          records_per_second: rates.length > 0 ? (rates[rates.length - 1]?.perSecond ?? null) : null,
          event_time: eventTime === null ? null : new Date(eventTime).toISOString(),
          throughput: rates.map((r) => ({
            at: new Date(r.at).toISOString(),
            records_per_second: r.perSecond,
          })),
        },
        devices: {
          total: fleet.devices,
          by_status: {
            offline: fleet.byStatus.Offline,
            attached: fleet.byStatus.Attached,
            online: fleet.byStatus.Online,
          },
          by_country: fleet.byCountry.map((c) => ({
            iso: c.iso,
            iso_numeric: Object.hasOwn(ISO_NUMERIC, c.iso) ? (ISO_NUMERIC[c.iso] ?? null) : null,
            name: c.country,
            devices: c.devices,
          })),
        },
        usage,
        streams: statuses
          .flatMap((status) => (status ? [status] : []))
          .map(({ stream, metrics, lag, dead_lettered_batches }) => ({
            id: stream.id,
            name: stream.name,
            type: stream.data_stream_type.description,
            connection_type: stream.destination.connection_type,
            status: { id: stream.status.id, description: stream.status.description },
            error: stream.error ?? null,
            lag,
            delivered_records: metrics.delivered_records,
            last_success_at: metrics.last_success_at,
            error_rate: errorRate(metrics),
            dead_lettered_batches,
          })),
      };
    },
  };
}
