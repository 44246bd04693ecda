/**
 * Turns a PubSub destination's credentials into the Pub/Sub client's options. Pure: no
 * I/O, so a bad key is reported before anything connects.
 */
import type { ClientConfig } from '@google-cloud/pubsub';
import { DeliveryError } from '../types.js';

/** `destination.credentials` of a PubSub stream (config.schema.json). */
export interface PubSubCredentials {
  cps_project: string;
  cps_topic: string;
  /** Service-account key JSON; without it, Application Default Credentials. */
  credentials_json?: string;
  /** host:port of an emulator: plain-text gRPC, no auth. */
  api_endpoint?: string;
}

export function clientConfig(credentials: PubSubCredentials): ClientConfig {
  const config: ClientConfig = { projectId: credentials.cps_project };
  if (credentials.api_endpoint) {
    // emulatorMode makes the client use insecure channel credentials and skip auth,
    // whatever the host is called (a docker-compose service name, not just localhost).
    return { ...config, apiEndpoint: credentials.api_endpoint, emulatorMode: true };
  }
  if (credentials.credentials_json !== undefined)
    return { ...config, credentials: parseServiceAccountKey(credentials.credentials_json) };
  return config;
}

type ServiceAccountKey = NonNullable<ClientConfig['credentials']>;

/** Never echoes the key's text: it holds a private key. */
function parseServiceAccountKey(text: string): ServiceAccountKey {
  let key: unknown;
  try {
    key = JSON.parse(text);
  } catch {
    throw invalidKey('it is not valid JSON');
  }
  if (typeof key !== 'object' || key === null || Array.isArray(key))
    throw invalidKey('it is not a JSON object');
  const { type } = key as { type?: unknown };
  if (typeof type !== 'string') throw invalidKey('it has no "type" field');
  // Keys other than service accounts (external_account for workload identity federation,
  // authorized_user) are credentials JSON too; google-auth-library knows them all.
  if (type === 'service_account') {
    const { client_email, private_key } = key as { client_email?: unknown; private_key?: unknown };
    if (typeof client_email !== 'string' || typeof private_key !== 'string')
      throw invalidKey('a service_account key needs "client_email" and "private_key"');
  }
  return key as ServiceAccountKey;
}

function invalidKey(why: string): DeliveryError {
  return new DeliveryError(
    'SINK_PUBSUB_CREDENTIALS_INVALID',
    `Pub/Sub credentials_json is unusable: ${why}`,
    'permanent',
  );
}
