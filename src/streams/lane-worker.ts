/**
 * The lanes' worker thread (started by WorkerLanes): an InProcessLanes over the engine's
 * output log as port-log.ts shows it, with the built-in sinks and the wall clock.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Tail } from '../log/embedded/partition.js';
import { PortRpc } from '../util/port-rpc.js';
import type { DataStream } from './config.js';
import { BatchDeadLetters } from './dead-letters.js';
import type { LaneBatching } from './lane.js';
import { InProcessLanes, type StreamSources } from './lanes.js';
import { PortCursors, PortTopic, SegmentFiles } from './port-log.js';
import { SINKS } from './sinks.js';
import type { LaneWorkerData } from './worker-lanes.js';

const data = workerData as LaneWorkerData;
const port = parentPort;
if (!port) throw new Error('lane-worker.ts runs as a worker thread (see worker-lanes.ts)');

const files = new SegmentFiles();
const topics = new Map<string, PortTopic>();

const rpc: PortRpc = new PortRpc(
  port,
  {
    start: ({ stream, batching }: { stream: DataStream; batching: LaneBatching }) =>
      lanes.start(stream, batching),
    stop: (id: string) => lanes.stop(id),
    caughtUp: (id: string) => lanes.caughtUp(id),
    metrics: (id: string) => lanes.metrics(id),
    forget: (id: string) => lanes.forget(id),
    close: async () => {
      await lanes.close();
      await files.close();
    },
  },
  { appended: ({ topic, tails }: { topic: string; tails: Tail[] }) => topics.get(topic)?.wake(tails) },
);

const topicOf = ({ name, partitions }: { name: string; partitions: number }) => {
  let topic = topics.get(name);
  if (!topic) {
    topic = new PortTopic(name, partitions, rpc, files);
    topics.set(name, topic);
  }
  return topic;
};
const sources: StreamSources = { usage: data.usage.map(topicOf), events: data.events.map(topicOf) };

// Calls come in only after this module has run, so the handlers above find `lanes` set.
const lanes: InProcessLanes = new InProcessLanes({
  sources,
  cursors: new PortCursors(rpc),
  sinks: SINKS,
  deadLetters: new BatchDeadLetters(data.deadLettersDir),
  ...data.settings,
  now: Date.now,
  onFailure: (id, failure) => rpc.notify('failed', { id, failure }),
});
