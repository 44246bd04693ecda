/**
 * Builds the Kinesis client of one stream: region, optional endpoint, credentials (static,
 * the environment's chain, or an assumed role), HTTP/1.1 and no SDK retries.
 */
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { SinkContext } from '../types.js';
import type { KinesisCredentials } from './credentials.js';

/** STS failed to hand out the role's credentials; kept apart so it is classified as such. */
export class AssumeRoleError extends Error {
  constructor(
    readonly roleArn: string,
    cause: unknown,
  ) {
    super(`cannot assume role ${roleArn}`, { cause });
    this.name = 'AssumeRoleError';
  }
}

export function createKinesisClient(credentials: KinesisCredentials, context: SinkContext): KinesisClient {
  // The SDK picks an HTTP/2 handler for Kinesis, which emulators do not speak; HTTP/1.1 is
  // fine for PutRecords. Without throwOnRequestTimeout, requestTimeout only logs a warning.
  const requestHandler = new NodeHttpHandler({
    connectionTimeout: context.timeoutMs,
    requestTimeout: context.timeoutMs,
    throwOnRequestTimeout: true,
  });
  const endpoint = credentials.endpoint ? { endpoint: credentials.endpoint } : {};
  return new KinesisClient({
    region: credentials.region,
    ...endpoint,
    requestHandler,
    // One write is one attempt: the lane retries with backoff.
    maxAttempts: 1,
    credentials: credentialsProvider(credentials, context, { ...endpoint, requestHandler }),
  });
}

/** Undefined means the SDK's default chain (environment, profile, container or instance role). */
function credentialsProvider(
  credentials: KinesisCredentials,
  context: SinkContext,
  stsConfig: { endpoint?: string; requestHandler: NodeHttpHandler },
): AwsCredentialIdentityProvider | AwsCredentialIdentity | undefined {
  const staticCredentials =
    credentials.access_key_id && credentials.secret_access_key
      ? {
          accessKeyId: credentials.access_key_id,
          secretAccessKey: credentials.secret_access_key,
          ...(credentials.session_token ? { sessionToken: credentials.session_token } : {}),
        }
      : undefined;
  const roleArn = credentials.role_arn;
  if (!roleArn) return staticCredentials;

  // emnify's trust model: the customer's role trusts the data streamer's identity with the
  // external id org-<organisation id>. The client caches the credentials until shortly
  // before they expire, then calls this again.
  const assume = fromTemporaryCredentials({
    params: {
      RoleArn: roleArn,
      RoleSessionName: `data-streamer-org-${context.organisationId}`,
      ExternalId: `org-${context.organisationId}`,
    },
    ...(staticCredentials ? { masterCredentials: staticCredentials } : {}),
    clientConfig: { region: credentials.region, maxAttempts: 1, ...stsConfig },
  });
  return async (properties) => {
    try {
      return await assume(properties);
    } catch (error) {
      throw new AssumeRoleError(roleArn, error);
    }
  };
}
