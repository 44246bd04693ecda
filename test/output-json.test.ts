/**
 * The specialised writers (src/core/output-json.ts) against the generic path they replace,
 * Buffer.from(toJson(record)), byte for byte: every output of the fold and of the
 * organisation stage over the regression captures, then records with odd values. Also the
 * readers of src/core/output-facts.ts against JSON.parse, and the faster isoTime and
 * decimal formatting against the code they replaced.
 */
import { describe, expect, it } from 'vitest';
import { CAPTURES, capturePath } from '../replay/regression.js';
import { openCapture } from '../src/capture/reader.js';
import { divideHalfUp, formatDecimal, formatFixed, parseDecimal } from '../src/core/decimal.js';
import { isoMonth, isoTime } from '../src/core/events.js';
import { emptyOutputs, type FoldOutputs, PartitionFold } from '../src/core/fold.js';
import { OrganisationStage, type OrganisationStageOutputs } from '../src/core/organisation-stage.js';
import { type EmnifyEvent, type EmnifyUsageRecord, toJson, usageFromJson } from '../src/core/output.js';
import { readEventType, readUsageFacts } from '../src/core/output-facts.js';
import { eventBytes, usageBytes } from '../src/core/output-json.js';
import { decodeRaw } from '../src/engine/decode.js';
import { captureLines } from '../src/engine/ingest.js';
import { Directory } from '../src/reference/directory.js';

const generic = (record: EmnifyEvent | EmnifyUsageRecord) => Buffer.from(toJson(record));

function expectSameEvent(event: EmnifyEvent): void {
  const got = eventBytes(event);
  const want = generic(event);
  if (!got.equals(want)) expect(got.toString('utf8')).toBe(want.toString('utf8'));
  expect(got.equals(want)).toBe(true);
}

function expectSameUsage(record: EmnifyUsageRecord): void {
  const got = usageBytes(record);
  const want = generic(record);
  if (!got.equals(want)) expect(got.toString('utf8')).toBe(want.toString('utf8'));
  expect(got.equals(want)).toBe(true);
}

/** Every output of a capture as the engine folds it: 4 partitions, then the organisation stage. */
async function foldCapture(
  path: string,
): Promise<{ fold: FoldOutputs; organisation: OrganisationStageOutputs }> {
  const dir = new Directory((await openCapture(path)).header.reference);
  const folds = [0, 1, 2, 3].map(() => new PartitionFold(dir));
  const offsets = [0, 0, 0, 0];
  const fold = emptyOutputs();
  for await (const line of captureLines(path)) {
    const decoded = decodeRaw(Buffer.from(line));
    if (!decoded.ok) continue;
    const record = decoded.raw.record as { imsi?: string; servedIMSI?: string };
    const imsi = record.imsi ?? record.servedIMSI;
    const p = imsi ? (dir.resolveImsi(imsi)?.index ?? 0) % 4 : 0;
    const offset = offsets[p] ?? 0;
    offsets[p] = offset + 1;
    try {
      folds[p]?.apply(decoded.raw, p, offset, fold);
    } catch {
      // the processor dead-letters these; their outputs do not matter here
    }
  }
  const stage = new OrganisationStage(dir);
  const organisation: OrganisationStageOutputs = { events: [], enforcement: [] };
  const usage = [...fold.usage].sort(
    (a, b) =>
      Date.parse(a.record.end_timestamp) - Date.parse(b.record.end_timestamp) || a.record.id - b.record.id,
  );
  usage.forEach((u, i) => {
    stage.apply(u, 0, i, organisation);
  });
  return { fold, organisation };
}

describe('output writers on the regression captures', () => {
  for (const capture of CAPTURES) {
    it(`writes every event and usage record of ${capture.file} as toJson does`, async () => {
      const { fold, organisation } = await foldCapture(capturePath(capture));
      expect(fold.events.length + fold.usage.length).toBeGreaterThan(100);
      for (const event of fold.events) expectSameEvent(event);
      for (const event of organisation.events) expectSameEvent(event);
      for (const usage of fold.usage) expectSameUsage(usage.record);
      // Twice: the second time from the parts remembered the first time.
      for (const usage of fold.usage) expectSameUsage(usage.record);
      for (const event of fold.events) expectSameEvent(event);
    });

    it(`reads back the facts of every record of ${capture.file} as JSON.parse does`, async () => {
      const { fold, organisation } = await foldCapture(capturePath(capture));
      for (const { record } of fold.usage) {
        const text = usageBytes(record);
        const parsed = usageFromJson(text.toString('utf8'));
        expect(readUsageFacts(text)).toEqual({
          trafficTypeId: parsed.traffic_type.id,
          organisationId: parsed.organisation.id,
          endTimestamp: parsed.end_timestamp,
          currency: parsed.currency.code,
          cost: parsed.cost,
        });
      }
      for (const event of [...fold.events, ...organisation.events]) {
        const text = eventBytes(event);
        expect(readEventType(text)).toEqual(JSON.parse(text.toString('utf8')).event_type);
      }
    });
  }
});

/** A usage record and an event of the plain-day capture, to vary. */
async function samples(): Promise<{ usage: EmnifyUsageRecord; event: EmnifyEvent }> {
  const plain = CAPTURES.find((c) => c.name === 'plain-day');
  const { fold } = await foldCapture(capturePath(plain as (typeof CAPTURES)[number]));
  const event = fold.events.find((e) => e.detail !== null && e.endpoint !== null) as EmnifyEvent;
  return {
    usage: structuredClone((fold.usage[0] as FoldOutputs['usage'][number]).record),
    event: structuredClone(event),
  };
}

const ODD_STRINGS = [
  '',
  'plain',
  'Telefónica Móviles España',
  '中国移动',
  'emoji 📶 bars',
  'quote " and backslash \\',
  'tab\tnew\nline\rreturn\bback\fform',
  '\u0000\u0001\u001f control',
  '\u007f delete and \u0080 C1',
  'line\u2028separator\u2029paragraph',
  'lone \ud800 high',
  'lone \udfff low',
  '\udc00\ud800 reversed pair',
  '€ and $& and $1 and $$',
  '"cost":1,"currency":{"id":1,"code":"XYZ"',
  'x'.repeat(5000),
];

describe('output writers on odd values', () => {
  it('writes strings with escapes, unicode, lone surrogates and control characters as toJson does', async () => {
    const { usage, event } = await samples();
    for (const text of ODD_STRINGS) {
      expectSameUsage({ ...usage, endpoint: { ...usage.endpoint, name: text, tags: text, imei: text } });
      expectSameUsage({ ...usage, organisation: { ...usage.organisation, name: text } });
      expectSameUsage({
        ...usage,
        operator: { ...usage.operator, name: text, country: { ...usage.operator.country, name: text } },
        tariff: { ...usage.tariff, name: text, ratezone: { ...usage.tariff.ratezone, name: text } },
        session_id: text,
        rating: { ...usage.rating, rate: text },
        start_timestamp: text,
        imsi: text,
      });
      expectSameUsage({ ...usage, currency: { id: 9, code: text, symbol: text } });
      expectSameEvent({ ...event, description: text, timestamp: text });
      expectSameEvent({
        ...event,
        organisation: { id: 5, name: text },
        sim: { ...(event.sim as NonNullable<EmnifyEvent['sim']>), iccid: text, msisdn: text },
        imsi: { ...(event.imsi as NonNullable<EmnifyEvent['imsi']>), imsi: text, import_date: text },
        event_type: { id: 0, description: text },
        detail: { note: text, [text]: [text, { deeper: text }] },
      });
    }
  });

  it('writes nulls, empty and odd numbers, and decimals with many digits as toJson does', async () => {
    const { usage, event } = await samples();
    const numbers = [
      0,
      -0,
      1,
      -1,
      7.5,
      -2.25,
      1e21,
      1e-7,
      2 ** 53 - 1,
      2 ** 53 + 2,
      Number.NaN,
      Infinity,
      -Infinity,
    ];
    for (let k = 0; k < 16; k++) numbers.push(10 ** k - 1, 10 ** k, 10 ** k + 1, 2 ** 53 - 1 - k * 9_999_991);
    for (const n of numbers) {
      expectSameUsage({
        ...usage,
        id: n,
        imsi_id: n,
        rating: { ...usage.rating, billable_bytes: n, rx_bytes: n },
      });
      expectSameUsage({ ...usage, endpoint: { ...usage.endpoint, id: n }, sim: { ...usage.sim, id: n } });
      expectSameEvent({ ...event, id: n, event_source: { id: n, description: 'x' } });
    }
    for (const decimal of [
      '0',
      '1',
      '-3.5',
      '0.0000000001',
      '12345.6789012345',
      '99999999999999.9999999999',
      '0.000000',
    ]) {
      expectSameUsage({ ...usage, cost: decimal, volume: { total: decimal, rx: decimal, tx: decimal } });
    }
    expectSameUsage({
      ...usage,
      endpoint: { ...usage.endpoint, ip_address: null, tags: null, imei: null },
      sim: { ...usage.sim, msisdn: null },
      session_id: null,
    });
    expectSameEvent({ ...event, endpoint: null, sim: null, imsi: null, detail: null });
    expectSameEvent({ ...event, user: { id: 3, name: 'Ann', username: 'ann@example.com' } });
    expectSameEvent({ ...event, alert: true });
    expectSameEvent({ ...event, detail: {} });
    expectSameEvent({ ...event, detail: { a: [1, null, 'x', { b: [] }], c: { d: { e: -0.5 } } } });
  });

  it('leaves out what JSON.stringify leaves out, and writes other types as it does', async () => {
    const { usage, event } = await samples();
    const odd = [undefined, null, 'text', 42, true, { nested: [1] }, [1, 'two'], () => 1, Symbol('s')];
    for (const value of odd) {
      const v = value as never;
      expectSameUsage({ ...usage, session_id: v });
      expectSameUsage({ ...usage, imsi: v, imsi_id: v });
      expectSameUsage({ ...usage, endpoint: { ...usage.endpoint, balance: v, name: v } });
      expectSameUsage({ ...usage, rating: { ...usage.rating, inclusive: v, rate: v } });
      expectSameEvent({ ...event, user: v, detail: v, alert: v });
      expectSameEvent({
        ...event,
        description: v,
        endpoint: { ...(event.endpoint as NonNullable<EmnifyEvent['endpoint']>), tags: v },
      });
    }
    // A cost toJson would write differently through its replace ('$' patterns), or not a string.
    expectSameUsage({ ...usage, cost: '1$&2' });
    expectSameUsage({ ...usage, volume: { ...usage.volume, total: '"cost":"\\u0000C"' }, cost: '€' });
    expectSameUsage({ ...usage, volume: { ...usage.volume, tx: '1e-7' }, cost: '-1E+3' });
    expectSameUsage({ ...usage, cost: 5 as never });
    expectSameUsage({ ...usage, volume: { ...usage.volume, rx: undefined as never } });
    // Parts that are missing: toJson's error or output either way.
    expect(() => usageBytes({ ...usage, volume: undefined as never })).toThrow(TypeError);
    expectSameEvent({ ...event, organisation: null as never });
    expectSameEvent({ ...event, event_type: undefined as never });
    expect(() => eventBytes({ ...event, detail: { big: 1n } })).toThrow(TypeError);
  });

  it('writes an object again when it changed after it was written', async () => {
    const { usage, event } = await samples();
    expectSameUsage(usage);
    expectSameEvent(event);
    usage.endpoint.name = 'renamed';
    usage.operator.country.name = 'Elsewhere';
    usage.tariff.ratezone.name = 'Zone Z';
    usage.currency = { ...usage.currency };
    usage.currency.symbol = '¤';
    (usage.sim as { msisdn: string | null }).msisdn = null;
    expectSameUsage(usage);
    (event.endpoint as { name: string }).name = 'renamed too';
    event.organisation.name = 'Org renamed';
    expectSameEvent(event);
    // A field holding an object is never remembered: changing inside it shows.
    const name = { first: 'a' };
    const record = { ...usage, organisation: { id: 1, name: name as never } };
    expectSameUsage(record);
    name.first = 'b';
    expectSameUsage(record);
  });

  it('keeps the records it handed out intact while it writes more, across chunks', async () => {
    const { usage, event } = await samples();
    const written: [Buffer, Buffer][] = [];
    for (let i = 0; i < 2000; i++) {
      const record = { ...usage, id: i, session_id: i % 100 === 0 ? 'y'.repeat(100_000) : usage.session_id };
      written.push([usageBytes(record), generic(record)]);
      const big = { ...event, id: i, detail: i % 500 === 0 ? { text: 'z'.repeat(300_000) } : event.detail };
      written.push([eventBytes(big), generic(big)]);
    }
    for (const [got, want] of written) expect(got.equals(want)).toBe(true);
  });
});

describe('output facts on odd records', () => {
  it('gives up (undefined) on text laid out otherwise, and reads escaped descriptions exactly', async () => {
    const { usage, event } = await samples();
    const text = usageBytes(usage).toString('utf8');
    for (const changed of [
      text.replace('"cost":', '"cost": '),
      text.replace(/"cost":[^,]*/, '"cost":1e-7'),
      text.replace(/"cost":[^,]*/, '"cost":0.12345678901'),
      text.replace(/"cost":[^,]*/, '"cost":1234567890123456'),
      text.replace(/"cost":[^,]*/, '"cost":01'),
      text.replace('"end_timestamp":"', '"end_timestamp":"\\u0032'),
      text.replace(/"organisation":\{"id":\d+/, '"organisation":{"id":0012'),
      text.replace(/"code":"[A-Z]+"/, '"code":"EU\\u0052"'),
      JSON.stringify({ ...JSON.parse(text), id: undefined }),
      '{}',
      '',
    ])
      expect(readUsageFacts(Buffer.from(changed))).toBeUndefined();
    for (const description of ['Say "hi"\\', 'Grüße', 'tab\there', '\ud83d\udcf6']) {
      const bytes = eventBytes({ ...event, event_type: { id: 65, description } });
      expect(readEventType(bytes)).toEqual({ id: 65, description });
    }
    expect(readEventType(Buffer.from(toJson({ ...event, alert: 'yes' as never })))).toBeUndefined();
    expect(readEventType(Buffer.from('{"id":1}'))).toBeUndefined();
  });
});

describe('the faster time and decimal formatting', () => {
  it('isoTime and isoMonth are toISOString for every kind of time', () => {
    const times = [
      0,
      -0,
      1,
      999,
      86_399_999,
      86_400_000,
      951_782_400_000,
      Date.UTC(2026, 0, 5),
      253_402_300_799_999,
    ];
    const odd = [-1, -86_400_001, 253_402_300_800_000, 8.64e15, 1.5, Number.NaN, Infinity];
    let seed = 7;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      times.push(Math.floor((seed / 2 ** 31) * 253_402_300_800_000));
    }
    for (const t of [...times, ...odd]) {
      let want: string | undefined;
      try {
        want = new Date(t).toISOString();
      } catch {
        expect(() => isoTime(t)).toThrow(RangeError);
        continue;
      }
      expect(isoTime(t)).toBe(want);
      expect(isoMonth(t)).toBe(want.slice(0, 7));
    }
  });

  // The code these replaced, kept here as the reference.
  const ONE = 10n ** 10n;
  function oldParse(text: string): bigint {
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    const fraction = match?.[3] ?? '';
    if (!match || fraction.length > 10)
      throw new RangeError(`"${text}" is not a decimal with at most 10 places`);
    const units = BigInt(match[2] as string) * ONE + BigInt(fraction.padEnd(10, '0') || '0');
    return match[1] ? -units : units;
  }
  function oldFormat(units: bigint, places = 10): string {
    const rounded =
      places < 10 ? divideHalfUp(units, 10n ** BigInt(10 - places)) * 10n ** BigInt(10 - places) : units;
    const negative = rounded < 0n;
    const abs = negative ? -rounded : rounded;
    const fraction = (abs % ONE).toString().padStart(10, '0').slice(0, places).replace(/0+$/, '');
    return `${negative ? '-' : ''}${abs / ONE}${fraction ? `.${fraction}` : ''}`;
  }
  function oldFixed(units: bigint, places: number): string {
    const [whole, fraction = ''] = oldFormat(units, places).split('.');
    return places === 0 ? (whole as string) : `${whole}.${fraction.padEnd(places, '0')}`;
  }
  const outcome = (f: () => unknown) => {
    try {
      return String(f());
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  };

  it('parseDecimal accepts and refuses what it always did, with the same values and messages', () => {
    const texts = [
      '0',
      '-0',
      '7',
      '0.1',
      '00.50',
      '-12.3400',
      '1.',
      '.5',
      '',
      '-',
      '1e5',
      '+1',
      '1.2.3',
      ' 1',
      '1 ',
    ];
    texts.push(
      '0.12345678901',
      '9.9999999999',
      '123456789012345678901234567890.1234567890',
      '١',
      '--1',
      '-.5',
    );
    let seed = 11;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n);
    };
    const digits = (n: number) => Array.from({ length: n }, () => String(random(10))).join('');
    for (let i = 0; i < 5000; i++)
      texts.push(
        `${random(3) === 0 ? '-' : ''}${digits(1 + random(14))}${random(2) ? `.${digits(random(12))}` : ''}`,
      );
    for (const text of texts)
      expect(
        outcome(() => parseDecimal(text)),
        text,
      ).toBe(outcome(() => oldParse(text)));
  });

  it('formatDecimal and formatFixed write what they always did', () => {
    const values = [
      0n,
      1n,
      -1n,
      5n,
      -5n,
      ONE,
      -ONE,
      4_999_999_999n,
      5_000_000_000n,
      -5_000_000_000n,
      10n ** 30n,
    ];
    let seed = 3;
    for (let i = 0; i < 3000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      const v = BigInt(seed) * BigInt(seed % 99_991) * 10n ** BigInt(seed % 7);
      values.push(seed % 2 ? v : -v, BigInt(seed % 100_000));
    }
    for (const v of values) {
      expect(formatDecimal(v)).toBe(oldFormat(v));
      for (const places of [0, 1, 2, 6, 9, 10, 12, -1, 2.5]) {
        expect(outcome(() => formatDecimal(v, places))).toBe(outcome(() => oldFormat(v, places)));
        expect(outcome(() => formatFixed(v, places))).toBe(outcome(() => oldFixed(v, places)));
      }
    }
  });
});
