import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { iccidAt, imeiAt, luhnDigit } from '../src/reference/identifiers.js';
import { loadReferenceData, validateReferenceData } from '../src/reference/loader.js';
import type { ReferenceData } from '../src/reference/types.js';
import { ReferenceDataError } from '../src/util/errors.js';
import { smallWorld } from './fixtures.js';

function problemsOf(data: unknown): string[] {
  try {
    validateReferenceData(data, 'test.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ReferenceDataError);
    return (error as ReferenceDataError).problems;
  }
  return [];
}

describe('reference data loader', () => {
  it('accepts the hand-written world and a generated fleet', () => {
    expect(problemsOf(smallWorld())).toEqual([]);
    expect(problemsOf(generateReferenceData({ devices: 5000, seed: 3 }))).toEqual([]);
  });

  it('says a price given as a JSON number must be a decimal string, with its path', () => {
    const data = generateReferenceData({ devices: 10, seed: 1 });
    (data.tariffs[2]?.ratezones[0]?.rates as Record<string, unknown>).data_per_mb = 0.2;
    expect(problemsOf(data)).toEqual([
      'tariffs[2].ratezones[0].rates.data_per_mb: must be a decimal string such as "0.25" (prices and volumes are never JSON numbers), got 0.2',
    ]);
  });

  it('reports every problem at once: missing, unknown and malformed fields', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks the typed structure on purpose
    const data = smallWorld() as unknown as Record<string, any>;
    delete data.organisations[0].currency;
    data.operators[1].colour = 'red';
    data.countries[2].mcc = '31';
    data.sims[0].imsis[0].imsi = '12345';
    data.tariffs[0].ratezones[1].rates.sms_mo = '0.1.0';
    expect(problemsOf(data).sort()).toEqual(
      [
        'organisations[0].currency: is required',
        'operators[1].colour: is not a known field',
        'countries[2].mcc: must be a 3-digit MCC string such as "262", got "31"',
        'sims[0].imsis[0].imsi: must be a 15-digit IMSI string, got "12345"',
        'tariffs[0].ratezones[1].rates.sms_mo: must be a decimal string such as "0.25" (prices and volumes are never JSON numbers), got "0.1.0"',
      ].sort(),
    );
  });

  it('checks cross-references', () => {
    const data = smallWorld();
    data.tariff_profiles[1]?.ratezone_ids.push(99);
    (data.endpoints?.[0] as { organisation_id: number }).organisation_id = 7;
    (data.endpoints?.[1] as { sim_id: number }).sim_id = 101;
    data.tariffs[0]?.ratezones[1]?.operator_ids.push(1);
    (data.sims?.[3]?.imsis[0] as { imsi: string }).imsi = '295050000000105';
    data.operators.push({ id: 6, name: 'Copy', country_id: 74, mncs: ['02'] });
    expect(problemsOf(data).sort()).toEqual(
      [
        'tariff_profiles[1].ratezone_ids[1]: ratezone 99 is not in tariff 555 (Test EUR)',
        'endpoints[0].organisation_id: organisation 7 does not exist',
        'endpoints[1].sim_id: SIM 101 is already used by endpoints[0]',
        'tariffs[0].ratezones[1].operator_ids[1]: operator 1 is already in tariffs[0].ratezones[0]; an operator belongs to one ratezone per tariff',
        'sims[4].imsis[0]: IMSI 295050000000105 is also used by sims[3].imsis[0]',
        'operators[5].mncs: MCC-MNC 262-02 is also claimed by operators[1] (Vodafone)',
      ].sort(),
    );
  });

  it('finds overlapping fleet ranges, even a short one inside a long one', () => {
    const data = generateReferenceData({ devices: 3000, seed: 1 });
    const fleets = data.fleets ?? [];
    const [a, b] = fleets as [
      NonNullable<ReferenceData['fleets']>[number],
      NonNullable<ReferenceData['fleets']>[number],
    ];
    fleets.push({
      ...b,
      first_endpoint_id: a.first_endpoint_id + 5,
      count: 1,
      first_sim_id: 1,
      first_iccid: '8900000000000000001',
      imsi_ranges: [{ first_imsi: '001010000000001', first_imsi_id: 1 }],
    });
    const problems = problemsOf(data);
    expect(problems).toContain(
      `fleets[${fleets.length - 1}]: endpoint id ${a.first_endpoint_id + 5} is also used by fleets[0]`,
    );
  });

  it('reads YAML as well as JSON, and names the file in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ref-'));
    const yamlFile = join(dir, 'world.yaml');
    writeFileSync(yamlFile, stringify(smallWorld()));
    expect(loadReferenceData(yamlFile).operators).toHaveLength(5);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"format": ');
    expect(() => loadReferenceData(broken)).toThrow(
      /broken\.json: 1 problem in reference data:\n {2}- cannot be parsed as JSON/,
    );
    expect(() => loadReferenceData(join(dir, 'missing.json'))).toThrow(
      /missing\.json.*cannot be read: ENOENT/s,
    );
  });
});

describe('reference data generator', () => {
  const data = generateReferenceData({ devices: 20_000, seed: 42 });

  it('is deterministic', () => {
    expect(generateReferenceData({ devices: 20_000, seed: 42 })).toEqual(data);
    expect(generateReferenceData({ devices: 20_000, seed: 43 })).not.toEqual(data);
  });

  it('uses real operators of at least 30 countries', () => {
    expect(data.countries.length).toBeGreaterThanOrEqual(30);
    const germany = data.countries.find((c) => c.iso_code === 'de');
    expect(germany?.mcc).toBe('262');
    const telekom = data.operators.find((o) => o.country_id === germany?.id && o.name === 'Telekom');
    expect(telekom?.mncs).toContain('01');
    const us = data.countries.find((c) => c.iso_code === 'us');
    expect(us?.mcc).toBe('310');
    expect(data.operators.find((o) => o.country_id === us?.id && o.name === 'AT&T')?.mncs).toContain('410');
  });

  it('groups operators, not countries, into ratezones: some countries span zones', () => {
    const tariff = data.tariffs.find((t) => t.name === 'Global Basic EUR');
    const zoneOf = new Map<number, number>();
    for (const zone of tariff?.ratezones ?? []) for (const op of zone.operator_ids) zoneOf.set(op, zone.id);
    const zonesPerCountry = new Map<number, Set<number>>();
    for (const op of data.operators) {
      const set = zonesPerCountry.get(op.country_id) ?? new Set();
      set.add(zoneOf.get(op.id) as number);
      zonesPerCountry.set(op.country_id, set);
    }
    const split = [...zonesPerCountry.values()].filter((zones) => zones.size > 1);
    expect(split.length).toBeGreaterThanOrEqual(10);
  });

  it('writes every price as a decimal string', () => {
    const prices: unknown[] = [];
    for (const t of data.tariffs) {
      prices.push(t.default_sms_mt_rate);
      for (const z of t.ratezones)
        prices.push(...Object.values(z.rates), ...Object.values(z.inclusive_volume ?? {}));
    }
    for (const o of data.organisations) if (o.monthly_cost_limit) prices.push(o.monthly_cost_limit);
    expect(prices.length).toBeGreaterThan(30);
    for (const p of prices) expect(p).toMatch(/^\d+(\.\d+)?$/);
  });

  it('has profiles, organisations, limits and SIMs with one to three IMSIs', () => {
    expect(data.tariff_profiles.length).toBeGreaterThanOrEqual(3);
    expect(data.service_profiles.some((p) => p.limits?.data_mb)).toBe(true);
    expect(data.organisations.length).toBeGreaterThanOrEqual(2);
    const imsiCounts = new Set(data.fleets?.map((f) => f.imsi_ranges.length));
    expect([...imsiCounts].sort()).toEqual([1, 2, 3]);
    expect(data.fleets?.reduce((n, f) => n + f.count, 0)).toBe(20_000);
  });
});

describe('directory', () => {
  const data = generateReferenceData({ devices: 50_000, seed: 9 });
  const dir = new Directory(data);

  it('expands fleets into endpoints and SIMs with valid identifiers', () => {
    expect(dir.endpointCount).toBe(50_000);
    const endpoint = dir.endpoint(31_337);
    const sim = dir.sim(31_337);
    expect(endpoint.sim_id).toBe(sim.id);
    expect(sim.iccid).toMatch(/^89\d{18}$/);
    expect(luhnDigit(sim.iccid.slice(0, -1))).toBe(Number(sim.iccid.slice(-1)));
    expect(endpoint.imei).toMatch(/^\d{15}$/);
    expect(luhnDigit((endpoint.imei as string).slice(0, -1))).toBe(
      Number((endpoint.imei as string).slice(-1)),
    );
    expect(dir.imei(31_337)).toBe(endpoint.imei);
    expect(dir.ipAddress(31_337)).toBe(endpoint.ip_address);
    expect(dir.msisdn(31_337)).toBe(sim.msisdn);
    expect(dir.endpointId(31_337)).toBe(endpoint.id);
    expect(dir.indexOfEndpointId(endpoint.id)).toBe(31_337);
  });

  it('resolves every IMSI of a SIM back to its endpoint and slot, and unknown IMSIs to nothing', () => {
    for (const index of [0, 1, 12_345, 49_999]) {
      const sim = dir.sim(index);
      sim.imsis.forEach((entry, slot) => {
        expect(dir.imsi(index, slot)).toBe(entry.imsi);
        expect(dir.resolveImsi(entry.imsi)).toEqual({ index, slot });
      });
    }
    expect(dir.resolveImsi('001010000000000')).toBeUndefined();
    expect(dir.resolveImsi('not-an-imsi')).toBeUndefined();
  });

  it('knows coverage by operator', () => {
    const world = new Directory(smallWorld());
    expect(world.covers(3, 4)).toBe(true); // AT&T in zone 2
    expect(world.covers(3, 5)).toBe(false); // T-Mobile in zone 3
    expect(world.operatorOf('262', '06')?.name).toBe('Telekom');
  });

  it('computes ICCIDs and IMEIs with Luhn check digits', () => {
    expect(iccidAt('8988303000008013931', 0)).toBe('89883030000080139311');
    expect(imeiAt('49015420', 323751)).toBe('490154203237518');
  });
});
