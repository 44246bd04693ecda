import { startEngineApi } from '../../api/from-engine.js';
import { type DataStreamerConfig, kafkaLogOptions, loadConfig, storeOptions } from '../../config/index.js';
import { EmbeddedEngine, LIVE_ORGANISATION_IDLE_MS } from '../../engine/engine.js';
import { GroupMember } from '../../engine/group-member.js';
import { Rekeyer } from '../../engine/rekey.js';
import { loadReferenceData } from '../../reference/loader.js';
import { streamsOf } from '../../streams/beside-engine.js';
import { UsageError } from '../../util/errors.js';
import { parse } from '../args.js';

export const RUN_HELP = `Usage: data-streamer run --config FILE

Runs one engine replica of the distributed mode (docs/distributed.md): a member of the
Kafka consumer group over the raw topic that processes its share of the partitions,
stores to the ClickHouse server and serves the management API. Start as many replicas as
you like (up to the partitions); when one stops or dies, the others take its partitions
over from its snapshots. The configuration (docs/configuration.md) must be mode
distributed, with kafka, clickhouse and reference; run 'data-streamer kafka init' once
first. Environment variables override the file (DATA_STREAMER_API_PORT per replica...).
Stop with Ctrl+C (or SIGTERM): the replica stores, snapshots and leaves the group.`;

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string' } }, 'run');
  if (values.help) {
    console.log(RUN_HELP);
    return 0;
  }
  const config: DataStreamerConfig = loadConfig(values.config);
  if (config.mode !== 'distributed' || !config.kafka || !config.reference)
    throw new UsageError(
      `run: the configuration is mode ${config.mode}; run is the distributed engine (mode: distributed, with kafka, clickhouse and reference). The embedded engine runs with 'npm start', 'replay' and 'serve'.`,
    );
  const kafka = kafkaLogOptions(config);
  const engine = await EmbeddedEngine.open(
    {
      dataDir: config.dataDir,
      partitions: config.partitions,
      log: { kind: 'kafka', options: kafka, topicPrefix: config.kafka.topicPrefix },
      store: storeOptions(config),
      assigned: true,
      organisationIdleMs: LIVE_ORGANISATION_IDLE_MS,
    },
    loadReferenceData(config.reference),
  );
  // Every replica manages the shared stream configuration; the owner of raw partition 0
  // delivers (as it runs the organisation stage), and follows changes made elsewhere.
  const streams = streamsOf(engine, config.dataDir, { lanes: false });
  let member: GroupMember | undefined;
  let delivering = false;
  const report = (error: Error) => console.error(`data streams: ${error.message}`);
  const reconciling = setInterval(() => {
    if (delivering) void streams.reconcile().catch(report);
  }, 1000);
  try {
    const ingest = await engine.log.topic(`${config.kafka.topicPrefix}ingest`, config.partitions);
    member = await GroupMember.join({
      engine,
      kafka,
      groupId: config.kafka.consumerGroup,
      rekeyer: new Rekeyer(
        ingest,
        engine.raw,
        engine.directory,
        engine.log.cursors,
        `${config.kafka.consumerGroup}-rekey`,
      ),
      // Lanes stop as soon as a rebalance is announced: the next owner of partition 0 starts its own after the grace.
      onRebalance: () => {
        delivering = false;
        void streams.runLanes(false).catch(report);
      },
      onAssignment: (partitions) => {
        console.log(
          `${new Date().toISOString()} partitions of ${engine.raw.name}: ${partitions.join(', ') || 'none'}`,
        );
        delivering = partitions.includes(0);
        void streams.runLanes(delivering).catch(report);
      },
    });
    const api = await startEngineApi({
      engine,
      streams,
      dataDir: config.dataDir,
      port: config.api.port,
      host: config.api.host,
      now: Date.now,
      shareOfState: true,
    });
    api.setReady(true);
    console.log(`data-streamer replica: group ${config.kafka.consumerGroup}, API on ${api.address}`);
    try {
      // Until Ctrl+C or SIGTERM, or until the member lost the group for good (then exit non-zero: restart me).
      await Promise.race([
        new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        }),
        member.done,
      ]);
      return 0;
    } finally {
      api.setReady(false);
      await api.app.close();
    }
  } finally {
    clearInterval(reconciling);
    await member?.leave();
    await streams.close();
    await engine.close();
  }
}
