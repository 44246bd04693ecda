/**
 * The re-keying step: lines produced to the ingest topic in any partition end up on the
 * raw topic in their endpoint's partition, keyed by endpoint id; a crash between the
 * appends and the cursor commit appends a batch again, and the fold drops the repeats, so
 * the outputs are those of the capture ingested directly (but for their ids, which follow
 * input positions).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { captureLines, routeOfLine } from '../src/engine/ingest.js';
import { Rekeyer } from '../src/engine/rekey.js';
import type { CursorStore } from '../src/log/types.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { allOutputs, captureWithQuotas } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-rekey-'));
const reference = generateReferenceData({ devices: 120, seed: 21 });

describe('the re-keying step', () => {
  it('routes ingest lines to their endpoint’s raw partition, and a repeated batch changes no output', async () => {
    const capture = join(dir, 'capture.ndjson');
    await captureWithQuotas(capture, reference, { seed: 21, hours: 4, every: 5 });
    const lines: string[] = [];
    for await (const line of captureLines(capture)) lines.push(line);

    const direct = await EmbeddedEngine.open({ dataDir: join(dir, 'direct'), partitions: 3 }, reference);
    await direct.replay(capture);
    const expected = await allOutputs(direct);
    await direct.close();

    const engine = await EmbeddedEngine.open({ dataDir: join(dir, 'rekeyed'), partitions: 3 }, reference);
    try {
      // A source keyed by IMSI: everything on ingest partition 0, in the capture's order.
      const ingest = await engine.log.topic('ingest', 3);
      await ingest.append(
        0,
        lines.map((line) => ({
          key: /"(?:imsi|servedIMSI)":"(\d+)"/.exec(line)?.[1] ?? null,
          value: Buffer.from(line),
          timestamp: 0,
        })),
      );
      // The first commit fails, as if the process died after its appends.
      let failOnce = true;
      const cursors: CursorStore = {
        get: (g, t, p) => engine.log.cursors.get(g, t, p),
        commit: async (g, t, p, o) => {
          if (failOnce) {
            failOnce = false;
            throw new Error('killed before the commit');
          }
          await engine.log.cursors.commit(g, t, p, o);
        },
      };
      const rekeyer = new Rekeyer(ingest, engine.raw, engine.directory, cursors, 'rekey', 1000);
      await expect(rekeyer.step([0, 1, 2])).rejects.toThrow('killed before the commit');
      let moved = 0;
      for (let n = await rekeyer.step([0, 1, 2]); n > 0; n = await rekeyer.step([0, 1, 2])) moved += n;
      expect(moved).toBe(lines.length);
      expect(await rekeyer.step([0, 1, 2])).toBe(0);

      // On raw: every line in its endpoint's partition with its key, the first batch twice.
      let onRaw = 0;
      for (let p = 0; p < 3; p++)
        for (const record of await engine.raw.read(p, 0, 1_000_000, 1 << 30)) {
          const route = routeOfLine(record.value.toString('utf8'), engine.directory, 3);
          expect(route.partition).toBe(p);
          expect(record.key).toBe(route.key);
          onRaw++;
        }
      expect(onRaw).toBe(lines.length + 1000);

      await engine.process();
      await engine.finish();
      // Output ids derive from input positions, which the repeated batch shifts; the rest is equal.
      const withoutIds = (outputs: Record<string, string[]>) =>
        Object.fromEntries(
          Object.entries(outputs).map(([topic, texts]) => [
            topic,
            texts
              .map((t) => t.replace(/"(id|cause_event_id)":\d+/g, '"$1":0').replace(/"enf-\d+"/g, '"enf"'))
              .sort(),
          ]),
        );
      const outputs = await allOutputs(engine);
      expect(outputs.usage?.length).toBeGreaterThan(100);
      expect(withoutIds(outputs)).toEqual(withoutIds(expected));
    } finally {
      await engine.close();
    }
  }, 120_000);
});
