import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaptureHeader, CaptureTrailer } from '../capture/format.js';
import { CaptureWriter } from '../capture/writer.js';
import type { EnforcementCommand, RawRecord } from '../contracts/raw.js';
import { Directory } from '../reference/directory.js';
import type { ReferenceData } from '../reference/types.js';
import { VERSION } from '../util/version.js';
import { CoreSimulator, type SimulatorStats } from './simulator.js';

export interface SimulationOptions {
  reference: ReferenceData;
  seed: number | string;
  start: number;
  durationMs: number;
  /** Capture file (.ndjson, .ndjson.gz, .avro) or '-' for NDJSON on stdout. */
  out: string;
  /** Records per second of wall-clock time; unset runs as fast as possible. */
  rate?: number;
  enforcement?: EnforcementCommand[];
  lateCdrRate?: number;
  duplicateCdrRate?: number;
  /** Called after every batch with the simulator (for progress displays). */
  onProgress?: (sim: CoreSimulator, final: boolean) => void;
  /** Aborting stops at the next batch; the capture is closed properly with what was written. */
  signal?: AbortSignal;
}

export interface SimulationSummary {
  out: string;
  devices: number;
  start: string;
  end: string;
  completed: boolean;
  records: number;
  stats: SimulatorStats;
  trailer: CaptureTrailer;
  elapsedMs: number;
  recordsPerSecond: number;
}

export function referenceSha256(reference: ReferenceData): string {
  return createHash('sha256').update(JSON.stringify(reference)).digest('hex');
}

/** The capture header of a simulator run: its arguments and the reference data. */
export function simulationHeader(
  reference: ReferenceData,
  sim: CoreSimulator,
  run: { seed: number | string; durationMs: number; enforcement: number | 'from the engine' },
): CaptureHeader {
  return {
    format: 'data-streamer/capture',
    version: 1,
    created_by: `data-streamer ${VERSION} simulate`,
    source: {
      kind: 'simulator',
      seed: run.seed,
      devices: sim.deviceCount,
      duration_ms: run.durationMs,
      late_cdr_rate: sim.lateCdrRate,
      duplicate_cdr_rate: sim.duplicateCdrRate,
      enforcement_commands: run.enforcement,
    },
    start: new Date(sim.start).toISOString(),
    end: new Date(sim.end).toISOString(),
    reference_sha256: referenceSha256(reference),
    reference,
  };
}

/** Runs the core simulator over a fleet and writes what it produces to a capture file. */
export async function runSimulation(options: SimulationOptions): Promise<SimulationSummary> {
  const directory = new Directory(options.reference);
  const sim = new CoreSimulator({
    directory,
    seed: options.seed,
    start: options.start,
    durationMs: options.durationMs,
    ...(options.lateCdrRate !== undefined ? { lateCdrRate: options.lateCdrRate } : {}),
    ...(options.duplicateCdrRate !== undefined ? { duplicateCdrRate: options.duplicateCdrRate } : {}),
  });
  for (const command of options.enforcement ?? []) sim.enforce(command);
  const header = simulationHeader(options.reference, sim, {
    seed: options.seed,
    durationMs: options.durationMs,
    enforcement: options.enforcement?.length ?? 0,
  });
  const writer = CaptureWriter.open(options.out, header);
  const began = performance.now();
  const batchSize = options.rate ? Math.max(1, Math.min(4096, Math.floor(options.rate / 20))) : 4096;
  const batch: RawRecord[] = [];
  let more = true;
  while (more && !options.signal?.aborted) {
    more = sim.generate(batch, batchSize);
    await writer.write(batch);
    batch.length = 0;
    options.onProgress?.(sim, false);
    if (options.rate) {
      const due = (writer.records / options.rate) * 1000 - (performance.now() - began);
      if (due > 0) await sleep(due);
    }
  }
  const trailer = await writer.close();
  options.onProgress?.(sim, true);
  const elapsedMs = performance.now() - began;
  return {
    out: options.out,
    devices: directory.endpointCount,
    start: header.start,
    end: header.end,
    completed: !more,
    records: writer.records,
    stats: sim.stats,
    trailer,
    elapsedMs,
    recordsPerSecond: writer.records / Math.max(elapsedMs / 1000, 1e-9),
  };
}
