/**
 * The simulated core in distributed mode: it produces its raw records onto the raw topic of
 * a running engine on Kafka, partitioned exactly as the engine's own ingest partitions a
 * capture, and it applies the enforcement commands the engine writes back. The closed loop
 * of src/engine/live.ts, across processes: the engine runs at its own pace, so a command
 * takes effect at the virtual time the core has reached when it reads it (or at the
 * command's own time if that is later), and two runs are only identical when no command
 * arrives. Read positions of the enforcement topics live in memory: a restarted simulator
 * starts again from the topics' ends, as a fresh core would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { captureLine } from '../capture/ndjson.js';
import { avroType } from '../contracts/avro.js';
import { type EnforcementCommand, eventTime, type RawRecord } from '../contracts/raw.js';
import { partitionOfLine } from '../engine/ingest.js';
import { engineTopics } from '../engine/topics.js';
import { type KafkaLog, openKafkaLog } from '../log/kafka/log.js';
import type { KafkaLogOptions } from '../log/kafka/options.js';
import { recordsFrom } from '../log/read.js';
import type { AppendRecord, Topic } from '../log/types.js';
import { Directory } from '../reference/directory.js';
import type { ReferenceData } from '../reference/types.js';
import { DataStreamerError } from '../util/errors.js';
import { CoreSimulator, type SimulatorStats } from './simulator.js';

/** The topic roles the simulator uses: it writes raw, it reads the two enforcement topics. */
export const SIMULATOR_ROLES = ['raw', 'enforcement', 'organisation-enforcement'] as const;

export interface SimulatorTopics {
  raw: Topic;
  /** Per-partition enforcement, then the organisation stage's (one partition). */
  enforcement: Topic[];
}

/**
 * Opens the engine's raw and enforcement topics. They must exist: the simulator never
 * creates them, since a topic created here with a guessed partition count would split
 * endpoints differently from the engine's. `partitions`, when given, must match the raw
 * topic's count; otherwise the topic's own count is used.
 */
export async function openSimulatorTopics(
  log: KafkaLog,
  prefix: string,
  partitions?: number,
): Promise<SimulatorTopics> {
  const names = Object.fromEntries(engineTopics(1, prefix).map((t) => [t.role, t.name])) as Record<
    string,
    string
  >;
  const wanted = SIMULATOR_ROLES.map((role) => names[role] as string);
  // Only looking: the log's topic() would create a missing topic.
  const counts = await log.existingTopics(wanted);
  const missing = wanted.filter((name) => !counts.has(name));
  if (missing.length > 0)
    throw new DataStreamerError(
      'SIMULATOR_TOPIC_MISSING',
      `topic${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found on Kafka at ${log.options.brokers.join(',')}: ` +
        `create the engine's topics first with \`data-streamer kafka init --config FILE\` (topic prefix "${prefix}")`,
    );
  const rawName = names.raw as string;
  const rawPartitions = counts.get(rawName) as number;
  if (partitions !== undefined && partitions !== rawPartitions)
    throw new DataStreamerError(
      'SIMULATOR_TOPIC_MISMATCH',
      `topic ${rawName} has ${rawPartitions} partitions, expected ${partitions} (--partitions, or partitions in the configuration)`,
    );
  const raw = await log.topic(rawName, rawPartitions);
  const enforcement: Topic[] = [];
  for (const role of ['enforcement', 'organisation-enforcement']) {
    const name = names[role] as string;
    enforcement.push(await log.topic(name, counts.get(name) as number));
  }
  return { raw, enforcement };
}

/**
 * Enforcement commands the engine appended since the reader opened: it starts at the end
 * offsets it sees then, and keeps its positions in memory.
 */
export class EnforcementReader {
  /** Records that are not valid enforcement commands; skipped, as a core ignores garbage. */
  invalid = 0;

  private constructor(
    private readonly topics: Topic[],
    private readonly positions: number[][],
  ) {}

  static async open(topics: Topic[]): Promise<EnforcementReader> {
    const positions: number[][] = [];
    for (const topic of topics) {
      const ends: number[] = [];
      for (let p = 0; p < topic.partitions; p++) ends.push(await topic.endOffset(p));
      positions.push(ends);
    }
    return new EnforcementReader(topics, positions);
  }

  /** Everything new on every partition, in event-time order (as the embedded engine hands them over). */
  async poll(): Promise<EnforcementCommand[]> {
    const type = avroType('enforcement-command');
    const commands: EnforcementCommand[] = [];
    for (const [t, topic] of this.topics.entries()) {
      const positions = this.positions[t] as number[];
      for (let p = 0; p < topic.partitions; p++) {
        for await (const record of recordsFrom(topic, p, positions[p] as number)) {
          const command = parseCommand(record.value);
          if (command && type.isValid(command)) commands.push(command as EnforcementCommand);
          else this.invalid++;
          positions[p] = record.offset + 1;
        }
      }
    }
    return commands.sort(
      (a, b) => a.timestamp - b.timestamp || (a.cause_event_id ?? 0) - (b.cause_event_id ?? 0),
    );
  }
}

function parseCommand(value: Buffer): unknown {
  try {
    return JSON.parse(value.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The record key on the raw topic: the endpoint id as text, null when the IMSI is not ours. */
export function endpointKey(raw: RawRecord, dir: Directory): string | null {
  if (raw.kind === 'command') return String(raw.record.endpoint_id);
  const ref = dir.resolveImsi(raw.kind === 'data_cdr' ? raw.record.servedIMSI : raw.record.imsi);
  return ref ? String(dir.endpointId(ref.index)) : null;
}

/** Wall time for pacing; tests inject one that does not wait. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const wallClock: Clock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

export interface KafkaProduceOptions {
  sim: CoreSimulator;
  directory: Directory;
  topics: SimulatorTopics;
  /** Raw records per second of wall time (as `simulate --rate`); unset: as fast as possible. */
  rate?: number;
  /** Virtual time per wall time (600: a virtual day in 2.4 minutes); unset: as fast as possible. */
  speed?: number;
  /** Records generated per step. Default 4,096, or rate / 20 when paced by rate (as simulate --out). */
  batchSize?: number;
  /** Wall time between two reads of the enforcement topics. Default 250 ms; 0 reads every step. */
  pollIntervalMs?: number;
  /** Steps whose appends may be under way at once (generation overlaps the broker's work). Default 4. */
  maxInFlight?: number;
  clock?: Clock;
  /** Aborting stops after the current step; what was generated is appended first. */
  signal?: AbortSignal;
  /** Called, and awaited, after every step. */
  onStep?: (progress: KafkaProduceProgress, sim: CoreSimulator) => void | Promise<void>;
}

export interface KafkaProduceProgress {
  /** Raw records generated and handed to the log (appended, or being appended). */
  records: number;
  /** Of those, acknowledged by the broker. */
  acknowledged: number;
  byPartition: number[];
  /** Enforcement commands read from the engine and handed to the core. */
  commands: number;
  /** Wall time since the start, ms. */
  elapsedMs: number;
}

export interface KafkaProduceSummary extends KafkaProduceProgress {
  topic: string;
  devices: number;
  start: string;
  end: string;
  /** False when stopped by the signal before the end of virtual time. */
  completed: boolean;
  recordsPerSecond: number;
  /** Records on the enforcement topics that were not valid commands (skipped). */
  invalidCommands: number;
  stats: SimulatorStats;
}

/**
 * Runs the simulator to its end (or the signal), appending each step's records to the raw
 * topic, one batch per partition, and handing new enforcement commands to the core between
 * steps. Resolves when every append is acknowledged; rejects on the first failed append.
 */
export async function produceToKafka(options: KafkaProduceOptions): Promise<KafkaProduceSummary> {
  const { sim, directory, topics, rate, speed } = options;
  const clock = options.clock ?? wallClock;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const maxInFlight = options.maxInFlight ?? 4;
  const batchSize = options.batchSize ?? (rate ? Math.max(1, Math.min(4096, Math.floor(rate / 20))) : 4096);
  const partitions = topics.raw.partitions;
  const reader = await EnforcementReader.open(topics.enforcement);

  const began = clock.now();
  const progress: KafkaProduceProgress = {
    records: 0,
    acknowledged: 0,
    byPartition: new Array<number>(partitions).fill(0),
    commands: 0,
    elapsedMs: 0,
  };
  const inFlight: Promise<void>[] = [];
  let failure: unknown;
  let lastPoll = Number.NEGATIVE_INFINITY;
  const batch: RawRecord[] = [];
  let more = true;

  while (more && !options.signal?.aborted) {
    if (failure) throw failure;
    if (clock.now() - lastPoll >= pollIntervalMs) {
      lastPoll = clock.now();
      for (const command of await reader.poll()) {
        sim.enforce(command);
        progress.commands++;
      }
    }
    const until = speed ? sim.start + (clock.now() - began) * speed : sim.end;
    more = sim.generate(batch, batchSize, Math.min(until, sim.end));
    const caughtUp = speed !== undefined && more && batch.length < batchSize;

    if (batch.length > 0) {
      const perPartition: AppendRecord[][] = Array.from({ length: partitions }, () => []);
      for (const raw of batch) {
        const line = captureLine(raw);
        // The engine's own partitioning rule, so each endpoint lands where the engine's ingest puts it.
        (perPartition[partitionOfLine(line, directory, partitions)] as AppendRecord[]).push({
          key: endpointKey(raw, directory),
          value: Buffer.from(line),
          timestamp: eventTime(raw),
        });
      }
      const appends: Promise<unknown>[] = [];
      for (const [p, records] of perPartition.entries()) {
        if (records.length === 0) continue;
        progress.byPartition[p] = (progress.byPartition[p] as number) + records.length;
        // The log appends one partition's batches in call order, so in-flight steps keep order.
        appends.push(topics.raw.append(p, records));
      }
      const count = batch.length;
      progress.records += count;
      inFlight.push(
        Promise.all(appends).then(
          () => {
            progress.acknowledged += count;
          },
          (error: unknown) => {
            failure ??= error;
          },
        ),
      );
      batch.length = 0;
      if (inFlight.length >= maxInFlight) await inFlight.shift();
    }

    progress.elapsedMs = clock.now() - began;
    await options.onStep?.(progress, sim);
    // Pacing as `simulate --rate`: the step's records are due at records / rate seconds.
    if (rate) {
      const due = (progress.records / rate) * 1000 - (clock.now() - began);
      if (due > 0) await clock.sleep(due);
    }
    // Paced by virtual time and level with the wall clock: wait for more virtual time to pass.
    if (caughtUp) await clock.sleep(Math.max(1, Math.min(pollIntervalMs, 50)));
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  progress.elapsedMs = clock.now() - began;
  return {
    ...progress,
    topic: topics.raw.name,
    devices: directory.endpointCount,
    start: new Date(sim.start).toISOString(),
    end: new Date(sim.end).toISOString(),
    completed: !more,
    recordsPerSecond: progress.records / Math.max(progress.elapsedMs / 1000, 1e-9),
    invalidCommands: reader.invalid,
    stats: sim.stats,
  };
}

export interface KafkaSimulationOptions
  extends Omit<KafkaProduceOptions, 'sim' | 'directory' | 'topics' | 'onStep'> {
  reference: ReferenceData;
  seed: number | string;
  start: number;
  durationMs: number;
  kafka: KafkaLogOptions;
  /** Prefix of the engine's topic names (engineTopics). */
  topicPrefix: string;
  /** Expected partitions of the raw topic; default: whatever it has. */
  partitions?: number;
  /** Commands the core applies at their timestamps, besides those the engine sends. */
  enforcement?: EnforcementCommand[];
  lateCdrRate?: number;
  duplicateCdrRate?: number;
  onStep?: (
    progress: KafkaProduceProgress,
    sim: CoreSimulator,
    topics: SimulatorTopics,
  ) => void | Promise<void>;
}

/** `simulate --kafka`: connects, checks the topics, runs the simulator onto them, disconnects. */
export async function runKafkaSimulation(options: KafkaSimulationOptions): Promise<KafkaProduceSummary> {
  const {
    reference,
    seed,
    start,
    durationMs,
    kafka,
    topicPrefix,
    partitions,
    enforcement,
    lateCdrRate,
    duplicateCdrRate,
    onStep,
    ...rest
  } = options;
  const directory = new Directory(reference);
  const sim = new CoreSimulator({
    directory,
    seed,
    start,
    durationMs,
    ...(lateCdrRate !== undefined ? { lateCdrRate } : {}),
    ...(duplicateCdrRate !== undefined ? { duplicateCdrRate } : {}),
  });
  for (const command of enforcement ?? []) sim.enforce(command);
  const log = await openKafkaLog(kafka);
  try {
    const topics = await openSimulatorTopics(log, topicPrefix, partitions);
    return await produceToKafka({
      ...rest,
      sim,
      directory,
      topics,
      ...(onStep ? { onStep: (progress, s) => onStep(progress, s, topics) } : {}),
    });
  } finally {
    await log.close();
  }
}
