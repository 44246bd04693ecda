/**
 * The EventHubs sink as the stream registry sees it. The credentials schema lives beside this
 * file as config.schema.json and is imported as a JSON module: tsc copies it next to the
 * compiled index.js (dist/connectors/sinks/eventhubs/), so the same import works under vitest
 * (source) and from dist.
 */
import type { SinkFactory } from '../types.js';
import schema from './config.schema.json' with { type: 'json' };
import { type EventHubsCredentials, EventHubsSink } from './eventhubs-sink.js';

export type { EventHubsCredentials } from './eventhubs-sink.js';

export const eventHubsSink: SinkFactory<EventHubsCredentials> = {
  connectionType: 'EventHubs',
  credentialsSchema: schema,
  formats: ['Json'],
  // Masked whole; only its SharedAccessKey part is actually secret.
  secretFields: ['connection_string'],
  create: (destination, context) => new EventHubsSink(destination.credentials, context),
};
