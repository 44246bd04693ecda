/**
 * The organisation stage: organisation totals span partitions, so usage records are
 * re-keyed by organisation and folded here (as a Kafka Streams aggregation would). It
 * keeps each organisation's cost of the month and enforces the monthly cost limit: event
 * 12 "Organisation blocked" and a block of every endpoint of the organisation, lifted at
 * 00:00 UTC on the 1st. Its commands are of level ORGANISATION: the core keeps them apart
 * from the endpoint's own (quota, limit) blocks, so lifting one never lifts the other.
 * Ids come from this stage's own input position, in partitions 512 and up.
 */
import type { EnforcementCommand } from '../contracts/raw.js';
import type { Directory } from '../reference/directory.js';
import { buildEvent } from './events.js';
import type { RatedUsage } from './fold.js';
import { outputId } from './ids.js';
import {
  countOrganisationCost,
  type LimitEffect,
  monthOf,
  nextMonthStart,
  type OrganisationSpend,
  startOrganisationMonth,
} from './limits.js';
import type { EmnifyEvent, EmnifyUsageRecord } from './output.js';

/** What the stage reads of a rated usage record. */
export type StageUsage = Pick<RatedUsage, 'organisationId' | 'currency' | 'cost'> & {
  record: Pick<EmnifyUsageRecord, 'end_timestamp'>;
};

export const ORGANISATION_STAGE_PARTITION_BASE = 512;

/**
 * Month resets handed out per input record: each takes an output id of that record (64 at
 * most), and the record's own effects need two more. The rest go with the next records.
 */
const RESETS_PER_RECORD = 48;

export interface OrganisationStageOutputs {
  events: EmnifyEvent[];
  enforcement: EnforcementCommand[];
}

export class OrganisationStage {
  readonly spend = new Map<number, OrganisationSpend>();
  /** The latest month of any usage merged: every organisation's month moves on with it. */
  #month: string | undefined;
  /** Blocked organisations whose month has ended, by id: lifted with the next records. */
  #ended: number[] = [];

  constructor(private readonly dir: Directory) {}

  /** Folds one usage record read at (stage partition, offset). */
  apply(usage: StageUsage, partition: number, offset: number, out: OrganisationStageOutputs): void {
    const t = Date.parse(usage.record.end_timestamp);
    // After a restart the state says where the stage was.
    const before = this.#month ?? this.#latestMonth();
    const month = before === undefined || monthOf(t) > before ? monthOf(t) : before;
    if (month !== this.#month) {
      this.#month = month;
      // A record of a later month ends the month for every organisation. The blocked ones
      // are lifted now: a block of all their endpoints may keep their own usage from coming.
      this.#ended = [];
      for (const [id, spend] of this.spend) if (spend.blocked && spend.month < month) this.#ended.push(id);
      this.#ended.sort((a, b) => a - b);
    }
    let sub = 0;
    while (this.#ended.length > 0 && sub < RESETS_PER_RECORD) {
      const id = this.#ended.shift() as number;
      sub += this.#startMonth(id, this.spend.get(id) as OrganisationSpend, partition, offset, sub, out);
    }
    const organisation = this.dir.organisation(usage.organisationId);
    // Costs in another currency than the organisation's cannot be added without rates.
    if (!organisation || organisation.currency !== usage.currency) return;
    let spend = this.spend.get(organisation.id);
    if (!spend) {
      spend = { month, cost: 0n, blocked: false };
      this.spend.set(organisation.id, spend);
    }
    if (spend.month < month) {
      // Still waiting in #ended, or not blocked: its month starts before this record counts.
      this.#ended = this.#ended.filter((id) => id !== organisation.id);
      sub += this.#startMonth(organisation.id, spend, partition, offset, sub, out);
    }
    // A late record of a month that has ended is not counted (countOrganisationCost).
    for (const effect of countOrganisationCost(spend, organisation.monthly_cost_limit, usage.cost, t))
      this.#emit(organisation.id, effect, t, partition, offset, sub++, out);
  }

  /** The latest month of any organisation's spend, or undefined without any. */
  #latestMonth(): string | undefined {
    let latest: string | undefined;
    for (const spend of this.spend.values())
      if (latest === undefined || spend.month > latest) latest = spend.month;
    return latest;
  }

  /** Moves an organisation on to the stage's month; a block is lifted as of 00:00 UTC on the 1st. */
  #startMonth(
    organisationId: number,
    spend: OrganisationSpend,
    partition: number,
    offset: number,
    sub: number,
    out: OrganisationStageOutputs,
  ): number {
    const at = nextMonthStart(spend.month);
    const effects = startOrganisationMonth(spend, monthOf(at));
    // After a month without usage it goes on to the stage's month, still at zero.
    spend.month = this.#month as string;
    for (const [i, effect] of effects.entries())
      this.#emit(organisationId, effect, at, partition, offset, sub + i, out);
    return effects.length;
  }

  #emit(
    organisationId: number,
    effect: LimitEffect,
    t: number,
    partition: number,
    offset: number,
    sub: number,
    out: OrganisationStageOutputs,
  ): void {
    const organisation = this.dir.organisation(organisationId);
    if (!organisation) return;
    const id = outputId(ORGANISATION_STAGE_PARTITION_BASE + partition, offset, sub);
    const blocking = effect.enforce?.action === 'BLOCK';
    out.events.push(
      buildEvent({
        id,
        time: t,
        type: effect.event,
        source: 'POLICY_CONTROL',
        severity: blocking ? 'WARN' : 'INFO',
        alert: blocking,
        description: effect.description,
        subject: {
          organisation: { id: organisation.id, name: organisation.name },
          endpoint: null,
          sim: null,
          imsi: null,
        },
      }),
    );
    if (!effect.enforce) return;
    for (const run of this.dir.endpointRunsOf(organisation.id)) {
      for (let index = run.first; index < run.first + run.count; index++) {
        out.enforcement.push({
          command_id: `enf-${id}-${index}`,
          timestamp: t,
          action: effect.enforce.action,
          scope: 'ALL',
          level: 'ORGANISATION',
          endpoint_id: this.dir.endpointId(index),
          imsis: this.dir.sim(index).imsis.map((i) => i.imsi),
          peak_throughput: null,
          reason: effect.enforce.reason,
          cause_event_id: id,
        });
      }
    }
  }
}
