/**
 * The organisation stage: organisation totals span partitions, so usage records are
 * re-keyed by organisation and folded here (as a Kafka Streams aggregation would). It
 * keeps each organisation's cost of the month and enforces the monthly cost limit: event
 * 12 "Organisation blocked" and a block of every endpoint of the organisation, lifted on
 * the 1st. Ids come from this stage's own input position, in partitions 512 and up.
 */
import type { EnforcementCommand } from '../contracts/raw.js';
import type { Directory } from '../reference/directory.js';
import { buildEvent } from './events.js';
import type { RatedUsage } from './fold.js';
import { outputId } from './ids.js';
import { countOrganisationCost, monthOf, type OrganisationSpend } from './limits.js';
import type { EmnifyEvent, EmnifyUsageRecord } from './output.js';

/** What the stage reads of a rated usage record. */
export type StageUsage = Pick<RatedUsage, 'organisationId' | 'currency' | 'cost'> & {
  record: Pick<EmnifyUsageRecord, 'end_timestamp'>;
};

export const ORGANISATION_STAGE_PARTITION_BASE = 512;

export interface OrganisationStageOutputs {
  events: EmnifyEvent[];
  enforcement: EnforcementCommand[];
}

export class OrganisationStage {
  readonly spend = new Map<number, OrganisationSpend>();

  constructor(private readonly dir: Directory) {}

  /** Folds one usage record read at (stage partition, offset). */
  apply(usage: StageUsage, partition: number, offset: number, out: OrganisationStageOutputs): void {
    const organisation = this.dir.organisation(usage.organisationId);
    // Costs in another currency than the organisation's cannot be added without rates.
    if (!organisation || organisation.currency !== usage.currency) return;
    const t = Date.parse(usage.record.end_timestamp);
    let spend = this.spend.get(organisation.id);
    if (!spend) {
      spend = { month: monthOf(t), cost: 0n, blocked: false };
      this.spend.set(organisation.id, spend);
    }
    let sub = 0;
    for (const effect of countOrganisationCost(spend, organisation.monthly_cost_limit, usage.cost, t)) {
      const id = outputId(ORGANISATION_STAGE_PARTITION_BASE + partition, offset, sub++);
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
      if (!effect.enforce) continue;
      for (const run of this.dir.endpointRunsOf(organisation.id)) {
        for (let index = run.first; index < run.first + run.count; index++) {
          out.enforcement.push({
            command_id: `enf-${id}-${index}`,
            timestamp: t,
            action: effect.enforce.action,
            scope: 'ALL',
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
}
