import { addDigits, iccidAt, imeiAt, ipv4ToNumber, numberToIpv4 } from './identifiers.js';
import type {
  Country,
  Deployment,
  Endpoint,
  Operator,
  Organisation,
  Ratezone,
  ReferenceData,
  Region,
  ServiceProfile,
  Sim,
  Tariff,
  TariffProfile,
} from './types.js';

/** n as a decimal string of at least `width` digits. */
function digits(n: number, width: number): string {
  const text = String(n);
  return text.length >= width ? text : text.padStart(width, '0');
}

/** A run of consecutive endpoint indexes: a fleet, or one explicitly listed endpoint. */
interface Block {
  start: number;
  count: number;
  fleet?: NonNullable<ReferenceData['fleets']>[number];
  endpoint?: Endpoint;
  sim?: Sim;
  /** Fleet numbers parsed once: the simulator asks for IMSIs and MSISDNs per record. */
  imsiBase?: number[];
  msisdnBase?: number;
  ipBase?: number;
}

interface ImsiSpan {
  first: number;
  count: number;
  block: Block;
  slot: number;
}

export interface ImsiRef {
  /** Endpoint index in the directory (0..endpointCount-1). */
  index: number;
  /** Which of the SIM's IMSIs (0..2). */
  slot: number;
}

/**
 * A read-only, indexed view of validated reference data. Endpoints are addressed by a
 * dense index 0..endpointCount-1; fleets are expanded on demand, so a million devices
 * cost a few bytes each, not an object each.
 */
export class Directory {
  readonly endpointCount: number;
  readonly countries: readonly Country[];
  readonly operators: readonly Operator[];
  private readonly blocks: Block[] = [];
  private readonly imsiSpans: ImsiSpan[] = [];
  private readonly countryById = new Map<number, Country>();
  private readonly operatorByPlmn = new Map<string, Operator>();
  private readonly operatorsByCountryIso = new Map<string, Operator[]>();
  private readonly tariffById = new Map<number, Tariff>();
  private readonly tariffProfileById = new Map<number, TariffProfile>();
  private readonly serviceProfileById = new Map<number, ServiceProfile>();
  private readonly organisationById = new Map<number, Organisation>();
  /** tariff profile id -> (operator id -> the selected ratezone containing it) */
  private readonly coverage = new Map<number, Map<number, Ratezone>>();

  constructor(readonly data: ReferenceData) {
    this.countries = data.countries;
    this.operators = data.operators;
    for (const c of data.countries) this.countryById.set(c.id, c);
    for (const op of data.operators) {
      const country = this.countryById.get(op.country_id) as Country;
      for (const mnc of op.mncs) this.operatorByPlmn.set(country.mcc + mnc, op);
      const list = this.operatorsByCountryIso.get(country.iso_code) ?? [];
      list.push(op);
      this.operatorsByCountryIso.set(country.iso_code, list);
    }
    for (const t of data.tariffs) this.tariffById.set(t.id, t);
    for (const p of data.service_profiles) this.serviceProfileById.set(p.id, p);
    for (const o of data.organisations) this.organisationById.set(o.id, o);
    for (const p of data.tariff_profiles) {
      this.tariffProfileById.set(p.id, p);
      const tariff = this.tariffById.get(p.tariff_id) as Tariff;
      const covered = new Map<number, Ratezone>();
      for (const zone of tariff.ratezones)
        if (p.ratezone_ids.includes(zone.id)) for (const id of zone.operator_ids) covered.set(id, zone);
      this.coverage.set(p.id, covered);
    }

    let start = 0;
    const simById = new Map((data.sims ?? []).map((s) => [s.id, s]));
    for (const endpoint of data.endpoints ?? []) {
      const sim = simById.get(endpoint.sim_id) as Sim;
      const block: Block = { start, count: 1, endpoint, sim };
      this.blocks.push(block);
      sim.imsis.forEach((entry, slot) => {
        this.imsiSpans.push({ first: Number(entry.imsi), count: 1, block, slot });
      });
      start += 1;
    }
    for (const fleet of data.fleets ?? []) {
      const block: Block = {
        start,
        count: fleet.count,
        fleet,
        imsiBase: fleet.imsi_ranges.map((r) => Number(r.first_imsi)),
        msisdnBase: Number(fleet.first_msisdn),
        ipBase: ipv4ToNumber(fleet.first_ip_address),
      };
      this.blocks.push(block);
      fleet.imsi_ranges.forEach((range, slot) => {
        this.imsiSpans.push({ first: Number(range.first_imsi), count: fleet.count, block, slot });
      });
      start += fleet.count;
    }
    this.endpointCount = start;
    this.imsiSpans.sort((a, b) => a.first - b.first);
  }

  private blockOf(index: number): Block {
    if (index < 0 || index >= this.endpointCount)
      throw new RangeError(`endpoint index ${index} out of range`);
    let lo = 0;
    let hi = this.blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.blocks[mid] as Block).start <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.blocks[lo] as Block;
  }

  endpoint(index: number): Endpoint {
    const block = this.blockOf(index);
    if (block.endpoint) return block.endpoint;
    const fleet = block.fleet as NonNullable<Block['fleet']>;
    const offset = index - block.start;
    const id = fleet.first_endpoint_id + offset;
    return {
      id,
      name: `${fleet.name_prefix}-${String(offset + 1).padStart(String(fleet.count).length, '0')}`,
      imei: imeiAt(fleet.device_tac, id),
      ip_address: numberToIpv4(ipv4ToNumber(fleet.first_ip_address) + offset),
      tags: fleet.tags ?? null,
      status: 'Enabled',
      organisation_id: fleet.organisation_id,
      sim_id: fleet.first_sim_id + offset,
      service_profile_id: fleet.service_profile_id,
      tariff_profile_id: fleet.tariff_profile_id,
      ...(fleet.deployment ? { deployment: fleet.deployment } : {}),
    };
  }

  sim(index: number): Sim {
    const block = this.blockOf(index);
    if (block.sim) return block.sim;
    const fleet = block.fleet as NonNullable<Block['fleet']>;
    const offset = index - block.start;
    return {
      id: fleet.first_sim_id + offset,
      iccid: iccidAt(fleet.first_iccid, offset),
      msisdn: addDigits(fleet.first_msisdn, offset),
      production_date: fleet.production_date,
      imsis: fleet.imsi_ranges.map((range) => ({
        id: range.first_imsi_id + offset,
        imsi: addDigits(range.first_imsi, offset),
        import_date: fleet.production_date,
        ...(range.preferred_regions ? { preferred_regions: range.preferred_regions } : {}),
      })),
    };
  }

  endpointId(index: number): number {
    const block = this.blockOf(index);
    return block.endpoint
      ? block.endpoint.id
      : (block.fleet as NonNullable<Block['fleet']>).first_endpoint_id + (index - block.start);
  }

  /** Directory index of an endpoint id, or undefined when no endpoint has that id. */
  indexOfEndpointId(id: number): number | undefined {
    for (const block of this.blocks) {
      if (
        block.endpoint
          ? block.endpoint.id === id
          : id >= (block.fleet as NonNullable<Block['fleet']>).first_endpoint_id &&
            id < (block.fleet as NonNullable<Block['fleet']>).first_endpoint_id + block.count
      ) {
        return (
          block.start +
          (block.endpoint ? 0 : id - (block.fleet as NonNullable<Block['fleet']>).first_endpoint_id)
        );
      }
    }
    return undefined;
  }

  /** IMEI of the endpoint's device without building the endpoint object (hot path). */
  imei(index: number): string | null {
    const block = this.blockOf(index);
    if (block.endpoint) return block.endpoint.imei ?? null;
    const fleet = block.fleet as NonNullable<Block['fleet']>;
    return imeiAt(fleet.device_tac, fleet.first_endpoint_id + index - block.start);
  }

  msisdn(index: number): string | null {
    const block = this.blockOf(index);
    if (block.sim) return block.sim.msisdn ?? null;
    return digits(
      (block.msisdnBase as number) + index - block.start,
      (block.fleet as NonNullable<Block['fleet']>).first_msisdn.length,
    );
  }

  ipAddress(index: number): string | null {
    const block = this.blockOf(index);
    if (block.endpoint) return block.endpoint.ip_address ?? null;
    return numberToIpv4((block.ipBase as number) + index - block.start);
  }

  /** Directory indexes of an organisation's endpoints, as [first, count) runs. */
  endpointRunsOf(organisationId: number): { first: number; count: number }[] {
    const runs: { first: number; count: number }[] = [];
    for (const block of this.blocks) {
      const owner = block.endpoint ? block.endpoint.organisation_id : block.fleet?.organisation_id;
      if (owner !== organisationId) continue;
      const last = runs[runs.length - 1];
      if (last && last.first + last.count === block.start) last.count += block.count;
      else runs.push({ first: block.start, count: block.count });
    }
    return runs;
  }

  /** Number of IMSIs on the endpoint's SIM (1..3). */
  imsiCount(index: number): number {
    const block = this.blockOf(index);
    return block.sim
      ? block.sim.imsis.length
      : (block.fleet as NonNullable<Block['fleet']>).imsi_ranges.length;
  }

  imsi(index: number, slot: number): string {
    const block = this.blockOf(index);
    if (block.sim) return (block.sim.imsis[slot] as Sim['imsis'][number]).imsi;
    const base = (block.imsiBase as number[])[slot];
    if (base === undefined) throw new RangeError(`endpoint index ${index} has no IMSI slot ${slot}`);
    return digits(base + index - block.start, 15);
  }

  /** Regions where the SIM applet prefers the IMSI in `slot`. */
  preferredRegions(index: number, slot: number): readonly Region[] {
    const block = this.blockOf(index);
    const entry = block.sim ? block.sim.imsis[slot] : block.fleet?.imsi_ranges[slot];
    return entry?.preferred_regions ?? [];
  }

  deployment(index: number): Deployment {
    const block = this.blockOf(index);
    return (block.endpoint ? block.endpoint.deployment : block.fleet?.deployment) ?? {};
  }

  tariffProfileIdOf(index: number): number {
    const block = this.blockOf(index);
    return block.endpoint
      ? block.endpoint.tariff_profile_id
      : (block.fleet as NonNullable<Block['fleet']>).tariff_profile_id;
  }

  serviceProfileOf(index: number): ServiceProfile {
    const block = this.blockOf(index);
    const id = block.endpoint
      ? block.endpoint.service_profile_id
      : (block.fleet as NonNullable<Block['fleet']>).service_profile_id;
    return this.serviceProfileById.get(id) as ServiceProfile;
  }

  /** Which endpoint and IMSI slot an IMSI belongs to, or undefined for an unknown IMSI. */
  resolveImsi(imsi: string): ImsiRef | undefined {
    if (!/^[0-9]{15}$/.test(imsi)) return undefined;
    const n = Number(imsi);
    const spans = this.imsiSpans;
    let lo = 0;
    let hi = spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const span = spans[mid] as ImsiSpan;
      if (n < span.first) hi = mid - 1;
      else if (n >= span.first + span.count) lo = mid + 1;
      else return { index: span.block.start + (n - span.first), slot: span.slot };
    }
    return undefined;
  }

  country(id: number): Country | undefined {
    return this.countryById.get(id);
  }

  countryByIso(iso: string): Country | undefined {
    return this.countries.find((c) => c.iso_code === iso);
  }

  operatorsIn(iso: string): readonly Operator[] {
    return this.operatorsByCountryIso.get(iso) ?? [];
  }

  /** The operator owning a serving PLMN (MCC + MNC digits), if it is in the reference data. */
  operatorOf(mcc: string, mnc: string): Operator | undefined {
    return this.operatorByPlmn.get(mcc + mnc);
  }

  /** Whether the endpoint's tariff profile selects a ratezone containing the operator. */
  covers(tariffProfileId: number, operatorId: number): boolean {
    return this.coverage.get(tariffProfileId)?.has(operatorId) ?? false;
  }

  /** The selected ratezone of a tariff profile that contains the operator, if any. */
  ratezoneFor(tariffProfileId: number, operatorId: number): Ratezone | undefined {
    return this.coverage.get(tariffProfileId)?.get(operatorId);
  }

  tariff(id: number): Tariff | undefined {
    return this.tariffById.get(id);
  }

  tariffProfile(id: number): TariffProfile | undefined {
    return this.tariffProfileById.get(id);
  }

  organisation(id: number): Organisation | undefined {
    return this.organisationById.get(id);
  }
}
