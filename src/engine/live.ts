/**
 * The closed loop of the embedded mode: the simulated core and the engine run in turns.
 * Each turn the core generates a step of virtual time, the engine ingests and processes
 * it, and the enforcement commands the engine wrote in that turn go back to the core, so a
 * blocked device is rejected from the next turn on (a command takes effect up to one step
 * after its cause, like a real core applying it with some delay). Deterministic: the same
 * fleet, seed and step give the same traffic and the same outputs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { captureLine } from '../capture/ndjson.js';
import type { CaptureWriter } from '../capture/writer.js';
import type { RawRecord } from '../contracts/raw.js';
import type { CoreSimulator } from '../simulator/simulator.js';
import type { EmbeddedEngine } from './engine.js';

export interface LiveProgress {
  /** Raw records the engine has processed. */
  processed: number;
  /** Enforcement commands handed to the core. */
  commands: number;
}

export interface LiveOptions {
  sim: CoreSimulator;
  engine: EmbeddedEngine;
  /** Virtual time the core runs between two turns of the engine. */
  stepMs: number;
  /**
   * Virtual time per wall time (600: a virtual day in 2.4 minutes); unset runs as fast as
   * it can. The step stays the same, so the outputs do not depend on the speed.
   */
  speed?: number;
  /** Where the traffic is also captured, for replay. */
  capture?: CaptureWriter;
  onTurn?: (progress: LiveProgress) => void;
}

export async function runLive({
  sim,
  engine,
  stepMs,
  speed,
  capture,
  onTurn,
}: LiveOptions): Promise<LiveProgress> {
  const progress: LiveProgress = { processed: 0, commands: 0 };
  const began = performance.now();
  const read = new Map<string, number>();
  const batch: RawRecord[] = [];
  for (let until = sim.start + stepMs; sim.running; until += stepMs) {
    if (speed) {
      const due = began + (until - sim.start) / speed;
      if (due > performance.now()) await sleep(due - performance.now());
    }
    sim.generate(batch, Number.MAX_SAFE_INTEGER, until);
    // A turn is one piece of work on the engine: commands from the API wait for its end, so
    // the capture holds the records and the commands in the order the log got them.
    await engine.exclusive(async () => {
      await capture?.write(batch);
      await engine.ingest(batch.map(captureLine));
      batch.length = 0;
      progress.processed += await engine.process();
      for (const command of await engine.enforcementSince(read)) {
        sim.enforce(command);
        progress.commands++;
      }
    });
    onTurn?.(progress);
  }
  await capture?.close();
  await engine.finish();
  return progress;
}
