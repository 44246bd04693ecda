import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { topicValues } from '../src/engine/topic-values.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { runSimulation } from '../src/simulator/run.js';
import { streamsOf } from '../src/streams/beside-engine.js';
import { CLI } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-streams-kill-'));

/** `streams run` in a child process, killed with SIGKILL once `killWhen` holds (or left to finish). */
function run(
  dataDir: string,
  organisation: number,
  killWhen?: () => boolean,
): Promise<'killed' | 'finished'> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'streams', 'run', '--data-dir', dataDir, '--organisation', String(organisation)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const poll = killWhen
      ? setInterval(() => {
          if (killWhen()) child.kill('SIGKILL');
        }, 5)
      : undefined;
    child.on('exit', (code, signal) => {
      if (poll) clearInterval(poll);
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve('finished');
      else reject(new Error(`streams run exited ${code}: ${stderr}`));
    });
  });
}

describe('data streams across SIGKILL', () => {
  it('every record reaches the webhook at least once when the process is killed during delivery, again and again', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it)`);
    const reference = generateReferenceData({ devices: 300, seed: 8 });
    const organisation = reference.organisations[0]?.id as number;
    const capture = join(dir, 'capture.ndjson');
    await runSimulation({
      reference,
      seed: 8,
      start: Date.UTC(2026, 0, 5),
      durationMs: 6 * 3_600_000,
      out: capture,
    });

    // A receiver that takes its time, so a kill lands in the middle of delivery.
    const received: number[] = [];
    let requests = 0;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        setTimeout(() => {
          for (const record of JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number }[])
            received.push(record.id);
          requests++;
          res.writeHead(200).end();
        }, 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

    const dataDir = join(dir, 'engine');
    const engine = await EmbeddedEngine.open({ dataDir }, reference);
    let expected: number[] = [];
    try {
      await engine.replay(capture);
      for await (const value of topicValues(engine.streamSources().usage[0] as never)) {
        const record = JSON.parse(value) as { id: number; organisation: { id: number } };
        if (record.organisation.id === organisation) expected.push(record.id);
      }
      const streams = streamsOf(engine, dataDir);
      await streams.create(organisation, {
        name: 'usage',
        data_stream_type: { id: 1 },
        destination: { connection_type: 'RestAPI', credentials: { url, size: 200 } },
        start: 'earliest',
      });
      await streams.close();
    } finally {
      await engine.close();
    }
    expected = [...new Set(expected)].sort((a, b) => a - b);
    expect(expected.length).toBeGreaterThan(2000);

    let kills = 0;
    for (let round = 1; round <= 3; round++) {
      const before = requests;
      if ((await run(dataDir, organisation, () => requests >= before + 2 * round)) === 'killed') kills++;
    }
    expect(await run(dataDir, organisation)).toBe('finished');
    server.close();

    expect(kills).toBe(3);
    // At least once: every id arrived, some more than once (the batches in flight at each kill).
    expect([...new Set(received)].sort((a, b) => a - b)).toEqual(expected);
    expect(received.length).toBeGreaterThanOrEqual(expected.length);
  }, 180_000);
});
