/**
 * The few fields a lane needs of an output record, read from its text without parsing all
 * of it when the engine wrote it (core/output.ts: compact, `id` first, then the envelope
 * keys in a fixed order; the first occurrence of each key is the top-level one, since a key
 * inside a string value is escaped as \"key\"). Any other text is parsed whole.
 */
const ENGINE_WRITTEN = /^\{"id":(\d+),/;
const ORGANISATION = /"organisation":\{"id":(\d+)/;
const EVENT_TYPE = /"event_type":\{"id":(\d+)/;
const ALERT = /"alert":(true|false)/;

export interface RecordFields {
  id: number;
  organisationId: number | undefined;
  eventTypeId: number | undefined;
  alert: boolean;
}

export function fieldsOf(json: string): RecordFields {
  const id = ENGINE_WRITTEN.exec(json)?.[1];
  const organisation = id === undefined ? undefined : ORGANISATION.exec(json)?.[1];
  if (id !== undefined && organisation !== undefined) {
    const type = EVENT_TYPE.exec(json)?.[1];
    return {
      id: Number(id),
      organisationId: Number(organisation),
      eventTypeId: type === undefined ? undefined : Number(type),
      alert: ALERT.exec(json)?.[1] === 'true',
    };
  }
  const parsed = JSON.parse(json) as {
    id: number;
    organisation?: { id: number };
    event_type?: { id: number };
    alert?: boolean;
  };
  return {
    id: parsed.id,
    organisationId: parsed.organisation?.id,
    eventTypeId: parsed.event_type?.id,
    alert: parsed.alert === true,
  };
}
