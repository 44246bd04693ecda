/** Turns Ajv's errors into messages that name the field, e.g. `destination.credentials.url: is required`. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { packageRoot } from './paths.js';

/** A validator for schemas/json/<file>, compiled on first use: the errors of `data`, none when valid. */
export function schemaValidator(file: string): (data: unknown) => ErrorObject[] {
  let validate: ReturnType<Ajv['compile']> | undefined;
  return (data) => {
    validate ??= new Ajv({ allErrors: true, strict: false }).compile(
      JSON.parse(readFileSync(join(packageRoot(), 'schemas', 'json', file), 'utf8')),
    );
    return validate(data) ? [] : [...(validate.errors ?? [])];
  };
}

/** `/tariffs/2/ratezones/0/rates` -> `tariffs[2].ratezones[0].rates`, under an optional prefix. */
export function formatPath(pointer: string, prefix = ''): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out || '(top level)';
}

export function valueAt(data: unknown, pointer: string): unknown {
  let node = data;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function child(path: string, name: string): string {
  return path === '(top level)' ? name : `${path}.${name}`;
}

/** One message for one error; `prefix` is the path of `data` inside a larger document. */
export function describeSchemaError(error: ErrorObject, data: unknown, prefix = ''): string {
  const path = formatPath(error.instancePath, prefix);
  switch (error.keyword) {
    case 'required':
      return `${child(path, String(error.params.missingProperty))}: is required`;
    case 'additionalProperties':
      return `${child(path, String(error.params.additionalProperty))}: is not a known field`;
    case 'enum':
      return `${path}: must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(valueAt(data, error.instancePath))}`;
    case 'const':
      return `${path}: must be ${JSON.stringify(error.params.allowedValue)}`;
    default:
      return `${path}: ${error.message ?? 'is invalid'}`;
  }
}
