/**
 * Webhook sink: emnify's `RestAPI` connection type. The credentials schema is imported as
 * a JSON module, so it stays one file beside the connector: tsc copies it to
 * dist/connectors/sinks/webhook/ with the compiled code, and vitest reads it from source.
 */
import type { SinkFactory } from '../types.js';
import type { WebhookCredentials } from './config.js';
import schema from './config.schema.json' with { type: 'json' };
import { WebhookSink } from './sink.js';

export type { WebhookCredentials } from './config.js';
export { BATCH_HEADER, STREAM_HEADER } from './request.js';
export { SIGNATURE_HEADER } from './signature.js';

export const webhookSink: SinkFactory<WebhookCredentials> = {
  connectionType: 'RestAPI',
  credentialsSchema: schema,
  formats: ['Json'],
  secretFields: ['headers', 'signing_secret'],
  create: (destination, context) => new WebhookSink(destination, context),
};
