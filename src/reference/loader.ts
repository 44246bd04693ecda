import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ReferenceDataError } from '../util/errors.js';
import { describeSchemaError, formatPath, schemaValidator, valueAt } from '../util/schema-errors.js';
import { checkReferences } from './integrity.js';
import type { ReferenceData } from './types.js';

/** Messages for the shared definitions, so an error says what a value must look like. */
const DEFINITION_MESSAGES: Record<string, string> = {
  decimal: 'must be a decimal string such as "0.25" (prices and volumes are never JSON numbers)',
  timestamp: 'must be an ISO-8601 UTC timestamp such as "2024-01-31T12:00:00Z"',
  mcc: 'must be a 3-digit MCC string such as "262"',
  mnc: 'must be a 2- or 3-digit MNC string such as "01"',
  imsi: 'must be a 15-digit IMSI string',
  iccid: 'must be an ICCID string: 89 followed by 17 or 18 digits',
  msisdn: 'must be an MSISDN string of 8 to 15 digits',
  imei: 'must be a 15-digit IMEI string',
  ipv4: 'must be an IPv4 address string such as "10.0.0.1"',
  id: 'must be a positive integer id below 2^53',
};

const validate = schemaValidator('reference-data.schema.json');

function describe(error: ErrorObject, data: unknown): string {
  const path = formatPath(error.instancePath);
  const definition = /^#\/definitions\/([a-z0-9_]+)\//.exec(error.schemaPath)?.[1];
  if (
    definition &&
    DEFINITION_MESSAGES[definition] &&
    (error.keyword === 'type' ||
      error.keyword === 'pattern' ||
      error.keyword === 'minimum' ||
      error.keyword === 'maximum')
  ) {
    return `${path}: ${DEFINITION_MESSAGES[definition]}, got ${JSON.stringify(valueAt(data, error.instancePath))}`;
  }
  return describeSchemaError(error, data);
}

/** Parses JSON or YAML text (chosen by the file name, then by the first character). */
export function parseText(text: string, file: string): unknown {
  const yaml = /\.ya?ml$/i.test(file) || (!/\.json$/i.test(file) && !/^\s*[{[]/.test(text));
  try {
    return yaml ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ReferenceDataError(file, [
      `cannot be parsed as ${yaml ? 'YAML' : 'JSON'}: ${(error as Error).message}`,
    ]);
  }
}

/**
 * Validates reference data: first against the JSON Schema, then every cross-reference.
 * Throws a ReferenceDataError that lists every problem with its path.
 */
export function validateReferenceData(data: unknown, file = '<reference data>'): ReferenceData {
  const schemaErrors = validate(data);
  const problems = schemaErrors.map((e) => describe(e, data));
  try {
    problems.push(...checkReferences(data as ReferenceData));
  } catch (error) {
    // Cross-references of a file with schema errors may not be checkable; the schema errors say why.
    if (schemaErrors.length === 0) throw error;
  }
  if (problems.length > 0) throw new ReferenceDataError(file, [...new Set(problems)]);
  return data as ReferenceData;
}

export function parseReferenceData(text: string, file = '<reference data>'): ReferenceData {
  return validateReferenceData(parseText(text, file), file);
}

/** A JSON or YAML file's content, not yet validated; a file that cannot be read or parsed is a ReferenceDataError. */
export function readDataFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ReferenceDataError(file, [
      `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    ]);
  }
  return parseText(text, file);
}

export function loadReferenceData(file: string): ReferenceData {
  return validateReferenceData(readDataFile(file), file);
}
