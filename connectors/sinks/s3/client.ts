/**
 * Builds the S3 client of one stream: one attempt per call (the lane retries), the stream's
 * timeout on every request, and credentials from role_arn (as emnify does), static keys, or
 * the default AWS chain.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { SinkContext } from '../types.js';
import type { S3Credentials } from './config.js';

export function createS3Client(credentials: S3Credentials, context: SinkContext): S3Client {
  const endpoint = credentials.endpoint ? { endpoint: credentials.endpoint } : {};
  const common = {
    region: credentials.region,
    ...endpoint,
    maxAttempts: 1,
    requestHandler: requestHandler(context.timeoutMs),
  };
  const keys = staticKeys(credentials);
  const assumed = credentials.role_arn
    ? fromTemporaryCredentials({
        params: {
          RoleArn: credentials.role_arn,
          // emnify's trust-policy condition: customers allow sts:ExternalId = org-<organisation id>.
          ExternalId: `org-${context.organisationId}`,
          RoleSessionName: `data-streamer-org-${context.organisationId}`,
        },
        ...(keys ? { masterCredentials: keys } : {}),
        // STS shares the endpoint: MinIO and moto serve AssumeRole beside S3.
        clientConfig: { ...common, requestHandler: requestHandler(context.timeoutMs) },
      })
    : undefined;
  const chosen = assumed ?? keys;
  return new S3Client({
    ...common,
    // Custom endpoints (MinIO, moto) have no per-bucket DNS names.
    forcePathStyle: Boolean(credentials.endpoint),
    ...(chosen ? { credentials: chosen } : {}),
  });
}

/** Whether the credentials are fixed in the config (they cannot refresh when they expire). */
export function usesStaticKeys(credentials: S3Credentials): boolean {
  return staticKeys(credentials) !== undefined && !credentials.role_arn;
}

interface StaticKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

function staticKeys(credentials: S3Credentials): StaticKeys | undefined {
  if (!credentials.access_key_id || !credentials.secret_access_key) return undefined;
  return {
    accessKeyId: credentials.access_key_id,
    secretAccessKey: credentials.secret_access_key,
    ...(credentials.session_token ? { sessionToken: credentials.session_token } : {}),
  };
}

function requestHandler(timeoutMs: number): NodeHttpHandler {
  // requestTimeout only logs a warning unless throwOnRequestTimeout is set.
  return new NodeHttpHandler({
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    throwOnRequestTimeout: true,
  });
}
