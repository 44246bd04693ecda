import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startEngineApi } from '../../api/from-engine.js';
import { CaptureWriter } from '../../capture/writer.js';
import { EmbeddedEngine, LIVE_ORGANISATION_IDLE_MS } from '../../engine/engine.js';
import { runLive } from '../../engine/live.js';
import { summarise } from '../../engine/summary.js';
import { Directory } from '../../reference/directory.js';
import { generateReferenceData } from '../../reference/generator.js';
import { simulationHeader } from '../../simulator/run.js';
import { CoreSimulator } from '../../simulator/simulator.js';
import { settleStreams, streamsOf } from '../../streams/beside-engine.js';
import { DataStreamerError } from '../../util/errors.js';
import { parse, parseDuration, parseInteger, parseNumber } from '../args.js';
import { DemoWebhookReceiver } from '../demo/webhook-receiver.js';
import { formatBar, formatCount, Progress } from '../progress.js';
import { describeReference, writeReferenceData } from './reference.js';
import { DEFAULT_START } from './simulate.js';

/** Virtual time the core runs between two turns of the engine. */
const LIVE_STEP_MS = 15 * 60_000;

export const DEMO_HELP = `Usage: data-streamer demo [--data-dir DIR] [--devices N] [--duration D] [--speed N|max] [--port P] [--exit]

What 'npm start' runs. Generates a fleet of 2,000 devices across real networks and runs
the simulated core and the embedded engine together over one virtual day: the engine
turns the traffic into events, rated usage records, quota and limit decisions and
ClickHouse rows, and its enforcement commands (block, throttle, unblock) go back to the
core as they happen. Meanwhile the management API and the live dashboard serve on
http://127.0.0.1:8080, with an application token of the first organisation in
DIR/api-token. Everything lands under DIR (default ./data/demo) and is replaced by the
next run: reference.json, capture.ndjson.gz (the traffic) and engine/ (the data); data
streams, application tokens and users stay.

Options:
  --speed N|max   virtual time per wall time; default 600 (the day takes 2.4 minutes);
                  max: as fast as it can (the outputs are the same at any speed)
  --port P        of the API and dashboard; default 8080, any free one if 8080 is taken
  --exit          end after the day; by default a run in a terminal keeps serving the
                  API and dashboard until Ctrl+C`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      'data-dir': { type: 'string' },
      devices: { type: 'string' },
      duration: { type: 'string' },
      speed: { type: 'string' },
      port: { type: 'string' },
      exit: { type: 'boolean' },
    },
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
  const speed =
    values.speed === 'max' ? undefined : parseNumber(values.speed ?? '600', '--speed', 0.001, 1_000_000_000);
  const port = parseInteger(values.port ?? '8080', '--port', 0, 65535);
  // In a terminal the API stays up after the day, for a look around; in a script it ends.
  const stay = !values.exit && process.stdout.isTTY === true && process.stdin.isTTY === true;
  const reference = generateReferenceData({ devices, seed: 'demo' });
  const referenceFile = join(dir, 'reference.json');
  writeReferenceData(referenceFile, reference);
  console.log(
    `Data Streamer demo: a simulated mobile core for ${formatCount(devices)} IoT devices\n${describeReference(reference)}\n`,
  );
  const capture = join(dir, 'capture.ndjson.gz');
  const engineDir = join(dir, 'engine');
  // The demo starts over each time: its engine data belongs to this run's capture. Data
  // streams configured with 'data-streamer streams' stay, and deliver the new day from its
  // start; so do the API's tokens and users.
  for (const entry of existsSync(engineDir) ? readdirSync(engineDir) : [])
    if (entry !== 'streams' && entry !== 'api')
      rmSync(join(engineDir, entry), { recursive: true, force: true });
  const durationMs = parseDuration(values.duration ?? '24h', '--duration');
  const sim = new CoreSimulator({
    directory: new Directory(reference),
    seed: 'demo',
    start: Date.parse(DEFAULT_START),
    durationMs,
  });
  const writer = CaptureWriter.open(
    capture,
    simulationHeader(reference, sim, { seed: 'demo', durationMs, enforcement: 'from the engine' }),
  );
  const engine = await EmbeddedEngine.open(
    { dataDir: engineDir, organisationIdleMs: LIVE_ORGANISATION_IDLE_MS },
    reference,
  );
  const streams = streamsOf(engine, engineDir);
  await streams.start();
  // A built-in data stream: the first organisation's events to a webhook receiver of the demo's own.
  const receiver = await DemoWebhookReceiver.start();
  const organisation = reference.organisations[0] as { id: number; name: string };
  const demoStream = await streams.create(organisation.id, {
    name: 'demo: events to a local webhook',
    data_stream_type: { id: 2 },
    destination: { connection_type: 'RestAPI', credentials: { url: receiver.url, size: 3000 } },
    start: 'earliest',
  });
  // Commands from the API are stamped with the core's virtual time and captured in place.
  let live = true;
  const api = await startEngineApi({
    engine,
    streams,
    dataDir: engineDir,
    port,
    host: '127.0.0.1',
    anyPortIfTaken: values.port === undefined,
    now: () => sim.now,
    capture: () => (live ? writer : undefined),
  });
  const demoToken = await api.tokens.create(organisation.id, 'demo (npm start)');
  const tokenFile = join(dir, 'api-token');
  writeFileSync(tokenFile, `${demoToken.secret}\n`, { mode: 0o600 });
  api.setReady(true);
  console.log(
    [
      `Dashboard:  ${api.address}/#token=${demoToken.secret}`,
      `API:        ${api.address}/api/docs   (application token of ${organisation.name}, organisation ${organisation.id}: ${tokenFile})`,
      '',
    ].join('\n'),
  );
  const progress = new Progress(true);
  const began = performance.now();
  try {
    const { processed, commands } = await runLive({
      sim,
      engine,
      stepMs: LIVE_STEP_MS,
      ...(speed === undefined ? {} : { speed }),
      capture: writer,
      onTurn: (p) =>
        progress.update(() => {
          const fraction = (sim.now - sim.start) / (sim.end - sim.start);
          const rate = p.processed / Math.max((performance.now() - began) / 1000, 1e-3);
          return `core -> engine ${formatBar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}%  virtual ${new Date(sim.now).toISOString().slice(0, 16).replace('T', ' ')}  ${formatCount(p.processed)} records  ${formatCount(rate)}/s  ${formatCount(p.commands)} commands to the core  ${formatCount(receiver.records)} events to the webhook`;
        }),
    });
    live = false;
    progress.done();
    const s = await summarise(engine);
    const list = (m: Record<string, number | string>) =>
      Object.entries(m)
        .map(([k, v]) => `${k}: ${typeof v === 'number' ? formatCount(v) : v}`)
        .join(', ') || 'none';
    const rejected = Object.entries(sim.stats.rejected)
      .map(([k, v]) => `${k} ${formatCount(v)}`)
      .join(', ');
    console.log(
      [
        `${formatCount(processed)} raw records from ${formatCount(devices)} devices over ${values.duration ?? '24h'} of virtual time, in ${((performance.now() - began) / 1000).toFixed(1)} s`,
        `  events            ${list(s.events)}`,
        `  usage records     data ${formatCount(s.usage_records.data)}, SMS ${formatCount(s.usage_records.sms)}`,
        `  cost              ${list(s.cost)}`,
        `  dead letters      ${list(s.dead_letters)}`,
        `  to the core       ${formatCount(commands)} enforcement commands, applied by the simulated core`,
        `  rejections        ${rejected || 'none'}`,
      ].join('\n'),
    );
    const lines = await settleStreams(streams, 30_000);
    console.log(`  data streams\n${lines.join('\n')}`);
    console.log(
      `  webhook           ${formatCount(receiver.records)} events of ${organisation.name} received at ${receiver.url} in ${formatCount(receiver.requests)} requests; the last one:\n${JSON.stringify(receiver.last).slice(0, 300)}...`,
    );
    if (stay) {
      console.log(`\nThe day is over; the API and dashboard stay up at ${api.address} until Ctrl+C.`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
  } finally {
    live = false;
    api.setReady(false);
    await api.app.close();
    // The demo's token and built-in stream belong to this run. Streams of your own stay.
    await api.tokens.revoke(organisation.id, demoToken.token.id).catch(() => undefined);
    rmSync(tokenFile, { force: true });
    await streams.delete(organisation.id, demoStream.id).catch(() => undefined);
    await streams.close();
    await receiver.close();
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
      `  npx data-streamer serve --data-dir ${engineDir}   # the management API and dashboard again: docs/api.md`,
    ].join('\n'),
  );
  return 0;
}
