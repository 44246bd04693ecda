/**
 * The embedded engine: everything in one process under one data directory.
 *   <data-dir>/reference.json   the reference data the engine runs with
 *   <data-dir>/log/             raw input log and output topics (src/log)
 *   <data-dir>/snapshots/       per-partition state with the input offset it covers
 *   <data-dir>/clickhouse/      the embedded ClickHouse (chdb) with events, usage, rollups
 *   <data-dir>/store-intents/   the batch the ClickHouse writer is inserting (crash safety)
 * Processing is deterministic: partitions are stepped in a fixed order with fixed batch
 * sizes, so two replays of the same capture give the same outputs, byte for byte.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureLine } from '../capture/ndjson.js';
import type { EnforcementCommand, EngineCommand, RawRecord } from '../contracts/raw.js';
import type { Connectivity } from '../core/fold.js';
import type { Quota, QuotaService } from '../core/quota.js';
import { writeFileAtomic } from '../log/embedded/files.js';
import { openEmbeddedLog } from '../log/index.js';
import type { KafkaLogOptions } from '../log/kafka/options.js';
import { recordsFrom } from '../log/read.js';
import type { Log, Topic, TopicConfig } from '../log/types.js';
import { Directory } from '../reference/directory.js';
import { validateReferenceData } from '../reference/loader.js';
import type { ReferenceData } from '../reference/types.js';
import { openStore, type Store, type StoreOptions } from '../storage/index.js';
import { DataStreamerError } from '../util/errors.js';
import { captureLines, Ingestor, pacedChunks } from './ingest.js';
import { ORGANISATION_TOPICS, type OrganisationIdle, OrganisationRunner } from './organisation-runner.js';
import { OUTPUT_TOPICS, type OutputTopic, PartitionProcessor } from './processor.js';
import { type ShadowStoring, STORE_CURSOR_GROUP, StoreWriter } from './store-writer.js';

/** How long a live engine's organisation stage waits for a usage partition with nothing in it. */
export const LIVE_ORGANISATION_IDLE_MS = 1000;

/** The engine's topics by role (without the Kafka prefix). */
type EngineTopic = 'raw' | OutputTopic | (typeof ORGANISATION_TOPICS)[number];

/** The embedded log keeps records this long after they were written, at least: 7 days. */
export const DEFAULT_RETENTION_MS = 7 * 86_400_000;

/** Raw records processed between two rounds of ClickHouse inserts. */
const STORE_EVERY = 50_000;

export interface EngineOptions {
  dataDir: string;
  /** Partitions of a new data directory (an existing one keeps its own). Default 4. */
  partitions?: number;
  /** Raw records per processing step. */
  batchSize?: number;
  /** Raw records between snapshots of a partition. */
  snapshotEvery?: number;
  /**
   * A live engine: a usage partition with nothing waiting for this long (wall clock, ms)
   * no longer holds up the organisation stage (organisation-runner.ts). Default: it waits,
   * as a replay must to stay deterministic. The live commands use LIVE_ORGANISATION_IDLE_MS.
   */
  organisationIdleMs?: number;
  /**
   * How long the embedded log keeps records after they were written (wall clock, ms):
   * default DEFAULT_RETENTION_MS. Records the engine itself still needs (not yet folded
   * into a snapshot, stored in ClickHouse or merged by the organisation stage) are kept
   * however old; data streams and captures find what is left.
   */
  retentionMs?: number;
  /** Size of the embedded log's segment files (default 64 MiB): retention removes whole segments. */
  segmentBytes?: number;
  /**
   * Where the log lives: the embedded log under dataDir/log (default), or Kafka
   * (distributed mode), with the topic names of engineTopics(partitions, topicPrefix).
   */
  log?: { kind: 'embedded' } | { kind: 'kafka'; options: KafkaLogOptions; topicPrefix: string };
  /** Where the outputs are stored: chDB under dataDir/clickhouse (default), or a ClickHouse server. */
  store?: StoreOptions;
  /**
   * Distributed mode: process no partition until assign() names them (a member of a
   * consumer group gets its share). Default: every partition, from the start.
   */
  assigned?: boolean;
  /**
   * A shadow run into the store of a running engine (src/lab/shadow.ts): insert tokens and
   * dead-letter sources carry prefixes, and only aligned ranges are stored until the input
   * has ended. Default: none, the engine owns its store.
   */
  shadow?: ShadowStoring;
}

/**
 * The engine's log: embedded files (fsync 'always': the commit order, outputs durable then
 * the snapshot, must hold across power loss too, not only SIGKILL), or Kafka. The embedded
 * log's retention counts from when records were written and is held back for the engine's
 * own consumers (EmbeddedEngine.retentionFloor). On Kafka retention stays off for the
 * engine's topics: the broker would delete old event times (a replay) at once, and cannot
 * be held back for a consumer.
 */
async function openEngineLog(options: EngineOptions): Promise<{ log: Log; prefix: string }> {
  if (options.log?.kind === 'kafka') {
    const { openKafkaLog } = await import('../log/kafka/log.js');
    return {
      log: await openKafkaLog({ ...options.log.options, retentionMs: Number.POSITIVE_INFINITY }),
      prefix: options.log.topicPrefix,
    };
  }
  const log = await openEmbeddedLog({
    dir: join(options.dataDir, 'log'),
    fsync: 'always',
    retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS,
    // By when they were written: a replayed capture's event times may be months old.
    retentionClock: 'append',
    ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}),
  });
  return { log, prefix: '' };
}

export interface EndpointConnectivity {
  organisationId: number;
  status: Connectivity;
  operator: { id: number; name: string; mncs: string[]; country: string | null; mcc: string | null } | null;
  ratType: number | null;
  lac: number | null;
  cellId: number | null;
  /** Event time of the last record that changed it, ms; null when none was seen. */
  updated: number | null;
}

/** An organisation's devices as the fold last saw them: counts by connectivity and by visited country. */
export interface FleetSummary {
  devices: number;
  byStatus: Record<Connectivity, number>;
  /** Attached or Online devices per visited country (ISO 3166 alpha-2), most first. */
  byCountry: { iso: string; country: string; devices: number }[];
}

/** What the engine counts per stage, for /metrics. */
export interface StageCounts {
  /** Raw records and commands put on the input log since the engine was opened. */
  ingested: number;
  /** Input records folded since the engine was opened. */
  processed: number;
  /** Rows inserted into ClickHouse since the engine was opened. */
  storedRows: number;
  /** Records each output topic holds, by role: events, usage, enforcement, dead-letters, organisation stage. */
  outputs: Record<string, number>;
}

export interface EngineProgress {
  ingested: number;
  processed: number;
  lag: number;
  /** Event time of the latest capture line read so far, ms; null before the first. */
  virtualTime: number | null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class EmbeddedEngine {
  private constructor(
    readonly dataDir: string,
    readonly directory: Directory,
    readonly log: Log,
    readonly raw: Topic,
    readonly outputs: Record<OutputTopic, Topic>,
    readonly organisationOutputs: Record<(typeof ORGANISATION_TOPICS)[number], Topic>,
    /** The processors of the partitions this engine owns, by partition number. */
    readonly processors: PartitionProcessor[],
    /** The organisation stage runs beside partition 0 (one partition: one owner). */
    private organisations: OrganisationRunner | undefined,
    readonly store: Store,
    private readonly writer: StoreWriter,
    private readonly batchSize: number,
    private readonly snapshotEvery: number | undefined,
    private readonly organisationIdle: OrganisationIdle | undefined,
  ) {}

  private get snapshotDir(): string {
    return join(this.dataDir, 'snapshots');
  }

  /** The partition an endpoint's records are on (see ingest.ts), and its processor when owned here. */
  private processorOf(endpointIndex: number): PartitionProcessor | undefined {
    const partition = endpointIndex % this.raw.partitions;
    return this.processors.find((p) => p.partition === partition);
  }

  /** Whether this engine owns a partition of an output topic (per-partition topics follow the raw partition; the organisation topics partition 0). */
  private owns(topic: Topic, partition: number): boolean {
    if (Object.values(this.organisationOutputs).includes(topic)) return this.organisations !== undefined;
    return this.processors.some((p) => p.partition === partition);
  }

  /**
   * Takes the partitions of a consumer group's assignment: the ones given up are
   * snapshotted and stored first (their next owner starts where this one stopped), the new
   * ones restored from their latest snapshot, whichever member wrote it.
   */
  async assign(partitions: readonly number[]): Promise<void> {
    const wanted = new Set(partitions);
    for (const processor of [...this.processors]) {
      if (wanted.has(processor.partition)) continue;
      await processor.snapshot();
      this.processors.splice(this.processors.indexOf(processor), 1);
    }
    for (const partition of [...wanted].sort((a, b) => a - b)) {
      if (
        partition < 0 ||
        partition >= this.raw.partitions ||
        this.processors.some((p) => p.partition === partition)
      )
        continue;
      this.processors.push(
        await PartitionProcessor.open(
          partition,
          this.directory,
          this.raw,
          this.outputs,
          this.snapshotDir,
          this.snapshotEvery,
        ),
      );
    }
    this.processors.sort((a, b) => a.partition - b.partition);
    if (wanted.has(0) && !this.organisations)
      this.organisations = await OrganisationRunner.open(
        this.directory,
        this.outputs.usage,
        this.organisationOutputs,
        this.snapshotDir,
        this.organisationIdle,
      );
    if (!wanted.has(0)) this.organisations = undefined;
  }

  /**
   * Opens (or creates) a data directory. A new directory takes `reference`; an existing
   * one must be given the same reference data it was created with, or none.
   */
  static async open(options: EngineOptions, reference?: ReferenceData): Promise<EmbeddedEngine> {
    const { dataDir } = options;
    mkdirSync(dataDir, { recursive: true });
    const referenceFile = join(dataDir, 'reference.json');
    let data: ReferenceData;
    if (existsSync(referenceFile)) {
      const text = readFileSync(referenceFile, 'utf8');
      data = validateReferenceData(JSON.parse(text), referenceFile);
      if (reference && sha256(JSON.stringify(reference)) !== sha256(JSON.stringify(data))) {
        throw new DataStreamerError(
          'DATA_DIR_REFERENCE_MISMATCH',
          `${dataDir} holds data for other reference data than this capture's; use a fresh --data-dir`,
        );
      }
    } else {
      if (!reference)
        throw new DataStreamerError(
          'DATA_DIR_EMPTY',
          `${dataDir} holds no data yet; replay a capture into it first`,
        );
      data = reference;
      // Atomic: replicas of the distributed mode may share this directory and open it at once.
      await writeFileAtomic(referenceFile, JSON.stringify(reference));
    }
    const configFile = join(dataDir, 'engine.json');
    const partitions = existsSync(configFile)
      ? (JSON.parse(readFileSync(configFile, 'utf8')) as { partitions: number }).partitions
      : (options.partitions ?? 4);
    if (!existsSync(configFile)) await writeFileAtomic(configFile, JSON.stringify({ partitions }));

    const directory = new Directory(data);
    const { log, prefix } = await openEngineLog(options);
    let engine: EmbeddedEngine | undefined;
    // Until the engine is built, its consumers' positions are unknown: nothing goes.
    const held = (role: EngineTopic): TopicConfig =>
      options.log?.kind === 'kafka'
        ? {}
        : { retentionFloor: async (p) => (engine ? engine.retentionFloor(role, p) : 0) };
    const raw = await log.topic(`${prefix}raw`, partitions, held('raw'));
    const outputs = {} as Record<OutputTopic, Topic>;
    for (const topic of OUTPUT_TOPICS)
      outputs[topic] = await log.topic(`${prefix}${topic}`, partitions, held(topic));
    const processors: PartitionProcessor[] = [];
    for (let p = 0; p < (options.assigned ? 0 : partitions); p++) {
      processors.push(
        await PartitionProcessor.open(
          p,
          directory,
          raw,
          outputs,
          join(dataDir, 'snapshots'),
          options.snapshotEvery,
        ),
      );
    }
    const store = await openStore(
      options.store ?? { kind: 'embedded', dataDir: join(dataDir, 'clickhouse') },
    );
    await store.migrate();
    const organisationTopics = {} as Record<(typeof ORGANISATION_TOPICS)[number], Topic>;
    for (const topic of ORGANISATION_TOPICS)
      organisationTopics[topic] = await log.topic(`${prefix}${topic}`, 1, held(topic));
    const organisationIdle =
      options.organisationIdleMs === undefined
        ? undefined
        : { idleMs: options.organisationIdleMs, now: () => performance.now() };
    const organisations = options.assigned
      ? undefined
      : await OrganisationRunner.open(
          directory,
          outputs.usage,
          organisationTopics,
          join(dataDir, 'snapshots'),
          organisationIdle,
        );
    const writer = new StoreWriter(
      log,
      [
        { topic: outputs.events, kind: 'events' },
        { topic: organisationTopics['organisation-events'], kind: 'events' },
        { topic: outputs.usage, kind: 'usage' },
        { topic: outputs['dead-letters'], kind: 'dead-letters' },
      ],
      store,
      join(dataDir, 'store-intents'),
      // Only what this engine owns: two members never store one partition's range.
      (topic, partition) => engine?.owns(topic, partition) ?? false,
      undefined,
      options.shadow,
    );
    engine = new EmbeddedEngine(
      dataDir,
      directory,
      log,
      raw,
      outputs,
      organisationTopics,
      processors,
      organisations,
      store,
      writer,
      options.batchSize ?? 5_000,
      options.snapshotEvery,
      organisationIdle,
    );
    return engine;
  }

  /** Any output topic of the engine, by name. */
  outputTopic(name: OutputTopic | (typeof ORGANISATION_TOPICS)[number]): Topic {
    return name === 'organisation-events' || name === 'organisation-enforcement'
      ? this.organisationOutputs[name]
      : this.outputs[name];
  }

  /** Processes everything on the raw log, partition after partition in fixed steps. */
  async drain(onStep?: () => void): Promise<number> {
    let total = 0;
    for (;;) {
      let step = 0;
      for (const processor of this.processors) {
        const n = await processor.step(this.batchSize);
        step += n;
      }
      total += step;
      onStep?.();
      if (step === 0) return total;
    }
  }

  private ingestor: Ingestor | undefined;
  /** Since this engine was opened: for /metrics and the dashboard. */
  private readonly counters = { ingested: 0, storedRows: 0 };
  private processed = 0;
  private stored = 0;
  /** One ClickHouse round at a time runs beside the fold (chDB inserts off the main thread). */
  private storing: Promise<number> | undefined;

  private turn: Promise<unknown> = Promise.resolve();

  /**
   * Runs work on the engine after the work queued before it: the live loop's turns and the
   * API's commands take turns, so ingest and process never run twice at once.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.turn.then(work);
    this.turn = next.catch(() => undefined);
    return next;
  }

  /**
   * Commands from outside (the management API) on the raw log like any input, so a replay
   * reproduces them; processed, stored and snapshotted before this resolves. Answers the
   * commands the fold refused (dead-lettered), with the reason.
   */
  submit(
    commands: readonly EngineCommand[],
    capture?: { write(records: RawRecord[]): Promise<void> },
  ): Promise<{ command_id: string; reason: string }[]> {
    return this.exclusive(async () => {
      const deadLetters = this.outputs['dead-letters'];
      const before: number[] = [];
      for (let p = 0; p < deadLetters.partitions; p++) before.push(await deadLetters.endOffset(p));
      // A live run's capture gets them in the place they took on the log.
      await capture?.write(commands.map((record) => ({ kind: 'command', record })));
      await this.ingest(commands.map((record) => captureLine({ kind: 'command', record })));
      await this.process();
      await this.settle();
      const refused: { command_id: string; reason: string }[] = [];
      const ids = new Set(commands.map((c) => c.command_id));
      for (let p = 0; p < deadLetters.partitions; p++)
        for await (const record of recordsFrom(deadLetters, p, before[p] as number)) {
          const letter = JSON.parse(record.value.toString('utf8')) as { reason: string; payload: string };
          const id = /"command_id":"([^"]+)"/.exec(letter.payload)?.[1];
          if (id && ids.has(id)) refused.push({ command_id: id, reason: letter.reason });
        }
      return refused;
    });
  }

  /**
   * Puts new input on the raw log (live traffic, commands); returns how many lines went on.
   * Only replay() skips what the log already holds, as it may be resuming the same capture.
   */
  async ingest(lines: Iterable<string>): Promise<number> {
    this.ingestor ??= await Ingestor.open(this.raw, this.directory, { resume: false });
    for (const line of lines) this.ingestor.add(line);
    const n = await this.ingestor.flush();
    this.counters.ingested += n;
    return n;
  }

  /**
   * Processes what is on the raw log: the fold, the organisation merge as far as it can go,
   * and a ClickHouse round now and then. Returns the raw records processed.
   */
  async process(onStep?: () => void): Promise<number> {
    const n = await this.drain(onStep);
    this.processed += n;
    await this.organisations?.drain(false);
    // ClickHouse likes few large inserts: store in chunks of many processing steps.
    if (!this.storing && this.processed - this.stored >= STORE_EVERY) {
      this.stored = this.processed;
      this.storing = this.storeRound().finally(() => {
        this.storing = undefined;
      });
    }
    return n;
  }

  /** Everything processed so far stored and snapshotted (the input may go on). */
  async settle(): Promise<void> {
    await this.storing;
    await this.storeRound();
    await this.checkpoint();
  }

  /** The end of the input: the organisation merge finishes, everything is stored and snapshotted. */
  async finish(): Promise<void> {
    await this.organisations?.drain(true);
    // Outputs are durable on the log before they are stored: storage can always catch up.
    await this.storing;
    await this.storeRound();
    await this.checkpoint();
  }

  /** One ClickHouse round: what the output log holds and the store does not yet. */
  private async storeRound(): Promise<number> {
    const rows = await this.writer.drain();
    this.counters.storedRows += rows;
    return rows;
  }

  /**
   * Runs a capture through the engine to completion: ingest in chunks, process, snapshot.
   * Safe to repeat or resume: lines already on the raw log are not ingested again.
   */
  async replay(
    capture: string,
    onProgress?: (progress: EngineProgress) => void,
    options: {
      speed?: number;
      /** Only the lines this keeps go to the log (a shadow replay's organisations). */
      keep?: (line: string) => boolean;
    } = {},
  ): Promise<EngineProgress> {
    // A capture is counted from its first line: what the log already holds of it is skipped.
    const ingestor = await Ingestor.open(this.raw, this.directory);
    this.ingestor = ingestor;
    const progress: EngineProgress = { ingested: 0, processed: 0, lag: 0, virtualTime: null };
    const report = () => onProgress?.(progress);
    const run = async (chunk: string[]) => {
      progress.ingested += await this.ingest(chunk);
      progress.virtualTime = ingestor.latestTime;
      progress.processed += await this.process(report);
    };
    const size = this.batchSize * Math.max(1, this.processors.length);
    const lines = options.keep ? kept(captureLines(capture), options.keep) : captureLines(capture);
    for await (const chunk of pacedChunks(lines, size, options.speed)) await run(chunk);
    // What an earlier, interrupted run ingested but did not process.
    progress.processed += await this.process(report);
    await this.finish();
    report();
    return progress;
  }

  /** Enforcement commands written since `from` (per topic and partition), and where to read next time. */
  async enforcementSince(from: Map<string, number>): Promise<EnforcementCommand[]> {
    const commands: EnforcementCommand[] = [];
    for (const topic of [this.outputs.enforcement, this.organisationOutputs['organisation-enforcement']]) {
      for (let p = 0; p < topic.partitions; p++) {
        const key = `${topic.name}/${p}`;
        // Retention may have removed what a reader starting at 0 never read.
        const start = Math.max(from.get(key) ?? 0, await topic.startOffset(p));
        for await (const record of recordsFrom(topic, p, start)) {
          commands.push(JSON.parse(record.value.toString('utf8')) as EnforcementCommand);
          from.set(key, record.offset + 1);
        }
      }
    }
    // In event-time order, whichever topic they came from.
    return commands.sort(
      (a, b) => a.timestamp - b.timestamp || (a.cause_event_id ?? 0) - (b.cause_event_id ?? 0),
    );
  }

  /**
   * The lowest offset of one of the engine's topics that its own consumers still need
   * (TopicConfig.retentionFloor): raw records not yet in a partition's snapshot, outputs
   * the ClickHouse writer has not stored, usage records the organisation stage has not
   * merged into its snapshot. Enforcement commands have no consumer here that must see
   * them all: time alone decides.
   */
  async retentionFloor(role: EngineTopic, partition: number): Promise<number> {
    if (role === 'raw') return this.processors[partition]?.durableOffset ?? 0;
    if (role === 'enforcement' || role === 'organisation-enforcement') return Number.POSITIVE_INFINITY;
    const topic =
      role === 'organisation-events' ? this.organisationOutputs['organisation-events'] : this.outputs[role];
    let floor = (await this.log.cursors.get(STORE_CURSOR_GROUP, topic.name, partition)) ?? 0;
    if (role === 'usage') floor = Math.min(floor, this.organisations?.durableCursor(partition) ?? 0);
    return floor;
  }

  /** The output topics data streams read, by record type (organisation-level events included). */
  streamSources(): { usage: Topic[]; events: Topic[] } {
    return {
      usage: [this.outputs.usage],
      events: [this.outputs.events, this.organisationOutputs['organisation-events']],
    };
  }

  /**
   * An endpoint's connectivity as the fold last saw it (up to the last processed record),
   * with the organisation that owns it; undefined for an id the reference data does not know.
   */
  connectivityOf(endpointId: number): EndpointConnectivity | undefined {
    const index = this.directory.indexOfEndpointId(endpointId);
    if (index === undefined) return undefined;
    // The partition of an endpoint's records: its directory index modulo the partitions (see ingest.ts).
    const device = this.processorOf(index)?.state().devices.get(index);
    const operator =
      device?.operatorId == null
        ? undefined
        : this.directory.data.operators.find((o) => o.id === device.operatorId);
    const country = operator && this.directory.country(operator.country_id);
    return {
      organisationId: this.directory.endpoint(index).organisation_id,
      status: device?.connectivity ?? 'Offline',
      operator: operator
        ? {
            id: operator.id,
            name: operator.name,
            mncs: operator.mncs,
            country: country?.name ?? null,
            mcc: country?.mcc ?? null,
          }
        : null,
      ratType: device?.ratType ?? null,
      lac: device?.lac ?? null,
      cellId: device?.cellId ?? null,
      updated: device?.updated ?? null,
    };
  }

  /** An endpoint's data or SMS quota as the fold holds it, with its organisation; undefined for an unknown endpoint. */
  quotaOf(
    endpointId: number,
    service: QuotaService,
  ): { organisationId: number; quota: Quota | undefined } | undefined {
    const index = this.directory.indexOfEndpointId(endpointId);
    if (index === undefined) return undefined;
    const device = this.processorOf(index)?.state().devices.get(index);
    return {
      organisationId: this.directory.endpoint(index).organisation_id,
      quota: device?.quotas?.[service],
    };
  }

  /**
   * Counters per stage for /metrics: records put on the raw log and folded, and rows
   * stored, since this engine was opened; and the records each output topic holds.
   */
  async stageCounts(): Promise<StageCounts> {
    const outputs: Record<string, number> = {};
    // By role (events, usage...), whatever the topic's name on the log (a prefix on Kafka).
    for (const [role, topic] of Object.entries({ ...this.outputs, ...this.organisationOutputs })) {
      let n = 0;
      for (let p = 0; p < topic.partitions; p++) n += await topic.endOffset(p);
      outputs[role] = n;
    }
    return {
      ingested: this.counters.ingested,
      processed: this.processed,
      storedRows: this.counters.storedRows,
      outputs,
    };
  }

  /**
   * The engine's event time: the latest the fold has seen in any partition it owns, or
   * undefined before any. Commands from outside are stamped with it, so they land in the
   * engine's own timeline (a wall-clock stamp on an engine behind real time would move its
   * quota and month clocks on).
   */
  eventClock(): number | undefined {
    let latest: number | undefined;
    for (const processor of this.processors) {
      const watermark = processor.state().watermark;
      if (watermark > 0 && watermark > (latest ?? 0)) latest = watermark;
    }
    return latest;
  }

  /** Raw records processed since this engine was opened (for throughput readings). */
  get processedCount(): number {
    return this.processed;
  }

  /** Event time of the latest record ingested since this engine was opened, ms; null before the first. */
  get eventTime(): number | null {
    return this.ingestor?.latestTime ?? null;
  }

  /** Counts over an organisation's endpoints, by connectivity status and by visited country. */
  fleetOf(organisationId: number): FleetSummary {
    const byStatus: Record<Connectivity, number> = { Offline: 0, Attached: 0, Online: 0 };
    const countries = new Map<number, number>();
    const operators = new Map(this.directory.data.operators.map((o) => [o.id, o.country_id]));
    let devices = 0;
    const partitions = new Map(this.processors.map((p) => [p.partition, p.state().devices]));
    for (const { first, count } of this.directory.endpointRunsOf(organisationId)) {
      for (let index = first; index < first + count; index++) {
        devices++;
        const device = partitions.get(index % this.raw.partitions)?.get(index);
        const status = device?.connectivity ?? 'Offline';
        byStatus[status]++;
        const countryId =
          status === 'Offline' || device?.operatorId == null ? undefined : operators.get(device.operatorId);
        if (countryId !== undefined) countries.set(countryId, (countries.get(countryId) ?? 0) + 1);
      }
    }
    const byCountry = [...countries].flatMap(([id, n]) => {
      const country = this.directory.country(id);
      return country ? [{ iso: country.iso_code, country: country.name, devices: n }] : [];
    });
    byCountry.sort((a, b) => b.devices - a.devices || a.iso.localeCompare(b.iso));
    return { devices, byStatus, byCountry };
  }

  /** Snapshots every partition now. */
  async checkpoint(): Promise<void> {
    for (const processor of this.processors) await processor.snapshot();
  }

  async close(): Promise<void> {
    await this.store.close();
    await this.log.close();
  }
}

async function* kept(lines: AsyncIterable<string>, keep: (line: string) => boolean): AsyncGenerator<string> {
  for await (const line of lines) if (keep(line)) yield line;
}
