/**
 * Runs the organisation stage (src/core/organisation-stage.ts) over the usage topic. The
 * partitions are merged head by head in (end time, id) order, and the merge only moves on
 * while every partition has a record waiting (or at the end of a replay, when nothing more
 * can come): the order, and so every output and its id, is the same however the work was
 * split and wherever a crash interrupted it. Commit order as in the processor: outputs,
 * then a snapshot holding the stage's state and its cursors.
 *
 * A live engine cannot wait that way: a partition whose devices use no data (or that has
 * no devices) would hold every organisation's cost limit for ever. Given `idleMs`, a
 * partition that has had nothing waiting for that long (wall clock) is left out of the
 * merge until its next record, which is merged when it comes. Live order then depends on
 * timing; replays, which do not set it, stay deterministic.
 */
import { join } from 'node:path';
import { parseDecimal } from '../core/decimal.js';
import {
  OrganisationStage,
  type OrganisationStageOutputs,
  type StageUsage,
} from '../core/organisation-stage.js';
import { CURRENCIES, usageFromJson } from '../core/output.js';
import { readUsageFacts } from '../core/output-facts.js';
import { eventBytes } from '../core/output-json.js';
import type { LogRecord, Topic } from '../log/types.js';
import type { Directory } from '../reference/directory.js';
import { readSnapshot, writeSnapshot } from './snapshot.js';

export const ORGANISATION_TOPICS = ['organisation-events', 'organisation-enforcement'] as const;
type OrgTopic = (typeof ORGANISATION_TOPICS)[number];

interface Snapshot {
  version: 1;
  /** Next usage offset to read, per usage partition. */
  cursors: number[];
  /** Usage records merged so far: the stage's input offset. */
  merged: number;
  spend: OrganisationStage['spend'];
  outputEnd: Record<OrgTopic, number>;
}

interface Head {
  partition: number;
  buffer: LogRecord[];
  time: number;
  id: number;
  /** Left out of this merge as idle (live engines): not read again until the next. */
  idle?: true;
}

const ID = /^\{"id":(\d+)/;
const ID_PREFIX = Buffer.from('{"id":');

/** The id a record's text starts with (0 if none), read from its first 40 bytes. */
function leadingId(value: Buffer): number {
  let at = 0;
  while (at < ID_PREFIX.length && value[at] === ID_PREFIX[at]) at++;
  if (at === ID_PREFIX.length) {
    let id = 0;
    for (; at < Math.min(value.length, 40); at++) {
      const digit = (value[at] as number) - 0x30;
      if (digit < 0 || digit > 9) break;
      id = id * 10 + digit;
    }
    // Up to 15 digits the sum is exact; longer ones are read as the text they are.
    if (at > ID_PREFIX.length && at - ID_PREFIX.length <= 15) return id;
  }
  return Number(ID.exec(value.toString('utf8', 0, 40))?.[1] ?? 0);
}

/**
 * What the stage needs of a usage record on the log: its organisation, currency, exact cost
 * and end time (the stage reads nothing else of `record`). Read by key without parsing
 * the whole text; a text that is not as usageBytes writes it is parsed in full.
 */
/** A currency the tariffs can have; anything else is a record the engine did not write. */
function currencyOf(code: string): StageUsage['currency'] {
  if (!Object.hasOwn(CURRENCIES, code))
    throw new Error(`usage record in unknown currency ${JSON.stringify(code)}`);
  return code as StageUsage['currency'];
}

function ratedOf(value: Buffer): StageUsage {
  const facts = readUsageFacts(value);
  if (!facts) {
    const usage = usageFromJson(value.toString('utf8'));
    return {
      record: usage,
      organisationId: usage.organisation.id,
      currency: currencyOf(usage.currency.code),
      cost: parseDecimal(usage.cost),
    };
  }
  return {
    record: { end_timestamp: facts.endTimestamp },
    organisationId: facts.organisationId,
    currency: currencyOf(facts.currency),
    cost: parseDecimal(facts.cost),
  };
}

export interface OrganisationIdle {
  /** How long a usage partition may have nothing waiting before the merge goes on without it. */
  idleMs: number;
  /** Wall clock, ms. */
  now: () => number;
}

export class OrganisationRunner {
  private stage: OrganisationStage;
  private cursors: number[];
  /** The cursors of the snapshot on disk: a restart reads the usage topic from them. */
  private snapshotted: number[];
  private merged = 0;
  /** Per usage partition: since when (wall clock) it has had nothing waiting. */
  private emptySince: (number | undefined)[];
  private skip: Record<OrgTopic, number> = { 'organisation-events': 0, 'organisation-enforcement': 0 };

  private constructor(
    dir: Directory,
    private readonly usage: Topic,
    private readonly outputs: Record<OrgTopic, Topic>,
    private readonly snapshotFile: string,
    private readonly idle: OrganisationIdle | undefined,
  ) {
    this.stage = new OrganisationStage(dir);
    this.cursors = new Array(usage.partitions).fill(0);
    this.snapshotted = [...this.cursors];
    this.emptySince = new Array(usage.partitions).fill(undefined);
  }

  static async open(
    dir: Directory,
    usage: Topic,
    outputs: Record<OrgTopic, Topic>,
    snapshotDir: string,
    idle?: OrganisationIdle,
  ): Promise<OrganisationRunner> {
    const runner = new OrganisationRunner(
      dir,
      usage,
      outputs,
      join(snapshotDir, 'organisation-stage.json'),
      idle,
    );
    const snapshot = await readSnapshot<Snapshot>(runner.snapshotFile);
    if (snapshot) {
      runner.cursors = snapshot.cursors;
      runner.snapshotted = [...snapshot.cursors];
      runner.merged = snapshot.merged;
      for (const [id, spend] of snapshot.spend) runner.stage.spend.set(id, spend);
    }
    for (const topic of ORGANISATION_TOPICS)
      runner.skip[topic] = (await outputs[topic].endOffset(0)) - (snapshot?.outputEnd[topic] ?? 0);
    return runner;
  }

  /** Usage records of the partition below this offset are in the snapshot on disk: retention may remove them. */
  durableCursor(partition: number): number {
    return this.snapshotted[partition] ?? 0;
  }

  /**
   * Merges the usage available now. With `final` (nothing more will arrive) it drains every
   * partition; otherwise it stops as soon as one partition has nothing waiting (and, given
   * `idle`, has not been idle that long).
   */
  async drain(final: boolean): Promise<number> {
    const heads: Head[] = [];
    for (let p = 0; p < this.usage.partitions; p++) heads.push({ partition: p, buffer: [], time: 0, id: 0 });
    const out: OrganisationStageOutputs = { events: [], enforcement: [] };
    let count = 0;
    for (;;) {
      let best: Head | undefined;
      let blocked = false;
      for (const head of heads) {
        if (head.idle) continue;
        if (head.buffer.length === 0 && !(await this.refill(head))) {
          if (final) continue;
          if (this.idleFor(head.partition)) head.idle = true;
          else blocked = true;
          continue;
        }
        if (!best || head.time < best.time || (head.time === best.time && head.id < best.id)) best = head;
      }
      if (!best || blocked) break;
      const record = best.buffer.shift() as LogRecord;
      this.cursors[best.partition] = record.offset + 1;
      if (best.buffer.length > 0) this.setHead(best);
      this.stage.apply(ratedOf(record.value), 0, this.merged++, out);
      count++;
      if (out.enforcement.length + out.events.length >= 10_000) await this.commit(out);
    }
    await this.commit(out);
    return count;
  }

  private async refill(head: Head): Promise<boolean> {
    head.buffer = await this.usage.read(head.partition, this.cursors[head.partition] as number, 1000);
    if (head.buffer.length === 0) return false;
    this.emptySince[head.partition] = undefined;
    this.setHead(head);
    return true;
  }

  /** Whether an empty partition has been empty long enough to be left out of a live merge. */
  private idleFor(partition: number): boolean {
    if (!this.idle) return false;
    const now = this.idle.now();
    const since = this.emptySince[partition] ?? now;
    this.emptySince[partition] = since;
    return now - since >= this.idle.idleMs;
  }

  private setHead(head: Head): void {
    const first = head.buffer[0] as LogRecord;
    head.time = first.timestamp;
    head.id = leadingId(first.value);
  }

  private async commit(out: OrganisationStageOutputs): Promise<void> {
    const values: Record<OrgTopic, { key: string | null; value: Buffer; timestamp: number }[]> = {
      'organisation-events': out.events.map((e) => ({
        key: String(e.organisation.id),
        value: eventBytes(e),
        timestamp: Date.parse(e.timestamp),
      })),
      'organisation-enforcement': out.enforcement.map((c) => ({
        key: String(c.endpoint_id),
        value: Buffer.from(JSON.stringify(c)),
        timestamp: c.timestamp,
      })),
    };
    for (const topic of ORGANISATION_TOPICS) {
      const skipped = Math.min(this.skip[topic], values[topic].length);
      this.skip[topic] -= skipped;
      const fresh = values[topic].slice(skipped);
      if (fresh.length > 0) await this.outputs[topic].append(0, fresh);
    }
    out.events.length = 0;
    out.enforcement.length = 0;
    const outputEnd = {} as Record<OrgTopic, number>;
    for (const topic of ORGANISATION_TOPICS)
      outputEnd[topic] = (await this.outputs[topic].endOffset(0)) - this.skip[topic];
    const cursors = [...this.cursors];
    await writeSnapshot(this.snapshotFile, {
      version: 1,
      cursors,
      merged: this.merged,
      spend: this.stage.spend,
      outputEnd,
    } satisfies Snapshot);
    this.snapshotted = cursors;
  }
}
