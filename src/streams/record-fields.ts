/**
 * The few fields a lane needs of an output record, read from its text without parsing all
 * of it when the engine wrote it (core/output.ts: compact, `id` first, then the envelope
 * keys in a fixed order; the first occurrence of each key is the top-level one, since a key
 * inside a string value is escaped as \"key\"). Any other text is parsed whole.
 */
const ENGINE_WRITTEN = /^\{"id":(\d+),/;
// A number is taken only with what ends it, so a text cut short never yields part of one.
const ORGANISATION = /"organisation":\{"id":(\d+)[,}]/;
const EVENT_TYPE = /"event_type":\{"id":(\d+)[,}]/;
const ALERT = /"alert":(true|false)/;

/** Bytes of a record's start that hold its envelope up to the organisation (events, usage). */
const HEAD_BYTES = 768;

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

/**
 * The same fields from the record's bytes, decoding only its head: the engine writes `id`
 * first and `alert` and `event_type` before `organisation`, so once the organisation is
 * found, what was not found before it is not in the record. Undefined when the head does
 * not settle it (not written by the engine, or a long head): use fieldsOf on the text.
 */
export function fieldsOfBytes(value: Buffer): RecordFields | undefined {
  // latin1: one character per byte, and the bytes of a multi-byte UTF-8 character are never ASCII.
  const head = value.toString('latin1', 0, Math.min(value.length, HEAD_BYTES));
  const id = ENGINE_WRITTEN.exec(head)?.[1];
  if (id === undefined) return undefined;
  const organisation = ORGANISATION.exec(head);
  if (!organisation) return undefined;
  const before = head.slice(0, organisation.index);
  const type = EVENT_TYPE.exec(before)?.[1];
  return {
    id: Number(id),
    organisationId: Number(organisation[1]),
    eventTypeId: type === undefined ? undefined : Number(type),
    alert: ALERT.exec(before)?.[1] === 'true',
  };
}
