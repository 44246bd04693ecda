import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EmbeddedEngine } from '../../engine/engine.js';
import { summarise } from '../../engine/summary.js';
import { generateReferenceData } from '../../reference/generator.js';
import { DataStreamerError } from '../../util/errors.js';
import { parse, parseDuration, parseInteger } from '../args.js';
import { formatCount, Progress } from '../progress.js';
import { describeReference, writeReferenceData } from './reference.js';
import { DEFAULT_START, printSummary, runWithProgress } from './simulate.js';

export const DEMO_HELP = `Usage: data-streamer demo [--data-dir DIR] [--devices N] [--duration D]

What 'npm start' runs. Generates a fleet of 2,000 devices across real networks, runs the
core simulator over one virtual day, then runs that traffic through the embedded engine
(durable log, events, rated usage records, quotas and limits, ClickHouse), with progress
lines. Everything lands under DIR (default ./data/demo); run it again with a new DIR to
start over.`;

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
    `Data Streamer demo: a simulated mobile core for ${formatCount(devices)} IoT devices\n${describeReference(reference)}\n`,
  );
  const capture = join(dir, 'capture.ndjson.gz');
  printSummary(
    await runWithProgress({
      reference,
      seed: 'demo',
      start: Date.parse(DEFAULT_START),
      durationMs: parseDuration(values.duration ?? '24h', '--duration'),
      out: capture,
    }),
  );

  const engineDir = join(dir, 'engine');
  console.log(`\nRunning the capture through the embedded engine into ${engineDir} ...`);
  const engine = await EmbeddedEngine.open({ dataDir: engineDir }, reference);
  const progress = new Progress(true);
  const began = performance.now();
  try {
    await engine.replay(capture, (p) =>
      progress.update(
        () =>
          `engine  ${formatCount(p.processed)} raw records processed  ${formatCount(p.processed / Math.max((performance.now() - began) / 1000, 1e-3))}/s`,
      ),
    );
    progress.done();
    const s = await summarise(engine);
    const list = (m: Record<string, number | string>) =>
      Object.entries(m)
        .map(([k, v]) => `${k}: ${typeof v === 'number' ? formatCount(v) : v}`)
        .join(', ') || 'none';
    console.log(
      [
        `  events            ${list(s.events)}`,
        `  usage records     data ${formatCount(s.usage_records.data)}, SMS ${formatCount(s.usage_records.sms)}`,
        `  cost              ${list(s.cost)}`,
        `  dead letters      ${list(s.dead_letters)}`,
      ].join('\n'),
    );
  } finally {
    await engine.close();
  }
  console.log(
    [
      '',
      `Reference data: ${referenceFile}`,
      `Capture:        ${capture}`,
      `Engine data:    ${engineDir}`,
      'Next:',
      `  npx data-streamer query "SELECT tariff_id, ratezone_name, currency, count() AS records, sum(cost) AS cost FROM usage_records GROUP BY ALL ORDER BY cost DESC" --data-dir ${engineDir}`,
      `  npx data-streamer query "SELECT event_type_description, count() FROM events GROUP BY ALL ORDER BY 2 DESC" --data-dir ${engineDir}`,
      `  npx data-streamer inspect ${capture} --sample 5`,
    ].join('\n'),
  );
  return 0;
}
