/** The sinks a data stream can deliver to, by emnify connection_type. */

import { eventHubsSink } from '../../connectors/sinks/eventhubs/index.js';
import { kinesisSink } from '../../connectors/sinks/kinesis/index.js';
import { pubsubSink } from '../../connectors/sinks/pubsub/index.js';
import { s3Sink } from '../../connectors/sinks/s3/index.js';
import type { SinkFactory } from '../../connectors/sinks/types.js';
import { webhookSink } from '../../connectors/sinks/webhook/index.js';

// Each factory is typed by its own credentials; the registry hands them validated credentials.
const all = [webhookSink, s3Sink, kinesisSink, pubsubSink, eventHubsSink] as unknown as SinkFactory[];

export const SINKS: ReadonlyMap<string, SinkFactory> = new Map(all.map((f) => [f.connectionType, f]));
