import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SinkFactory } from '../connectors/sinks/types.js';
import { webhookSink } from '../connectors/sinks/webhook/index.js';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { captureLines } from '../src/engine/ingest.js';
import { topicValues } from '../src/engine/topic-values.js';
import type { EmbeddedLog } from '../src/log/index.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { runSimulation } from '../src/simulator/run.js';
import { StreamManager } from '../src/streams/manager.js';
import { HOUR, Receiver, T0 } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const reference = generateReferenceData({ devices: 150, seed: 21 });
const topics = ['raw', 'events', 'usage', 'dead-letters'] as const;

async function starts(engine: EmbeddedEngine): Promise<Record<(typeof topics)[number], number[]>> {
  const out = { raw: [], events: [], usage: [], 'dead-letters': [] } as Record<
    (typeof topics)[number],
    number[]
  >;
  for (const name of topics) {
    const topic = name === 'raw' ? engine.raw : engine.outputs[name];
    for (let p = 0; p < topic.partitions; p++) out[name].push(await topic.startOffset(p));
  }
  return out;
}

const counts = async (engine: EmbeddedEngine) =>
  engine.store.query(
    'SELECT (SELECT count() FROM usage_records FINAL) AS usage, (SELECT toString(sum(cost)) FROM usage_records FINAL) AS cost, (SELECT count() FROM events FINAL) AS events',
  );

describe('retention of the engine log', () => {
  it('removes records once written longer ago than retentionMs, never what the fold, the organisation stage or the ClickHouse writer still needs; a paused stream goes on from the oldest record left', async () => {
    const capture = join(dir, 'capture.ndjson');
    await runSimulation({ reference, seed: 21, start: T0, durationMs: 6 * HOUR, out: capture });
    const dataDir = join(dir, 'engine');
    // Everything is past retention as soon as it is written; small steps write many 16 KiB segments.
    const options = { dataDir, retentionMs: 0, segmentBytes: 16 * 1024, batchSize: 100, snapshotEvery: 500 };
    const engine = await EmbeddedEngine.open(options, reference);
    const log = engine.log as EmbeddedLog;

    // Folded, not yet stored: the fold's snapshots free raw records, the outputs stay.
    let lines: string[] = [];
    for await (const line of captureLines(capture)) {
      lines.push(line);
      if (lines.length === 200) {
        await engine.ingest(lines);
        lines = [];
      }
    }
    await engine.ingest(lines);
    await engine.process();
    for (const p of engine.processors) await p.snapshot();
    await log.enforceRetention();
    const folded = await starts(engine);
    expect(folded.raw.some((s) => s > 0)).toBe(true);
    engine.processors.forEach((p, i) => {
      expect(folded.raw[i]).toBeLessThanOrEqual(p.durableOffset);
    });
    for (const name of ['events', 'usage', 'dead-letters'] as const)
      expect(folded[name]).toEqual(folded[name].map(() => 0));

    // A paused stream does not hold retention back (emnify: it catches up "within retention").
    const receiver = new Receiver();
    await receiver.start();
    const streams = new StreamManager({
      lanesIn: 'process',
      dir: join(dir, 'streams'),
      sources: engine.streamSources(),
      cursors: engine.log.cursors,
      sinks: new Map([[webhookSink.connectionType, webhookSink as unknown as SinkFactory]]),
      lingerMs: 30,
      pollMs: 10,
    });
    const organisation = reference.organisations[0]?.id ?? 0;
    const paused = await streams.create(organisation, {
      name: 'paused past retention',
      data_stream_type: { id: 1 },
      destination: { connection_type: 'RestAPI', credentials: { url: receiver.url } },
      status: { id: 2 },
      start: 'earliest',
    });

    // Stored and merged: the outputs go too, up to what the writer and the stage have taken.
    await engine.finish();
    await log.enforceRetention();
    const stored = await starts(engine);
    expect(stored.events.some((s) => s > 0)).toBe(true);
    expect(stored.usage.some((s) => s > 0)).toBe(true);
    for (let p = 0; p < engine.raw.partitions; p++) {
      expect(stored.usage[p]).toBeLessThanOrEqual(await engine.retentionFloor('usage', p));
      expect(stored.events[p]).toBeLessThanOrEqual(await engine.retentionFloor('events', p));
    }
    const before = await counts(engine);
    expect(Number(before[0]?.usage)).toBeGreaterThan(100);

    // Resumed, the stream goes on from the oldest record left: every retained usage record of
    // its organisation once, none of the removed ones, and it stays Running.
    const retained: number[] = [];
    let left = 0;
    for (const topic of engine.streamSources().usage)
      for await (const value of topicValues(topic)) {
        left++;
        const record = JSON.parse(value) as { id: number; organisation: { id: number } };
        if (record.organisation.id === organisation) retained.push(record.id);
      }
    expect(retained.length).toBeGreaterThan(0);
    expect((await streams.status(organisation, paused.id)).lag.records).toBe(left);
    await streams.update(organisation, paused.id, { status: { id: 1 } });
    await streams.caughtUp();
    expect(
      receiver
        .records()
        .map((r) => r.id)
        .sort(),
    ).toEqual(retained.sort());
    const status = await streams.status(organisation, paused.id);
    expect(status.stream.status.id).toBe(1);
    expect(status.lag.records).toBe(0);
    await streams.close();
    await receiver.stop();
    await engine.close();

    // Reopened over the trimmed log, the same capture again adds nothing, and nothing is lost.
    const again = await EmbeddedEngine.open(options, reference);
    await again.replay(capture);
    expect(await counts(again)).toEqual(before);
    await again.close();

    // The same capture into a log that keeps everything gives the same store.
    const kept = await EmbeddedEngine.open({ dataDir: join(dir, 'kept') }, reference);
    await kept.replay(capture);
    expect(await counts(kept)).toEqual(before);
    await kept.close();
  }, 180_000);
});
