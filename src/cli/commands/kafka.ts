import { type DataStreamerConfig, kafkaLogOptions, loadConfig } from '../../config/index.js';
import { engineTopics, type TopicLayout } from '../../engine/topics.js';
import { LogError } from '../../log/errors.js';
import { openKafkaLog } from '../../log/kafka/log.js';
import { UsageError } from '../../util/errors.js';
import { parse } from '../args.js';

export const KAFKA_HELP = `Usage: data-streamer kafka <init|topics> --config FILE

  kafka init --config FILE
      Creates the engine's topics on the configuration's Kafka (mode distributed): the
      raw topic and the per-partition output topics with \`partitions\` partitions, the
      organisation topics with one, all with kafka.replicationFactor and kafka.topicPrefix
      before each name, and no time-based retention (as the engine opens them). Topics that
      exist are left as they are; one with another partition count is an error. Prints one
      line per topic; safe to run again.
  kafka topics --config FILE
      Lists the engine's topics with their partition counts and end offsets per partition.
      Exits with 1 when one is missing or has another partition count.

Without --config, the configuration comes from the DATA_STREAMER_* variables alone
(docs/configuration.md); they override the file's values too.

Example:
  data-streamer kafka init --config deploy/distributed.yaml`;

export async function kafkaCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return help();
  if (sub !== 'init' && sub !== 'topics')
    throw new UsageError(`kafka: unknown subcommand "${sub}" (init or topics)`);
  const { values, positionals } = parse(rest, { config: { type: 'string' } }, `kafka ${sub}`);
  if (values.help) return help();
  if (positionals.length > 0)
    throw new UsageError(
      `kafka ${sub}: unexpected argument "${positionals[0]}" (see data-streamer kafka --help)`,
    );
  const config = loadConfig(values.config);
  return sub === 'init' ? init(config) : list(config);
}

const count = (partitions: number) => `${partitions} partition${partitions === 1 ? '' : 's'}`;

function help(): number {
  console.log(KAFKA_HELP);
  return 0;
}

async function init(config: DataStreamerConfig): Promise<number> {
  const options = kafkaLogOptions(config);
  const topics = engineTopics(config.partitions, config.kafka?.topicPrefix);
  // No retention by time, as the engine opens its topics (src/engine/engine.ts): records
  // carry event times, and a replayed or simulated day may be older than any retention.
  // Failures reach here as LogErrors; kafkajs's own log would only repeat them.
  const log = await openKafkaLog({ ...options, retentionMs: Number.POSITIVE_INFINITY, logLevel: 'nothing' });
  const mismatched: string[] = [];
  try {
    // Known before creating, only to say "created" or "exists": another init running at the
    // same time may make a line wrong, never the topics.
    const existing = await log.existingTopics(topics.map((t) => t.name));
    for (const topic of topics) {
      try {
        await log.topic(topic.name, topic.partitions);
      } catch (error) {
        if (!(error instanceof LogError) || error.code !== 'LOG_TOPIC_MISMATCH') throw error;
        console.log(`mismatch ${topic.name}: ${error.message}`);
        mismatched.push(topic.name);
        continue;
      }
      console.log(
        existing.has(topic.name)
          ? `exists   ${topic.name} (${count(topic.partitions)})`
          : `created  ${topic.name} (${count(topic.partitions)}, replication factor ${options.replicationFactor})`,
      );
    }
  } finally {
    await log.close();
  }
  if (mismatched.length > 0)
    throw new LogError(
      'LOG_TOPIC_MISMATCH',
      `${mismatched.join(', ')} ${mismatched.length === 1 ? 'has' : 'have'} another partition count than the configuration's ${config.partitions}: ` +
        'set partitions to what the topics have, or delete and recreate them (their records are lost). ' +
        'Kafka can add partitions but never remove them, and adding them moves endpoints to other partitions.',
    );
  return 0;
}

async function list(config: DataStreamerConfig): Promise<number> {
  kafkaLogOptions(config); // the mode check, with its message
  const topics = engineTopics(config.partitions, config.kafka?.topicPrefix);
  const log = await openKafkaLog({ ...kafkaLogOptions(config), logLevel: 'nothing' });
  const rows: { topic: TopicLayout; partitions?: number; ends?: number[] }[] = [];
  try {
    const existing = await log.existingTopics(topics.map((t) => t.name));
    for (const topic of topics) {
      const partitions = existing.get(topic.name);
      if (partitions === undefined) {
        rows.push({ topic });
        continue;
      }
      // Opened with the count it has, an existing topic is only read, never changed.
      const opened = await log.topic(topic.name, partitions);
      const ends: number[] = [];
      for (let p = 0; p < partitions; p++) ends.push(await opened.endOffset(p));
      rows.push({ topic, partitions, ends });
    }
  } finally {
    await log.close();
  }
  const width = Math.max(...topics.map((t) => t.name.length));
  let wrong = 0;
  for (const { topic, partitions, ends } of rows) {
    const name = topic.name.padEnd(width);
    if (partitions === undefined || ends === undefined) {
      console.log(`${name}  missing (expected ${count(topic.partitions)})`);
      wrong++;
      continue;
    }
    const note = partitions === topic.partitions ? '' : ` (expected ${topic.partitions})`;
    if (note) wrong++;
    const total = ends.reduce((sum, end) => sum + end, 0);
    console.log(
      `${name}  ${count(partitions)}${note}  end offsets ${ends.map((end, p) => `${p}:${end}`).join(' ')}  total ${total}`,
    );
  }
  if (wrong === 0) return 0;
  console.error(
    `${wrong} of ${topics.length} topics missing or with another partition count: run data-streamer kafka init with this configuration`,
  );
  return 1;
}
