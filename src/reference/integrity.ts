import type { ReferenceData } from './types.js';

/** A numbered span [first, first + count) of ids or IMSIs claimed by `owner`. */
interface Span {
  first: number;
  count: number;
  owner: string;
}

/** Reports every pair of overlapping spans. */
function overlaps(spans: Span[], what: string, explicitAlreadyChecked = false): string[] {
  const sorted = [...spans].sort((a, b) => a.first - b.first || a.count - b.count);
  const problems: string[] = [];
  // `reach` is the span reaching furthest so far: a short span after a long one may overlap it.
  let reach = sorted[0];
  for (const cur of sorted.slice(1)) {
    if (!reach) break;
    const bothExplicit = !reach.owner.startsWith('fleets') && !cur.owner.startsWith('fleets');
    if (cur.first < reach.first + reach.count && !(explicitAlreadyChecked && bothExplicit)) {
      problems.push(`${cur.owner}: ${what} ${cur.first} is also used by ${reach.owner}`);
    }
    if (cur.first + cur.count > reach.first + reach.count) reach = cur;
  }
  return problems;
}

function uniqueIds(
  items: { id: number }[] | undefined,
  path: string,
  problems: string[],
): Map<number, number> {
  const index = new Map<number, number>();
  (items ?? []).forEach((item, i) => {
    const seen = index.get(item.id);
    if (seen !== undefined) problems.push(`${path}[${i}].id: ${item.id} is also the id of ${path}[${seen}]`);
    else index.set(item.id, i);
  });
  return index;
}

/**
 * Cross-reference checks the JSON Schema cannot express: unique ids, references that
 * resolve, an operator in at most one ratezone per tariff, no two SIMs sharing an IMSI.
 */
export function checkReferences(ref: ReferenceData): string[] {
  const problems: string[] = [];
  const countries = uniqueIds(ref.countries, 'countries', problems);
  const operators = uniqueIds(ref.operators, 'operators', problems);
  const tariffs = uniqueIds(ref.tariffs, 'tariffs', problems);
  uniqueIds(ref.tariff_profiles, 'tariff_profiles', problems);
  const tariffProfiles = new Map(ref.tariff_profiles.map((p) => [p.id, p]));
  const serviceProfiles = uniqueIds(ref.service_profiles, 'service_profiles', problems);
  const organisations = uniqueIds(ref.organisations, 'organisations', problems);
  const sims = uniqueIds(ref.sims, 'sims', problems);
  uniqueIds(ref.endpoints, 'endpoints', problems);
  const isoCodes = new Set(ref.countries.map((c) => c.iso_code));

  const plmns = new Map<string, string>();
  ref.operators.forEach((op, i) => {
    const country = ref.countries[countries.get(op.country_id) ?? -1];
    if (!country) {
      problems.push(`operators[${i}].country_id: country ${op.country_id} does not exist`);
      return;
    }
    for (const mnc of op.mncs) {
      const plmn = `${country.mcc}-${mnc}`;
      const other = plmns.get(plmn);
      if (other) problems.push(`operators[${i}].mncs: MCC-MNC ${plmn} is also claimed by ${other}`);
      else plmns.set(plmn, `operators[${i}] (${op.name})`);
    }
  });

  const ratezoneIds = new Map<number, string>();
  ref.tariffs.forEach((tariff, t) => {
    const zoneOf = new Map<number, number>();
    tariff.ratezones.forEach((zone, z) => {
      const path = `tariffs[${t}].ratezones[${z}]`;
      const other = ratezoneIds.get(zone.id);
      if (other) problems.push(`${path}.id: ratezone id ${zone.id} is also used by ${other}`);
      else ratezoneIds.set(zone.id, path);
      zone.operator_ids.forEach((opId, o) => {
        if (!operators.has(opId))
          problems.push(`${path}.operator_ids[${o}]: operator ${opId} does not exist`);
        const seenIn = zoneOf.get(opId);
        if (seenIn !== undefined && seenIn !== z) {
          problems.push(
            `${path}.operator_ids[${o}]: operator ${opId} is already in tariffs[${t}].ratezones[${seenIn}]; an operator belongs to one ratezone per tariff`,
          );
        }
        zoneOf.set(opId, z);
      });
    });
  });

  ref.tariff_profiles.forEach((profile, i) => {
    const tariff = ref.tariffs[tariffs.get(profile.tariff_id) ?? -1];
    if (!tariff) {
      problems.push(`tariff_profiles[${i}].tariff_id: tariff ${profile.tariff_id} does not exist`);
      return;
    }
    profile.ratezone_ids.forEach((zoneId, z) => {
      if (!tariff.ratezones.some((zone) => zone.id === zoneId)) {
        problems.push(
          `tariff_profiles[${i}].ratezone_ids[${z}]: ratezone ${zoneId} is not in tariff ${tariff.id} (${tariff.name})`,
        );
      }
    });
  });

  const checkOwnerRefs = (
    path: string,
    item: {
      organisation_id: number;
      service_profile_id: number;
      tariff_profile_id: number;
      deployment?: { countries?: string[] };
    },
  ) => {
    if (!organisations.has(item.organisation_id))
      problems.push(`${path}.organisation_id: organisation ${item.organisation_id} does not exist`);
    if (!serviceProfiles.has(item.service_profile_id))
      problems.push(`${path}.service_profile_id: service profile ${item.service_profile_id} does not exist`);
    if (!tariffProfiles.has(item.tariff_profile_id))
      problems.push(`${path}.tariff_profile_id: tariff profile ${item.tariff_profile_id} does not exist`);
    item.deployment?.countries?.forEach((iso, c) => {
      if (!isoCodes.has(iso))
        problems.push(`${path}.deployment.countries[${c}]: country "${iso}" is not in countries`);
    });
  };

  const endpointSpans: Span[] = [];
  const simSpans: Span[] = [];
  const imsiIdSpans: Span[] = [];
  const imsiSpans: Span[] = [];
  const simUsedBy = new Map<number, string>();
  (ref.sims ?? []).forEach((sim, i) => {
    sim.imsis.forEach((entry, j) => {
      const owner = `sims[${i}].imsis[${j}]`;
      imsiIdSpans.push({ first: entry.id, count: 1, owner });
      imsiSpans.push({ first: Number(entry.imsi), count: 1, owner });
    });
  });
  (ref.endpoints ?? []).forEach((endpoint, i) => {
    const path = `endpoints[${i}]`;
    endpointSpans.push({ first: endpoint.id, count: 1, owner: path });
    checkOwnerRefs(path, endpoint);
    if (!sims.has(endpoint.sim_id)) problems.push(`${path}.sim_id: SIM ${endpoint.sim_id} does not exist`);
    const other = simUsedBy.get(endpoint.sim_id);
    if (other) problems.push(`${path}.sim_id: SIM ${endpoint.sim_id} is already used by ${other}`);
    simUsedBy.set(endpoint.sim_id, path);
  });
  for (const [i, sim] of (ref.sims ?? []).entries())
    simSpans.push({ first: sim.id, count: 1, owner: `sims[${i}]` });
  (ref.fleets ?? []).forEach((fleet, i) => {
    const path = `fleets[${i}]`;
    checkOwnerRefs(path, fleet);
    endpointSpans.push({ first: fleet.first_endpoint_id, count: fleet.count, owner: path });
    simSpans.push({ first: fleet.first_sim_id, count: fleet.count, owner: path });
    fleet.imsi_ranges.forEach((range, r) => {
      const owner = `${path}.imsi_ranges[${r}]`;
      imsiIdSpans.push({ first: range.first_imsi_id, count: fleet.count, owner });
      imsiSpans.push({ first: Number(range.first_imsi), count: fleet.count, owner });
      if (Number(range.first_imsi) + fleet.count > 999_999_999_999_999)
        problems.push(`${owner}.first_imsi: the range of ${fleet.count} IMSIs runs past 15 digits`);
    });
  });
  // Duplicates among explicit endpoints and SIMs were reported by uniqueIds already.
  problems.push(...overlaps(endpointSpans, 'endpoint id', true));
  problems.push(...overlaps(simSpans, 'SIM id', true));
  problems.push(...overlaps(imsiIdSpans, 'IMSI id'));
  problems.push(...overlaps(imsiSpans, 'IMSI'));
  return [...new Set(problems)];
}
