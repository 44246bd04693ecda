import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ORGANISATION_TOPICS } from '../src/engine/organisation-runner.js';
import { OUTPUT_TOPICS } from '../src/engine/processor.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { openStore } from '../src/storage/index.js';
import { hash32 } from '../src/util/random.js';
import { CLI, captureWithQuotas, outputsOf } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-crash-'));

/** Runs `replay` and kills it with SIGKILL after `killAfterMs` (or lets it finish). */
function replay(capture: string, dataDir: string, killAfterMs?: number): Promise<'killed' | 'finished'> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'replay', capture, '--data-dir', dataDir, '--quiet', '--json'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve('finished');
      else reject(new Error(`replay exited ${code}: ${stderr}`));
    });
  });
}

describe('engine crash safety', () => {
  it('killed with SIGKILL at random points and restarted, ends with exactly the outputs of an uninterrupted run', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does it)`);
    const reference = generateReferenceData({ devices: 1500, seed: 31 });
    (reference.organisations[0] as { monthly_cost_limit?: string }).monthly_cost_limit = '10';
    const capture = join(dir, 'capture.ndjson');
    await captureWithQuotas(capture, reference, { seed: 31, hours: 8, every: 40 });

    expect(await replay(capture, join(dir, 'clean'))).toBe('finished');
    const expected = await outputsOf(join(dir, 'clean'));
    expect(expected.usage?.length).toBeGreaterThan(10_000);

    const crashed = join(dir, 'crashed');
    let kills = 0;
    for (let attempt = 0; kills < 5 && attempt < 20; attempt++) {
      // Deterministic "random" moments spread over a run (start-up included).
      const delay = 300 + (hash32(attempt, 7) % 2500);
      if ((await replay(capture, crashed, delay)) === 'killed') kills++;
    }
    expect(kills).toBe(5);
    await replay(capture, crashed);
    const actual = await outputsOf(crashed);
    expect(expected['organisation-events']?.length).toBe(1);
    // The quotas were used: assigned, past their threshold, used up, with blocks for the core.
    const quotaEvents = (expected.events ?? [])
      .map((e) => JSON.parse(e).event_type.id)
      .filter((id: number) => id >= 18 && id <= 19);
    expect(quotaEvents.length).toBeGreaterThan(10);
    expect(expected.enforcement?.length).toBeGreaterThan(5);
    for (const topic of [...OUTPUT_TOPICS, ...ORGANISATION_TOPICS]) {
      expect(actual[topic]?.length, topic).toBe(expected[topic]?.length);
      expect(actual[topic], topic).toEqual(expected[topic]);
    }
    // Every usage record exactly once in ClickHouse, costs and rollups as in the clean run.
    const totals = async (dataDir: string) => {
      const store = await openStore({ kind: 'embedded', dataDir: join(dataDir, 'clickhouse') });
      try {
        return [
          await store.query(
            'SELECT count() AS n, uniqExact(id) AS ids, toString(sum(cost)) AS cost FROM usage_records',
          ),
          await store.query('SELECT sum(records) AS n, toString(sum(cost)) AS cost FROM usage_daily'),
          await store.query('SELECT count() AS n, uniqExact(id) AS ids FROM events'),
        ];
      } finally {
        await store.close();
      }
    };
    const clean = await totals(join(dir, 'clean'));
    expect(clean[0]?.[0]).toMatchObject({
      n: String(expected.usage?.length),
      ids: String(expected.usage?.length),
    });
    expect(await totals(crashed)).toEqual(clean);
  }, 180_000);
});
