/**
 * What a data directory holds, read from the output log: records in, dead letters by
 * reason, events by type, usage records, and cost totals per currency summed exactly.
 * Events and usage records are read by key (output-facts.ts) rather than parsed whole; a
 * record not written the usual way is parsed as before.
 */
import { formatDecimal, parseDecimal } from '../core/decimal.js';
import { readEventType, readUsageFacts } from '../core/output-facts.js';
import { topicRecords } from '../log/read.js';
import type { EmbeddedEngine } from './engine.js';

export interface EngineSummary {
  records_in: number;
  /** Only when some: records in, but held by the clock guard until later records come. */
  held_back?: number;
  dead_letters: Record<string, number>;
  duplicates_skipped: number;
  events: Record<string, number>;
  usage_records: { data: number; sms: number };
  cost: Record<string, string>;
  enforcement_commands: number;
}

type TopicName = Parameters<EmbeddedEngine['outputTopic']>[0];

async function* values(engine: EmbeddedEngine, topic: TopicName): AsyncGenerator<Buffer> {
  for await (const record of topicRecords(engine.outputTopic(topic))) yield record.value;
}

async function count(engine: EmbeddedEngine, topic: TopicName): Promise<number> {
  let n = 0;
  for await (const _ of topicRecords(engine.outputTopic(topic))) n++;
  return n;
}

const COST = /"cost":(-?\d+(?:\.\d+)?)/;
const CURRENCY = /"currency":\{"id":\d+,"code":"([A-Z]{3})"/;
const TRAFFIC = /"traffic_type":\{"id":(\d+)/;

function eventKey(value: Buffer): string {
  const type =
    readEventType(value) ??
    (JSON.parse(value.toString('utf8')) as { event_type: { id: number; description: string } }).event_type;
  return `${type.id} ${type.description}`;
}

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
  let held = 0;
  for (const processor of engine.processors) {
    summary.records_in += processor.offset;
    summary.duplicates_skipped += processor.stats.duplicates;
    held += processor.heldBack;
  }
  if (held > 0) summary.held_back = held;
  for (const topic of ['organisation-events', 'events'] as const) {
    for await (const value of values(engine, topic)) {
      const key = eventKey(value);
      summary.events[key] = (summary.events[key] ?? 0) + 1;
    }
  }
  const totals = new Map<string, bigint>();
  for await (const value of values(engine, 'usage')) {
    const facts = readUsageFacts(value);
    let data: boolean;
    let currency: string;
    let cost: string;
    if (facts) {
      data = facts.trafficTypeId === 5;
      currency = /^[A-Z]{3}$/.test(facts.currency) ? facts.currency : '?';
      cost = facts.cost;
    } else {
      const json = value.toString('utf8');
      data = TRAFFIC.exec(json)?.[1] === '5';
      currency = CURRENCY.exec(json)?.[1] ?? '?';
      cost = COST.exec(json)?.[1] ?? '0';
    }
    if (data) summary.usage_records.data++;
    else summary.usage_records.sms++;
    totals.set(currency, (totals.get(currency) ?? 0n) + parseDecimal(cost));
  }
  for (const [currency, total] of [...totals].sort()) summary.cost[currency] = formatDecimal(total);
  for await (const value of values(engine, 'dead-letters')) {
    const code = (JSON.parse(value.toString('utf8')) as { reason_code: string }).reason_code;
    summary.dead_letters[code] = (summary.dead_letters[code] ?? 0) + 1;
  }
  summary.enforcement_commands =
    (await count(engine, 'organisation-enforcement')) + (await count(engine, 'enforcement'));
  summary.events = Object.fromEntries(
    Object.entries(summary.events).sort(([a], [b]) => Number.parseInt(a, 10) - Number.parseInt(b, 10)),
  );
  return summary;
}
