/**
 * The SAS connection string of an Event Hubs destination, checked before the SDK sees it: the
 * SDK's own errors about a malformed string quote the whole string, key included.
 */
import { DeliveryError } from '../types.js';

export interface EventHubsTarget {
  /** `sb://<namespace host>[:port]/`, for messages. */
  endpoint: string;
  hub: string;
  /** Values that must never appear in a message: the key (and a pre-made signature). */
  secrets: string[];
}

/** Parses `Key=value;...` the way the SDK does (keys are case-sensitive) and finds the hub. */
export function parseConnectionString(connectionString: string, eventHubName?: string): EventHubsTarget {
  const fields = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (part.trim() === '') continue;
    if (at <= 0) throw configError('connection_string is not a list of Key=value pairs separated by ";"');
    fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const endpoint = fields.get('Endpoint');
  const secrets = [fields.get('SharedAccessKey'), fields.get('SharedAccessSignature')].filter(
    (value): value is string => !!value,
  );
  if (!endpoint || !/^sb:\/\/[^/;]+\/?$/.test(endpoint))
    throw configError('connection_string needs Endpoint=sb://<namespace>.servicebus.windows.net/');
  if (!fields.get('SharedAccessKeyName') || !fields.get('SharedAccessKey'))
    throw configError('connection_string needs SharedAccessKeyName and SharedAccessKey');

  const entityPath = fields.get('EntityPath');
  if (entityPath && eventHubName && entityPath !== eventHubName)
    throw configError(
      `event_hub_name "${eventHubName}" differs from the connection string's EntityPath "${entityPath}"`,
    );
  const hub = entityPath || eventHubName;
  if (!hub) throw configError('name the event hub: EntityPath in connection_string, or event_hub_name');
  return { endpoint: endpoint.endsWith('/') ? endpoint : `${endpoint}/`, hub, secrets };
}

/** Removes every secret from a text (SDK messages can quote a connection string or a token). */
export function redact(text: string, secrets: string[]): string {
  let clean = text;
  for (const secret of secrets) clean = clean.split(secret).join('***');
  // A SAS token's signature is derived from the key: as secret as the key itself.
  return clean
    .replace(/(SharedAccessKey=)[^;"'\s]*/g, '$1***')
    .replace(/(SharedAccessSignature=)[^;"'\s]*/g, '$1***')
    .replace(/([?&\s]sig=)[^&"'\s]*/g, '$1***');
}

function configError(what: string): DeliveryError {
  return new DeliveryError('SINK_EVENTHUBS_CONFIG', `Event Hubs destination: ${what}`, 'permanent');
}
