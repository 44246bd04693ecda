import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';
import { Rng, seedOf } from '../util/random.js';
import { numberToIpv4 } from './identifiers.js';
import type {
  Country,
  DeviceProfile,
  Fleet,
  Operator,
  Organisation,
  ReferenceData,
  Region,
  ServiceProfile,
  Tariff,
  TariffProfile,
} from './types.js';

type Tier = 'A' | 'B' | 'C' | 'D' | 'E';

interface CatalogOperator {
  name: string;
  mncs: string[];
  tapcode: string;
  tier: Tier;
}
interface CatalogCountry {
  name: string;
  iso_code: string;
  mcc: string;
  country_code: string;
  region: Region;
  operators: CatalogOperator[];
}

/** Typical local-time offset per region; drives the simulator's day/night load. */
const REGION_UTC_OFFSET: Record<Region, number> = {
  europe: 1,
  north_america: -6,
  latin_america: -4,
  apac: 8,
  africa: 2,
  middle_east: 3,
};

export const MAX_GENERATED_DEVICES = 10_000_000;

function loadCatalog(): CatalogCountry[] {
  const file = join(packageRoot(), 'src', 'reference', 'catalog', 'networks.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { countries: CatalogCountry[] }).countries;
}

interface ZoneSpec {
  name: string;
  data: string;
  smsMo: string;
  smsMt?: string;
  inclusive?: { volume_mb: string; excess_per_mb: string };
  includes: (country: CatalogCountry, op: CatalogOperator) => boolean;
}

const GLOBAL_BASIC: ZoneSpec[] = [
  { name: 'Zone A', data: '0.20', smsMo: '0.10', includes: (_, op) => op.tier === 'A' },
  { name: 'Zone B', data: '0.25', smsMo: '0.30', includes: (_, op) => op.tier === 'B' },
  { name: 'Zone C', data: '0.50', smsMo: '0.30', includes: (_, op) => op.tier === 'C' },
  { name: 'Zone D', data: '1.00', smsMo: '0.30', includes: (_, op) => op.tier === 'D' },
  { name: 'Zone E', data: '2.00', smsMo: '0.30', includes: (_, op) => op.tier === 'E' },
];

// USD list prices are the EUR ones times about 1.19 (reference §5.3).
const GLOBAL_BASIC_USD: ZoneSpec[] = [
  { name: 'Zone A', data: '0.24', smsMo: '0.12', includes: (_, op) => op.tier === 'A' },
  { name: 'Zone B', data: '0.30', smsMo: '0.36', includes: (_, op) => op.tier === 'B' },
  { name: 'Zone C', data: '0.60', smsMo: '0.36', includes: (_, op) => op.tier === 'C' },
  { name: 'Zone D', data: '1.19', smsMo: '0.36', includes: (_, op) => op.tier === 'D' },
  { name: 'Zone E', data: '2.38', smsMo: '0.36', includes: (_, op) => op.tier === 'E' },
];

const cheap = (op: CatalogOperator) => op.tier === 'A' || op.tier === 'B';
const REGIONAL_PRO: ZoneSpec[] = [
  {
    name: 'Europe Basic',
    data: '0.10',
    smsMo: '0.07',
    smsMt: '0.01',
    inclusive: { volume_mb: '1', excess_per_mb: '0.10' },
    includes: (c, op) => c.region === 'europe' && cheap(op),
  },
  {
    name: 'Rest of Europe',
    data: '0.20',
    smsMo: '0.10',
    includes: (c, op) => c.region === 'europe' && !cheap(op),
  },
  {
    name: 'Americas',
    data: '0.25',
    smsMo: '0.10',
    includes: (c, op) => c.region === 'north_america' || (c.region === 'latin_america' && op.tier === 'A'),
  },
  {
    name: 'Rest of America',
    data: '0.50',
    smsMo: '0.30',
    includes: (c, op) => c.region === 'latin_america' && op.tier !== 'A',
  },
  { name: 'APAC', data: '0.25', smsMo: '0.10', includes: (c) => c.region === 'apac' },
  { name: 'Africa Extended', data: '0.35', smsMo: '0.30', includes: (c) => c.region === 'africa' },
  { name: 'Middle East', data: '0.30', smsMo: '0.30', includes: (c) => c.region === 'middle_east' },
];

const ORGANISATION_NAMES = [
  'Nordlicht Smart Metering',
  'Atlas Cold Chain Logistics',
  'Helio Solar Monitoring',
  'Vela Fleet Telematics',
  'Brightwater Utilities',
  'Kestrel Asset Tracking',
  'Agrisense Farming',
  'Lumen Street Lighting',
  'Cargoline Containers',
  'Pulse Medical Devices',
  'Urbanloop E-Scooters',
  'Tidewater Marine IoT',
  'Polaris Rail Sensors',
  'Quartz Vending Systems',
  'Ember EV Charging',
  'Granite Building Automation',
];

/** Each IMSI range gets its own block of IMSI ids. */
const IMSI_ID_BASE: Record<string, number> = { '29505': 0, '90143': 1, '23450': 2 };

function sample<T>(rng: Rng, items: readonly T[], k: number): T[] {
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [pool[i], pool[j]] = [pool[j] as T, pool[i] as T];
  }
  return pool.slice(0, k);
}

const DEVICE_TACS = ['35693803', '35473311', '86769204', '35907206', '35265811', '86095106'];

export interface GenerateOptions {
  devices: number;
  seed: number | string;
  /** Number of organisations; default grows with the fleet (2 to 40). */
  organisations?: number;
}

/**
 * A realistic fleet: real operators (src/reference/catalog/networks.json), tariffs whose
 * ratezones group operators (several countries are split across zones), tariff and
 * service profiles, organisations, and fleets of endpoints with 1 to 3 IMSIs per SIM.
 * Deterministic: the same options give the same data.
 */
export function generateReferenceData(options: GenerateOptions): ReferenceData {
  const { devices } = options;
  if (!Number.isInteger(devices) || devices < 1 || devices > MAX_GENERATED_DEVICES) {
    throw new RangeError(`devices must be an integer from 1 to ${MAX_GENERATED_DEVICES}, got ${devices}`);
  }
  const rng = new Rng(seedOf(`reference:${options.seed}`));
  const catalog = loadCatalog();

  const countries: Country[] = [];
  const operators: Operator[] = [];
  const catalogOf = new Map<number, { country: CatalogCountry; op: CatalogOperator }>();
  for (const c of catalog) {
    const country: Country = {
      id: countries.length + 1,
      name: c.name,
      iso_code: c.iso_code,
      mcc: c.mcc,
      country_code: c.country_code,
      region: c.region,
      utc_offset_hours: REGION_UTC_OFFSET[c.region],
    };
    countries.push(country);
    for (const op of c.operators) {
      const operator: Operator = {
        id: operators.length + 1,
        name: op.name,
        country_id: country.id,
        mncs: op.mncs,
        tapcode: op.tapcode,
      };
      operators.push(operator);
      catalogOf.set(operator.id, { country: c, op });
    }
  }

  let nextZoneId = 1;
  const tariff = (id: number, name: string, currency: Tariff['currency'], specs: ZoneSpec[]): Tariff => ({
    id,
    version: 1,
    name,
    currency,
    data_blocksize_bytes: 1024,
    default_sms_mt_rate: '0.01',
    ratezones: specs
      .map((spec) => ({
        id: nextZoneId++,
        name: spec.name,
        operator_ids: operators
          .filter((o) => {
            const entry = catalogOf.get(o.id) as { country: CatalogCountry; op: CatalogOperator };
            return spec.includes(entry.country, entry.op);
          })
          .map((o) => o.id),
        rates: { data_per_mb: spec.data, sms_mo: spec.smsMo, ...(spec.smsMt ? { sms_mt: spec.smsMt } : {}) },
        ...(spec.inclusive ? { inclusive_volume: spec.inclusive } : {}),
      }))
      .filter((zone) => zone.operator_ids.length > 0),
  });
  const tariffs = [
    tariff(582, 'Global Basic EUR', 'EUR', GLOBAL_BASIC),
    tariff(557, 'Regional Pro EUR', 'EUR', REGIONAL_PRO),
    tariff(583, 'Global Basic USD', 'USD', GLOBAL_BASIC_USD),
  ];
  const zoneIds = (t: Tariff, names?: string[]) =>
    t.ratezones.filter((z) => !names || names.includes(z.name)).map((z) => z.id);
  const [globalEur, regionalPro, globalUsd] = tariffs as [Tariff, Tariff, Tariff];
  const tariffProfiles: TariffProfile[] = [
    { id: 1, name: 'Global Basic worldwide', tariff_id: globalEur.id, ratezone_ids: zoneIds(globalEur) },
    {
      id: 2,
      name: 'Global Basic without Zone E',
      tariff_id: globalEur.id,
      ratezone_ids: zoneIds(globalEur, ['Zone A', 'Zone B', 'Zone C', 'Zone D']),
    },
    {
      id: 3,
      name: 'Regional Pro Europe',
      tariff_id: regionalPro.id,
      ratezone_ids: zoneIds(regionalPro, ['Europe Basic', 'Rest of Europe']),
    },
    { id: 4, name: 'Regional Pro worldwide', tariff_id: regionalPro.id, ratezone_ids: zoneIds(regionalPro) },
    { id: 5, name: 'Global Basic USD worldwide', tariff_id: globalUsd.id, ratezone_ids: zoneIds(globalUsd) },
  ];

  const all = { data: true, sms_mo: true, sms_mt: true };
  const serviceProfiles: ServiceProfile[] = [
    { id: 1, name: 'Default', services: all, breakout_region: 'eu-west-1' },
    {
      id: 2,
      name: 'Metered 100 MB',
      services: all,
      limits: { data_mb: '100', sms: 100, warning_percentage: 80 },
      breakout_region: 'eu-west-1',
    },
    {
      id: 3,
      name: 'Quota managed',
      services: all,
      apply_data_quota: true,
      apply_sms_quota: false,
      breakout_region: 'eu-west-1',
    },
    {
      id: 4,
      name: 'Data only',
      services: { data: true, sms_mo: false, sms_mt: true },
      breakout_region: 'us-east-1',
    },
    {
      id: 5,
      name: 'Trial 5 MB',
      services: all,
      limits: { data_mb: '5', sms: 10, warning_percentage: 80 },
      breakout_region: 'eu-west-1',
    },
  ];

  const orgCount = options.organisations ?? Math.min(40, Math.max(2, Math.ceil(devices / 500)));
  const organisations: Organisation[] = [];
  for (let i = 0; i < orgCount; i++) {
    const base = ORGANISATION_NAMES[i % ORGANISATION_NAMES.length] as string;
    const round = Math.floor(i / ORGANISATION_NAMES.length);
    const currency = i % 5 === 4 ? 'USD' : 'EUR';
    const limits = [undefined, '500', '2000', '25000'];
    const limit = limits[rng.int(limits.length)];
    organisations.push({
      id: 1001 + i,
      name: round ? `${base} ${round + 1}` : base,
      currency,
      ...(limit ? { monthly_cost_limit: limit } : {}),
    });
  }

  // Fleets take device kinds and organisations in turn, so every fleet mix has all three
  // kinds; sizes follow random weights.
  const kinds: DeviceProfile[] = ['meter', 'tracker', 'gateway'];
  const shapes: { org: Organisation; profile: DeviceProfile }[] = [];
  const shapeCount = Math.max(3, organisations.length * (1 + rng.int(2)) + 1);
  for (let f = 0; f < shapeCount; f++) {
    shapes.push({
      org: organisations[f % organisations.length] as Organisation,
      profile: kinds[f % kinds.length] as DeviceProfile,
    });
  }
  const fleetCount = Math.min(shapes.length, devices);
  const weights = shapes.slice(0, fleetCount).map(() => 1 + rng.int(9));
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((w) => Math.max(1, Math.floor((devices * w) / weightSum)));
  let excess = counts.reduce((a, b) => a + b, 0) - devices;
  for (let i = 0; excess !== 0; i = (i + 1) % counts.length) {
    const c = counts[i] as number;
    if (excess > 0 && c > 1) {
      counts[i] = c - 1;
      excess--;
    } else if (excess < 0) {
      counts[i] = c + 1;
      excess++;
    }
  }

  const europe = countries.filter((c) => c.region === 'europe').map((c) => c.iso_code);
  const americas = countries
    .filter((c) => c.region === 'north_america' || c.region === 'latin_america')
    .map((c) => c.iso_code);
  const apac = countries.filter((c) => c.region === 'apac').map((c) => c.iso_code);
  const fleets: Fleet[] = [];
  let endpointCursor = 0;
  for (let f = 0; f < fleetCount; f++) {
    const { org, profile } = shapes[f] as (typeof shapes)[number];
    const count = counts[f] as number;
    const usd = org.currency === 'USD';
    let home: string[];
    let mobility: 'static' | 'national' | 'international';
    let imsiCount: number;
    let tariffProfileId: number;
    let serviceProfileId: number;
    if (profile === 'meter') {
      home = [rng.pick(usd ? americas : europe)];
      mobility = 'static';
      imsiCount = 1;
      tariffProfileId = usd ? 5 : rng.pick([3, 1]);
      serviceProfileId = rng.pick([1, 2, 5]);
    } else if (profile === 'tracker') {
      const pool = usd ? americas : rng.chance(0.8) ? europe : apac;
      home = sample(rng, pool, Math.min(pool.length, 6));
      mobility = 'international';
      imsiCount = 2 + rng.int(2);
      // A Europe-only coverage policy only for fleets based in Europe.
      tariffProfileId = usd ? 5 : rng.pick(pool === europe ? [2, 3, 4] : [2, 4]);
      serviceProfileId = rng.pick([1, 3, 2]);
    } else {
      home = [rng.pick(usd ? americas : europe)];
      mobility = 'national';
      imsiCount = 1 + rng.int(2);
      tariffProfileId = usd ? 5 : rng.pick([1, 4]);
      serviceProfileId = rng.pick([1, 4]);
    }
    const offset = endpointCursor;
    // Slot 0 is the fallback IMSI; extra IMSIs are preferred in their regions (multi-IMSI applet).
    const imsiSlots: { prefix: string; regions: Region[] | undefined }[] = [
      { prefix: imsiCount === 1 ? '29505' : '90143', regions: undefined },
      { prefix: '29505', regions: ['europe'] as Region[] },
      { prefix: '23450', regions: ['north_america', 'latin_america'] as Region[] },
    ].slice(0, imsiCount);
    const productionDay = 1 + (f % 28);
    fleets.push({
      name_prefix: `${profile}-${org.id}-${f + 1}`,
      count,
      organisation_id: org.id,
      service_profile_id: serviceProfileId,
      tariff_profile_id: tariffProfileId,
      tags: profile,
      first_endpoint_id: 20_000_001 + offset,
      first_sim_id: 600_001 + offset,
      first_iccid: `8988303${String(offset).padStart(12, '0')}`,
      first_msisdn: `42366392${String(offset).padStart(7, '0')}`,
      imsi_ranges: imsiSlots.map((slot) => ({
        first_imsi: `${slot.prefix}${String(1_000_000_000 + offset).padStart(10, '0')}`,
        first_imsi_id: 9_600_001 + (IMSI_ID_BASE[slot.prefix] as number) * MAX_GENERATED_DEVICES + offset,
        ...(slot.regions ? { preferred_regions: slot.regions } : {}),
      })),
      production_date: `2025-${String(1 + (f % 12)).padStart(2, '0')}-${String(productionDay).padStart(2, '0')}T09:00:00Z`,
      device_tac: DEVICE_TACS[f % DEVICE_TACS.length] as string,
      first_ip_address: numberToIpv4(0x0a000001 + offset),
      deployment: { countries: home, mobility, profile },
    });
    endpointCursor += count;
  }

  return {
    format: 'data-streamer/reference-data',
    version: 1,
    generated_by: { tool: 'data-streamer reference generate', seed: options.seed, devices },
    countries,
    operators,
    tariffs,
    tariff_profiles: tariffProfiles,
    service_profiles: serviceProfiles,
    organisations,
    fleets,
  };
}
