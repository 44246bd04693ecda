import { writeFileSync } from 'node:fs';
import { stringify as toYaml } from 'yaml';
import { Directory } from '../../reference/directory.js';
import { generateReferenceData, MAX_GENERATED_DEVICES } from '../../reference/generator.js';
import { loadReferenceData } from '../../reference/loader.js';
import type { ReferenceData } from '../../reference/types.js';
import { DataStreamerError, UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';
import { formatCount } from '../progress.js';

export const REFERENCE_HELP = `Usage: data-streamer reference <generate|validate> ...

  reference generate --out FILE [--devices N] [--seed S] [--organisations K]
      Writes a realistic fleet (real operators of 51 countries, tariffs, profiles,
      organisations, SIMs with 1 to 3 IMSIs, endpoints) as JSON, or YAML for .yaml/.yml.
  reference validate FILE
      Checks a reference data file and lists every problem with its path.

Format: docs/reference-data.md, schema: schemas/json/reference-data.schema.json`;

export function writeReferenceData(file: string, data: ReferenceData): void {
  const text = /\.ya?ml$/i.test(file) ? toYaml(data) : `${JSON.stringify(data, null, 2)}\n`;
  try {
    writeFileSync(file, text);
  } catch (error) {
    throw new DataStreamerError(
      'OUTPUT_NOT_WRITABLE',
      `cannot write ${file}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
}

export function describeReference(data: ReferenceData): string {
  const dir = new Directory(data);
  const multi = [0, 0, 0];
  for (const fleet of data.fleets ?? [])
    multi[fleet.imsi_ranges.length - 1] = (multi[fleet.imsi_ranges.length - 1] ?? 0) + fleet.count;
  for (const sim of data.sims ?? []) multi[sim.imsis.length - 1] = (multi[sim.imsis.length - 1] ?? 0) + 1;
  return [
    `${data.countries.length} countries, ${data.operators.length} operators, ${data.tariffs.length} tariffs (${data.tariffs.reduce((n, t) => n + t.ratezones.length, 0)} ratezones)`,
    `${data.tariff_profiles.length} tariff profiles, ${data.service_profiles.length} service profiles, ${data.organisations.length} organisations`,
    `${formatCount(dir.endpointCount)} endpoints; SIMs with 1/2/3 IMSIs: ${multi.map((n) => formatCount(n ?? 0)).join('/')}`,
  ].join('\n');
}

export async function referenceCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'generate') {
    const { values } = parse(
      rest,
      {
        out: { type: 'string' },
        devices: { type: 'string' },
        seed: { type: 'string' },
        organisations: { type: 'string' },
      },
      'reference generate',
    );
    if (values.help) return help();
    if (!values.out) throw new UsageError('reference generate: --out FILE is required');
    const data = generateReferenceData({
      devices: parseInteger(values.devices ?? '1000', '--devices', 1, MAX_GENERATED_DEVICES),
      seed: values.seed ?? '1',
      ...(values.organisations
        ? { organisations: parseInteger(values.organisations, '--organisations', 1, 10_000) }
        : {}),
    });
    writeReferenceData(values.out, data);
    console.log(`Wrote ${values.out}\n${describeReference(data)}`);
    return 0;
  }
  if (sub === 'validate') {
    const { values, positionals } = parse(rest, {}, 'reference validate');
    if (values.help) return help();
    const file = positionals[0];
    if (!file) throw new UsageError('reference validate: give the file to check');
    const data = loadReferenceData(file);
    console.log(`${file} is valid\n${describeReference(data)}`);
    return 0;
  }
  if (sub === undefined || sub === '--help' || sub === '-h') return help();
  throw new UsageError(`reference: unknown subcommand "${sub}" (generate or validate)`);
}

function help(): number {
  console.log(REFERENCE_HELP);
  return 0;
}
