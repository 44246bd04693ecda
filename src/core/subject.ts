import type { Directory } from '../reference/directory.js';
import type { Country, Operator } from '../reference/types.js';
import { derivedPart } from './derived.js';
import type { EventSubject } from './events.js';

/** ISO-8601 dates of the reference data ("2025-01-01T00:00:00Z") with milliseconds, as in events. */
function withMillis(date: string): string {
  return new Date(date).toISOString();
}

/**
 * Subjects are immutable and asked for on every output, so the most recent ones are kept
 * (bounded: a million-device fleet does not become a million objects).
 */
const CACHE_SIZE = 20_000;
const cache = new WeakMap<Directory, Map<number, EventSubject>>();

/** Who an input is about, in the shape of the event envelope. */
export function subjectOf(dir: Directory, index: number, slot: number): EventSubject {
  let subjects = cache.get(dir);
  if (!subjects) {
    subjects = new Map();
    cache.set(dir, subjects);
  }
  const key = index * 4 + slot;
  let subject = subjects.get(key);
  if (subject) {
    // Most recently used last: delete and re-insert.
    subjects.delete(key);
  } else {
    subject = buildSubject(dir, index, slot);
    if (subjects.size >= CACHE_SIZE) subjects.delete(subjects.keys().next().value as number);
  }
  subjects.set(key, subject);
  return subject;
}

function buildSubject(dir: Directory, index: number, slot: number): EventSubject {
  const endpoint = dir.endpoint(index);
  const sim = dir.sim(index);
  const imsi = sim.imsis[slot] ?? sim.imsis[0];
  const organisation = dir.organisation(endpoint.organisation_id);
  return {
    organisation: { id: endpoint.organisation_id, name: organisation?.name ?? '' },
    endpoint: {
      id: endpoint.id,
      name: endpoint.name,
      ip_address: endpoint.ip_address ?? null,
      tags: endpoint.tags ?? null,
      imei: endpoint.imei ?? null,
    },
    sim: {
      id: sim.id,
      iccid: sim.iccid,
      msisdn: sim.msisdn ?? null,
      production_date: withMillis(sim.production_date),
    },
    imsi: imsi ? { id: imsi.id, imsi: imsi.imsi, import_date: withMillis(imsi.import_date) } : null,
  };
}

interface OperatorParts {
  country: Readonly<Pick<Country, 'id' | 'name' | 'country_code' | 'mcc' | 'iso_code'>>;
  tapcode: readonly Readonly<{ id: number; tapcode: string }>[];
  mnc: readonly Readonly<{ id: number; mnc: string }>[];
}
const operatorParts = new WeakMap<Operator, Map<Country, OperatorParts>>();

/**
 * The visited operator as emnify's location-update detail; mnc/tapcode ids are derived
 * (operator id x 100 + n). A fresh top-level object each time (callers add fields to it),
 * whose nested parts are shared (derivedPart): every open PDP session keeps its detail in
 * the state, and a million sessions must not hold a million copies of them.
 */
export function operatorDetail(operator: Operator, country: Country): Record<string, unknown> {
  const parts = derivedPart(
    operatorParts,
    operator,
    country,
    (part) =>
      part.country.name === country.name &&
      part.country.mcc === country.mcc &&
      part.country.country_code === country.country_code &&
      part.country.iso_code === country.iso_code &&
      part.tapcode[0]?.tapcode === (operator.tapcode || undefined) &&
      part.mnc.length === operator.mncs.length &&
      operator.mncs.every((mnc, k) => part.mnc[k]?.mnc === mnc),
    () => ({
      country: Object.freeze({
        id: country.id,
        name: country.name,
        country_code: country.country_code,
        mcc: country.mcc,
        iso_code: country.iso_code,
      }),
      tapcode: Object.freeze(
        operator.tapcode ? [Object.freeze({ id: operator.id * 100 + 1, tapcode: operator.tapcode })] : [],
      ),
      mnc: Object.freeze(
        operator.mncs.map((mnc, k) => Object.freeze({ id: operator.id * 100 + k + 1, mnc })),
      ),
    }),
  );
  return {
    id: operator.id,
    name: operator.name,
    country: parts.country,
    tapcode: parts.tapcode,
    mnc: parts.mnc,
  };
}
