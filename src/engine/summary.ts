/**
 * What a data directory holds, read from the output log: records in, dead letters by
 * reason, events by type, usage records, and cost totals per currency summed exactly.
 */
import { formatDecimal, parseDecimal } from '../core/decimal.js';
import type { EmbeddedEngine } from './engine.js';
import { topicValues } from './topic-values.js';

export interface EngineSummary {
  records_in: number;
  dead_letters: Record<string, number>;
  duplicates_skipped: number;
  events: Record<string, number>;
  usage_records: { data: number; sms: number };
  cost: Record<string, string>;
  enforcement_commands: number;
}

const values = (engine: EmbeddedEngine, topic: Parameters<EmbeddedEngine['outputTopic']>[0]) =>
  topicValues(engine.outputTopic(topic));

const COST = /"cost":(-?\d+(?:\.\d+)?)/;
const CURRENCY = /"currency":\{"id":\d+,"code":"([A-Z]{3})"/;
const TRAFFIC = /"traffic_type":\{"id":(\d+)/;

export async function summarise(engine: EmbeddedEngine): Promise<EngineSummary> {
  const summary: EngineSummary = {
    records_in: 0,
    dead_letters: {},
    duplicates_skipped: 0,
    events: {},
    usage_records: { data: 0, sms: 0 },
    cost: {},
    enforcement_commands: 0,
  };
  for (const processor of engine.processors) {
    summary.records_in += processor.offset;
    summary.duplicates_skipped += processor.stats.duplicates;
  }
  for await (const json of values(engine, 'organisation-events')) {
    const event = JSON.parse(json) as { event_type: { id: number; description: string } };
    const key = `${event.event_type.id} ${event.event_type.description}`;
    summary.events[key] = (summary.events[key] ?? 0) + 1;
  }
  for await (const _ of values(engine, 'organisation-enforcement')) summary.enforcement_commands++;
  for await (const json of values(engine, 'events')) {
    const event = JSON.parse(json) as { event_type: { id: number; description: string } };
    const key = `${event.event_type.id} ${event.event_type.description}`;
    summary.events[key] = (summary.events[key] ?? 0) + 1;
  }
  const totals = new Map<string, bigint>();
  for await (const json of values(engine, 'usage')) {
    if (TRAFFIC.exec(json)?.[1] === '5') summary.usage_records.data++;
    else summary.usage_records.sms++;
    const currency = CURRENCY.exec(json)?.[1] ?? '?';
    totals.set(currency, (totals.get(currency) ?? 0n) + parseDecimal(COST.exec(json)?.[1] ?? '0'));
  }
  for (const [currency, total] of [...totals].sort()) summary.cost[currency] = formatDecimal(total);
  for await (const json of values(engine, 'dead-letters')) {
    const code = (JSON.parse(json) as { reason_code: string }).reason_code;
    summary.dead_letters[code] = (summary.dead_letters[code] ?? 0) + 1;
  }
  for await (const _ of values(engine, 'enforcement')) summary.enforcement_commands++;
  summary.events = Object.fromEntries(
    Object.entries(summary.events).sort(([a], [b]) => Number.parseInt(a, 10) - Number.parseInt(b, 10)),
  );
  return summary;
}
