/** `destination.credentials` of an AwsKinesis stream, as config.schema.json describes them. */
export interface KinesisCredentials {
  region: string;
  stream_name: string;
  role_arn?: string;
  endpoint?: string;
  access_key_id?: string;
  secret_access_key?: string;
  session_token?: string;
}

/** The fields whose values must never reach a message or a log line. */
export const KINESIS_SECRET_FIELDS = ['secret_access_key', 'session_token'] as const;

/** How messages name the destination: stream, region and a custom endpoint, never a credential. */
export function describeStream(credentials: KinesisCredentials): string {
  const where = credentials.endpoint
    ? `${credentials.region} at ${credentials.endpoint}`
    : credentials.region;
  return `Kinesis stream "${credentials.stream_name}" (${where})`;
}

/** The secret values of these credentials, for scrubbing text that came from elsewhere. */
export function secretValues(credentials: KinesisCredentials): string[] {
  return KINESIS_SECRET_FIELDS.map((field) => credentials[field]).filter(
    (value): value is string => typeof value === 'string' && value.length > 0,
  );
}
