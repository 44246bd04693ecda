/**
 * Google Cloud Pub/Sub sink (emnify connection_type `PubSub`).
 *
 * The credentials schema is imported as a JSON module: tsc copies config.schema.json next
 * to the compiled index.js (dist/connectors/sinks/pubsub/), so the same import works under
 * vitest (source) and from dist, with no path arithmetic.
 */
import type { SinkFactory } from '../types.js';
import type { PubSubCredentials } from './client-config.js';
import schema from './config.schema.json' with { type: 'json' };
import { PubSubSink } from './pubsub-sink.js';

export type { PubSubCredentials } from './client-config.js';

export const pubsubSink: SinkFactory<PubSubCredentials> = {
  connectionType: 'PubSub',
  credentialsSchema: schema,
  formats: ['Json'],
  secretFields: ['credentials_json'],
  create: (destination, context) => new PubSubSink(destination.credentials, context),
};
