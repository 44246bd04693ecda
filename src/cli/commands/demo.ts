import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateReferenceData } from '../../reference/generator.js';
import { DataStreamerError } from '../../util/errors.js';
import { parse, parseDuration, parseInteger } from '../args.js';
import { describeReference, writeReferenceData } from './reference.js';
import { DEFAULT_START, printSummary, runWithProgress } from './simulate.js';

export const DEMO_HELP = `Usage: data-streamer demo [--data-dir DIR] [--devices N] [--duration D]

What 'npm start' runs. Generates a fleet of 2,000 devices across real networks, runs the
core simulator over one virtual day with a live progress line, and writes the reference
data and the capture under DIR (default ./data/demo).`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    { 'data-dir': { type: 'string' }, devices: { type: 'string' }, duration: { type: 'string' } },
    'demo',
  );
  if (values.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const dir = resolve(values['data-dir'] ?? join('data', 'demo'));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new DataStreamerError(
      'OUTPUT_NOT_WRITABLE',
      `cannot create ${dir}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
  const devices = parseInteger(values.devices ?? '2000', '--devices', 1, 1_000_000);
  const reference = generateReferenceData({ devices, seed: 'demo' });
  const referenceFile = join(dir, 'reference.json');
  writeReferenceData(referenceFile, reference);
  console.log(
    `Data Streamer demo: a simulated mobile core for ${devices.toLocaleString('en-US')} IoT devices\n${describeReference(reference)}\n`,
  );
  const capture = join(dir, 'capture.ndjson.gz');
  const summary = await runWithProgress({
    reference,
    seed: 'demo',
    start: Date.parse(DEFAULT_START),
    durationMs: parseDuration(values.duration ?? '24h', '--duration'),
    out: capture,
  });
  printSummary(summary);
  console.log(
    [
      '',
      `Reference data: ${referenceFile}`,
      `Capture:        ${capture}`,
      'Next:',
      `  npx data-streamer inspect ${capture} --sample 5`,
      '  npx data-streamer simulate --devices 1000 --duration 6h --seed 7 --out /tmp/c.ndjson.gz',
    ].join('\n'),
  );
  return 0;
}
