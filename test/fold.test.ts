import { describe, expect, it } from 'vitest';
import type { DataCdr, RawRecord, SignalingRecord, SmsRecord } from '../src/contracts/raw.js';
import {
  CLOSE_WAIT_MS,
  CONFIRM_WITHIN,
  emptyOutputs,
  MAX_LEAP_MS,
  MAX_OPEN_SESSIONS,
  PartitionFold,
  type PartitionState,
  restoreState,
} from '../src/core/fold.js';
import { idPosition, outputId } from '../src/core/ids.js';
import { type EmnifyEvent, type EmnifyUsageRecord, toJson, usageFromJson } from '../src/core/output.js';
import { sessionId } from '../src/core/session-id.js';
import { deserialise, serialise } from '../src/engine/snapshot.js';
import { Directory } from '../src/reference/directory.js';
import type { ReferenceData } from '../src/reference/types.js';
import { HOUR, runAll, simulator, smallWorld, T0 } from './fixtures.js';

// Endpoint 1 (index 0) uses IMSI 295050000000101, tariff profile 1 (zone 1 at 0.10/MB, SMS MO 0.07).
const IMSI = '295050000000101';

function signaling(
  type: SignalingRecord['type'],
  t: number,
  fields: Partial<SignalingRecord> = {},
): RawRecord {
  return {
    kind: 'signaling',
    record: {
      record_id: `r-${t}`,
      type,
      timestamp: t,
      imsi: IMSI,
      imeisv: '3569380356438001',
      result: 'ACCEPTED',
      cause: null,
      cause_code: null,
      visited_mcc: '262',
      visited_mnc: '01',
      rat_type: 6,
      lac: 921,
      cell_id: 5174,
      network_node: '117.72.59.30',
      charging_id: null,
      gateway_address: null,
      apn: null,
      pdp_address: null,
      nsapi: null,
      ...fields,
    },
  };
}

const pdp = {
  charging_id: 4242,
  gateway_address: '100.64.0.10',
  apn: 'em',
  nsapi: 5,
  pdp_address: '10.0.0.1',
};

function cdr(
  seq: number,
  start: number,
  end: number,
  rx: number,
  tx: number,
  fields: Partial<DataCdr> = {},
): RawRecord {
  return {
    kind: 'data_cdr',
    record: {
      recordType: 85,
      nodeID: 'pgw-1',
      localSequenceNumber: seq,
      servedIMSI: IMSI,
      servedIMEISV: null,
      servedMSISDN: null,
      chargingID: 4242,
      recordSequenceNumber: seq,
      pGWAddress: '100.64.0.10',
      servingNodeAddress: '117.72.59.30',
      servingNodePLMNIdentifier: '26201',
      rATType: 6,
      accessPointNameNI: 'em',
      servedPDPPDNAddress: '10.0.0.1',
      recordOpeningTime: start,
      timeOfFirstUsage: start,
      timeOfLastUsage: end,
      duration: Math.round((end - start) / 1000),
      dataVolumeUplink: tx,
      dataVolumeDownlink: rx,
      causeForRecClosing: 0,
      locationAreaCode: null,
      cellIdentity: null,
      ...fields,
    },
  };
}

function sms(id: string, direction: 'MO' | 'MT', t: number, fields: Partial<SmsRecord> = {}): RawRecord {
  return {
    kind: 'sms',
    record: {
      sms_id: id,
      direction,
      timestamp: t,
      imsi: IMSI,
      msisdn: null,
      other_party: '491700000',
      visited_mcc: '262',
      visited_mnc: '01',
      smsc_address: '4236639',
      delivered: true,
      cause: null,
      length: 20,
      ...fields,
    },
  };
}

/** The small world with a 1 MB monthly data limit on service profile 1 (endpoint 1's). */
function worldWithDataLimit(): ReferenceData {
  const world = smallWorld();
  world.service_profiles[0] = {
    ...world.service_profiles[0],
    limits: { data_mb: '1' },
  } as (typeof world.service_profiles)[0];
  return world;
}

function fold(records: RawRecord[], world: ReferenceData = smallWorld()) {
  const folder = new PartitionFold(new Directory(world));
  const out = emptyOutputs();
  records.forEach((r, offset) => {
    folder.apply(r, 0, offset, out);
  });
  return { folder, out };
}

describe('connectivity events in the emnify shape', () => {
  it('turns an accepted Update Location into event 1 with the visited operator, and the device into Attached', () => {
    const { folder, out } = fold([signaling('UPDATE_LOCATION', T0 + 1234)]);
    expect(out.events).toHaveLength(1);
    const event = out.events[0];
    expect(event).toMatchObject({
      id: outputId(0, 0, 0),
      timestamp: '2026-01-05T00:00:01.234Z',
      alert: false,
      event_type: { id: 1, description: 'Update location' },
      event_source: { id: 0, description: 'Network' },
      event_severity: { id: 0, description: 'Info' },
      organisation: { id: 1, name: 'Test Org' },
      user: null,
      endpoint: { id: 1, name: 'device-1', ip_address: '10.0.0.1', tags: null, imei: '356938035643809' },
      sim: { id: 101, production_date: '2025-01-01T00:00:00.000Z' },
      imsi: { id: 1010, imsi: IMSI, import_date: '2025-01-01T00:00:00.000Z' },
      detail: {
        id: 1,
        name: 'Telekom',
        country: { id: 74, name: 'Germany', country_code: '49', mcc: '262', iso_code: 'de' },
        tapcode: [{ id: 101, tapcode: 'DEUD1' }],
        mnc: [
          { id: 101, mnc: '01' },
          { id: 102, mnc: '06' },
        ],
      },
    });
    expect(folder.device(0)?.connectivity).toBe('Attached');
  });

  it('reports a rejected registration as a warning alert with the reason and no detail', () => {
    const { out } = fold([
      signaling('UPDATE_LOCATION', T0, { result: 'REJECTED', cause: 'ROAMING_NOT_ALLOWED', cause_code: 8 }),
    ]);
    expect(out.events[0]).toMatchObject({
      alert: true,
      event_severity: { id: 1, description: 'Warn' },
      detail: null,
    });
    expect(out.events[0]?.description).toBe(
      'Location update rejected in Telekom (Germany): roaming not allowed.',
    );
  });

  it('follows a session: Create PDP (Online, session_id), CDRs rated, Delete PDP with the volume (Attached)', () => {
    const { folder, out } = fold([
      signaling('UPDATE_LOCATION', T0),
      signaling('CREATE_PDP_CONTEXT', T0 + 10_000, pdp),
      cdr(1, T0 + 10_000, T0 + 55_000, 150_000, 80_400, { causeForRecClosing: 0 }), // final
      signaling('DELETE_PDP_CONTEXT', T0 + 60_000, { ...pdp, cause: 'NORMAL_RELEASE' }),
    ]);
    const id = sessionId('100.64.0.10', 4242);
    const [, create, del] = out.events;
    expect(create?.event_type).toEqual({ id: 3, description: 'Create PDP Context' });
    expect(create?.detail).toMatchObject({
      id: 1,
      name: 'Telekom',
      session_id: id,
      pdp_context: {
        pdp_context_id: 4242,
        tunnel_created: '2026-01-05T00:00:10',
        operator_id: '1',
        tariff_profile_id: '1',
        ratezone_id: '11',
        tariff_id: '555',
        ue_ip_address: '10.0.0.1',
        rat_type: 6,
        ci: 5174,
      },
    });
    // 230,400 B = 225 KB at 0.10/MB: 0.02197265625 -> 0.0219726563.
    // rx 150,000 B = 0.1430511... MB, tx 80,400 B = 0.0766754... MB, total 0.2197265625 MB.
    expect(out.usage).toHaveLength(1);
    expect(out.usage[0]?.record).toMatchObject({
      id: outputId(0, 2, 0),
      traffic_type: { id: 5, description: 'Data' },
      start_timestamp: '2026-01-05T00:00:10.000Z',
      end_timestamp: '2026-01-05T00:00:55.000Z',
      imsi: IMSI,
      imsi_id: 1010,
      operator: { id: 1, name: 'Telekom', mnc: '01', country: { id: 74, mcc: '262', name: 'Germany' } },
      tariff: { id: 555, name: 'Test EUR', ratezone: { id: 11, name: 'Zone 1' } },
      volume: { total: '0.219727', rx: '0.143051', tx: '0.076675' },
      cost: '0.0219726563',
      currency: { id: 1, code: 'EUR', symbol: '€' },
      session_id: id,
      rating: { tariff_version: 1, rate: '0.10', billable_bytes: 230_400, inclusive: false },
    });
    expect(del?.event_type).toEqual({ id: 5, description: 'Delete PDP Context' });
    expect(del?.detail).toMatchObject({
      session_id: id,
      volume: { total: 0.219727, rx: 0.143051, tx: 0.076675 },
    });
    expect(folder.device(0)?.connectivity).toBe('Attached');
  });

  it('waits with event 5 for a final CDR that comes after the Delete, and counts its volume', () => {
    const { folder, out } = fold([
      signaling('CREATE_PDP_CONTEXT', T0, pdp),
      cdr(1, T0, T0 + 45_000, 1_048_576, 0, { causeForRecClosing: 17 }), // interim
      signaling('DELETE_PDP_CONTEXT', T0 + 60_000, { ...pdp, cause: 'NORMAL_RELEASE' }),
      cdr(2, T0 + 45_000, T0 + 60_000, 524_288, 524_288, { causeForRecClosing: 0 }), // final, late
    ]);
    expect(folder.device(0)?.connectivity).toBe('Attached');
    const deleted = out.events.filter((e) => e.event_type.id === 5);
    expect(deleted).toHaveLength(1);
    // Timed at the Delete, written with the final CDR (its input's ids: after its usage record).
    expect(deleted[0]?.timestamp).toBe('2026-01-05T00:01:00.000Z');
    expect(deleted[0]?.id).toBe(outputId(0, 3, 1));
    expect(deleted[0]?.detail).toMatchObject({
      session_id: sessionId('100.64.0.10', 4242),
      volume: { total: 2, rx: 1.5, tx: 0.5 },
    });
    expect(folder.device(0)?.closing).toBeUndefined();
  });

  it('keeps a closing session through a snapshot', () => {
    const { folder } = fold([
      signaling('CREATE_PDP_CONTEXT', T0, pdp),
      signaling('DELETE_PDP_CONTEXT', T0 + 60_000, pdp),
    ]);
    const state = restoreState(3, deserialise<PartitionState>(serialise(folder.state)));
    const restored = new PartitionFold(new Directory(smallWorld()), state);
    const out = emptyOutputs();
    restored.apply(cdr(1, T0, T0 + 60_000, 1_048_576, 0, { causeForRecClosing: 0 }), 0, 2, out);
    expect(
      out.events.map((e) => [e.event_type.id, e.detail && (e.detail as { volume: unknown }).volume]),
    ).toEqual([[5, { total: 1, rx: 1, tx: 0 }]]);
  });

  it('sends event 5 without a final CDR that never comes, 15 minutes of event time after the Delete', () => {
    const { out } = fold([
      signaling('CREATE_PDP_CONTEXT', T0, pdp),
      cdr(1, T0, T0 + 45_000, 1_048_576, 0, { causeForRecClosing: 17 }),
      signaling('DELETE_PDP_CONTEXT', T0 + 60_000, pdp),
      sms('s-1', 'MO', T0 + 60_000 + CLOSE_WAIT_MS - 1), // not yet
      sms('s-2', 'MO', T0 + 60_000 + CLOSE_WAIT_MS),
    ]);
    const deleted = out.events.filter((e) => e.event_type.id === 5);
    expect(deleted.map((e) => [e.id, e.timestamp])).toEqual([
      [outputId(0, 4, 0), '2026-01-05T00:01:00.000Z'],
    ]);
    expect(deleted[0]?.detail).toMatchObject({ volume: { total: 1, rx: 1, tx: 0 } });
  });

  it('writes usage JSON with volumes and cost as numbers carrying exactly their digits', () => {
    const { out } = fold([cdr(1, T0, T0 + 45_000, 150_000, 80_400)]);
    const json = toJson(out.usage[0]?.record as NonNullable<(typeof out.usage)[0]>['record']);
    expect(json).toContain('"volume":{"total":0.219727,"rx":0.143051,"tx":0.076675}');
    expect(json).toContain('"cost":0.0219726563,');
    expect(JSON.parse(json).cost).toBe(0.0219726563);
  });

  it('purges: event 15, the device goes Offline and its sessions are gone', () => {
    const { folder, out } = fold([
      signaling('UPDATE_LOCATION', T0),
      signaling('CREATE_PDP_CONTEXT', T0 + 1000, pdp),
      signaling('PURGE_LOCATION', T0 + 9000, { cause: 'INACTIVITY' }),
    ]);
    expect(out.events[2]).toMatchObject({
      event_type: { id: 15, description: 'Purge location' },
      detail: null,
    });
    expect(folder.device(0)?.connectivity).toBe('Offline');
    expect(folder.device(0)?.sessions).toBeUndefined();
  });
});

/** A state with the repeat windows of a version 1 snapshot: Maps of ids to milliseconds. */
function versionOne(state: PartitionState, windows: Record<string, Map<string, number>>): PartitionState {
  return Object.assign(state, {
    seenSms: new Map(),
    seenCommands: new Map(),
    seenSignaling: new Map(),
    ...windows,
  });
}

describe('usage rules', () => {
  it('rates a repeated CDR once and counts the repeat', () => {
    const { out } = fold([
      cdr(1, T0, T0 + 45_000, 1000, 0),
      cdr(1, T0, T0 + 45_000, 1000, 0),
      cdr(2, T0 + 45_000, T0 + 60_000, 1000, 0),
    ]);
    expect(out.usage.map((u) => u.record.id)).toEqual([outputId(0, 0, 0), outputId(0, 2, 0)]);
    expect(out.duplicates).toBe(1);
  });

  it('forgets a repeat after the 48-hour window, and reads the windows of an earlier snapshot (milliseconds)', () => {
    const { folder, out } = fold([cdr(1, T0, T0 + 45_000, 1000, 0)]);
    // The state as snapshots of version 1 held it: a Map of CDR keys, times in ms, empty containers.
    const earlier = versionOne(folder.state, { seenCdrs: new Map([['pgw-1/4242/1', T0 + 45_000]]) });
    const device = earlier.devices.get(0) as NonNullable<ReturnType<PartitionFold['device']>>;
    Object.assign(device, { sessions: new Map(), quotas: {}, holds: [] });
    const restored = new PartitionFold(new Directory(smallWorld()), restoreState(1, earlier));
    const again = emptyOutputs();
    restored.apply(cdr(1, T0, T0 + 45_000, 1000, 0), 0, 1, again);
    expect(again.duplicates).toBe(1);
    // An hour past the window, the key is gone: the same CDR is rated as new.
    restored.apply(sms('s-late', 'MO', T0 + 49 * HOUR), 0, 2, again);
    restored.apply(cdr(1, T0, T0 + 45_000, 1000, 0), 0, 3, again);
    expect(again.duplicates).toBe(1);
    expect(again.usage.map((u) => u.record.id)).toEqual([outputId(0, 2, 0), outputId(0, 3, 0)]);
    expect(out.usage).toHaveLength(1);
  });

  it('reads the windows of a version 2 snapshot (Maps to minutes) and of version 3 (its own form)', () => {
    const { folder } = fold([sms('s-1', 'MO', T0), cdr(1, T0, T0 + 45_000, 1000, 0)]);
    const v3 = deserialise<PartitionState>(serialise(folder.state));
    const v2 = Object.assign(deserialise<PartitionState>(serialise(folder.state)), {
      seenCdrs: new Map([['pgw-1/4242/1', T0 / 60_000]]),
      seenSms: new Map([['s-1', T0 / 60_000]]),
      seenCommands: new Map(),
      seenSignaling: new Map(),
    });
    for (const [version, state] of [
      [2, v2],
      [3, v3],
    ] as const) {
      const restored = new PartitionFold(new Directory(smallWorld()), restoreState(version, state));
      const out = emptyOutputs();
      restored.apply(sms('s-1', 'MO', T0), 0, 2, out);
      restored.apply(cdr(1, T0, T0 + 45_000, 1000, 0), 0, 3, out);
      restored.apply(cdr(2, T0 + 45_000, T0 + 50_000, 1000, 0), 0, 4, out);
      expect(out.duplicates).toBe(2);
      expect(out.usage).toHaveLength(1);
    }
  });

  it('reads the open sessions of an earlier snapshot (a Map keyed "gateway/charging id")', () => {
    const { folder } = fold([
      signaling('CREATE_PDP_CONTEXT', T0, pdp),
      cdr(1, T0, T0 + 45_000, 1_048_576, 524_288),
    ]);
    const device = folder.state.devices.get(0) as NonNullable<ReturnType<PartitionFold['device']>>;
    const [open] = device.sessions ?? [];
    const { gateway: _gateway, chargingId: _charging, ...rest } = open as NonNullable<typeof open>;
    Object.assign(device, { sessions: new Map([['100.64.0.10/4242', rest]]) });
    // Version 1 windows held milliseconds, CDR keys in a Map.
    const earlier = versionOne(folder.state, {
      seenCdrs: new Map([['pgw-1/4242/1', T0 + 45_000]]),
      seenSignaling: new Map([[`r-${T0}`, T0]]),
    });
    const restored = new PartitionFold(new Directory(smallWorld()), restoreState(1, earlier));
    const out = emptyOutputs();
    restored.apply(cdr(1, T0, T0 + 45_000, 1_048_576, 524_288), 0, 2, out); // a repeat
    restored.apply(signaling('CREATE_PDP_CONTEXT', T0, pdp), 0, 3, out); // a repeat
    restored.apply(cdr(2, T0 + 45_000, T0 + 60_000, 1_048_576, 0), 0, 4, out);
    restored.apply(signaling('DELETE_PDP_CONTEXT', T0 + 60_000, pdp), 0, 5, out);
    expect(out.duplicates).toBe(2);
    const deleted = out.events.at(-1) as EmnifyEvent;
    expect(deleted.event_type.id).toBe(5);
    expect((deleted.detail as { volume: unknown }).volume).toEqual({ total: 2.5, rx: 2, tx: 0.5 });
    expect(restored.device(0)?.sessions).toBeUndefined();
    expect(restored.device(0)?.connectivity).toBe('Attached');
  });

  it('keeps at most 11 open sessions a device, letting go of the oldest whose Delete never came', () => {
    const creates = Array.from({ length: MAX_OPEN_SESSIONS + 2 }, (_, i) =>
      signaling('CREATE_PDP_CONTEXT', T0 + i * 1000, { ...pdp, charging_id: 100 + i }),
    );
    const { folder } = fold(creates);
    const open = folder.device(0)?.sessions ?? [];
    expect(open.map((session) => session.chargingId)).toEqual(
      Array.from({ length: MAX_OPEN_SESSIONS }, (_, i) => 102 + i),
    );
  });

  it('still rates a final CDR that arrives after the Delete PDP Context, with the session id', () => {
    const { out } = fold([
      signaling('CREATE_PDP_CONTEXT', T0, pdp),
      signaling('DELETE_PDP_CONTEXT', T0 + 30_000, pdp),
      cdr(1, T0, T0 + 30_000, 2048, 0),
    ]);
    expect(out.usage).toHaveLength(1);
    expect(out.usage[0]?.record.session_id).toBe(sessionId('100.64.0.10', 4242));
    expect(out.usage[0]?.record.cost).toBe('0.0001953125'); // 2 KB at 0.10/MB = 0.2/1024
  });

  it('counts inclusive volume per month of usage time, also for a late record', () => {
    const world = smallWorld();
    const zone = world.tariffs[0]?.ratezones[0];
    if (zone) zone.inclusive_volume = { volume_mb: '1', excess_per_mb: '0.20' };
    const feb = Date.UTC(2026, 1, 1, 0, 0, 5);
    const { out } = fold(
      [
        cdr(1, T0, T0 + 45_000, 1_048_576, 0), // January: uses the whole 1 MB allowance
        cdr(2, feb - 5000, feb, 1024, 0), // February: a new month, inside its allowance
        // 27 days ahead: the clock guard holds it until a record of the partition follows.
        signaling('UPDATE_LOCATION', feb + 1000, { imsi: '295050000000103' }),
        cdr(3, T0 + 45_000, T0 + 90_000, 1024, 0), // late January record: beyond January's allowance
      ],
      world,
    );
    expect(out.usage.map((u) => [u.record.cost, u.record.rating.inclusive])).toEqual([
      ['0', true],
      ['0', true],
      ['0.0001953125', false], // 1 KB at the excess rate 0.20/MB
    ]);
  });

  it('charges delivered SMS only: MO at the zone rate, MT at the tariff default', () => {
    const { out } = fold([
      sms('a', 'MO', T0),
      sms('b', 'MT', T0 + 1),
      sms('c', 'MT', T0 + 2, { delivered: false, cause: 'absentSubscriber' }),
      sms('a', 'MO', T0 + 3),
    ]);
    expect(out.usage.map((u) => [u.record.traffic_type.id, u.record.cost, u.record.volume])).toEqual([
      [6, '0.07', { total: '1', rx: '1', tx: '0' }],
      [6, '0.01', { total: '1', rx: '0', tx: '1' }],
    ]);
    expect(out.duplicates).toBe(1);
  });

  it('does not rate traffic outside the tariff profile, and says so in an event and a dead letter', () => {
    // Endpoint 4 (IMSI ...104) has profile 3: AT&T covered, T-Mobile (310-260) not.
    const { out } = fold([
      cdr(1, T0, T0 + 1000, 5000, 0, { servedIMSI: '295050000000104', servingNodePLMNIdentifier: '310260' }),
    ]);
    expect(out.usage).toEqual([]);
    expect(out.deadLetters).toEqual([expect.objectContaining({ stage: 'rate', reason_code: 'NOT_COVERED' })]);
    expect(out.events[0]).toMatchObject({
      event_type: { id: 0 },
      event_source: { id: 1, description: 'Policy Control' },
      alert: true,
    });
  });
});

describe('bad input becomes dead letters with reasons, and the fold goes on', () => {
  it('names the problem of each bad record', () => {
    const { out } = fold([
      cdr(1, T0, T0 + 1000, 10, 10, { servedIMSI: '001010000000000' }),
      cdr(2, T0, T0 + 1000, -5, 10),
      cdr(3, T0 + 5000, T0 + 1000, 10, 10),
      signaling('UPDATE_LOCATION', 42),
      signaling('UPDATE_LOCATION', T0, { visited_mcc: '999', visited_mnc: '99' }),
      signaling('UPDATE_LOCATION', T0 + 10),
    ]);
    expect(out.deadLetters.map((d) => [idPosition(d.id).offset, d.reason_code])).toEqual([
      [0, 'UNKNOWN_IMSI'],
      [1, 'NEGATIVE_VOLUME'],
      [2, 'IMPOSSIBLE_TIMESTAMP'],
      [3, 'IMPOSSIBLE_TIMESTAMP'],
      [4, 'UNKNOWN_NETWORK'],
    ]);
    expect(out.deadLetters[0]?.reason).toBe('IMSI 001010000000000 belongs to no SIM in the reference data');
    expect(out.events).toHaveLength(1); // the valid record after them
  });
});

describe('the fold over simulated traffic', () => {
  it('is deterministic and rates every simulated CDR of a covered device', () => {
    const world = smallWorld();
    const records = runAll(simulator(world, { durationMs: 24 * HOUR, duplicateCdrRate: 0.05 }));
    const a = fold(records, world).out;
    const b = fold(records, world).out;
    const text = (o: unknown) => JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    expect(text(b)).toBe(text(a));
    const ids = [...a.events, ...a.usage.map((u) => u.record)].map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cdrs = records.filter((r) => r.kind === 'data_cdr').length;
    const dataUsage = a.usage.filter((u) => u.record.traffic_type.id === 5).length;
    expect(a.duplicates).toBeGreaterThan(0);
    expect(dataUsage + a.duplicates).toBe(cdrs);
    expect(a.deadLetters).toEqual([]);
  });
});

describe('quotas, limits and enforcement in the fold', () => {
  const quotaCommand = (fields: Partial<import('../src/contracts/raw.js').EngineCommand>): RawRecord => ({
    kind: 'command',
    record: {
      command_id: `cmd-${fields.type ?? 'QUOTA_ASSIGN'}-${fields.timestamp ?? T0}`,
      timestamp: T0,
      type: 'QUOTA_ASSIGN',
      endpoint_id: 1,
      service: 'DATA',
      volume: '1',
      expiry_date: T0 + 10 * HOUR,
      threshold_percentage: 50,
      action_on_exhaustion: 'BLOCK',
      peak_throughput: null,
      auto_refill: false,
      issued_by: 'token-1',
      ...fields,
    },
  });

  it('assigns a quota (56), uses it up (18, 19) and tells the core to block the endpoint', () => {
    const { out } = fold([
      quotaCommand({}),
      cdr(1, T0 + 1000, T0 + 2000, 600_000, 0),
      cdr(2, T0 + 2000, T0 + 3000, 600_000, 0),
    ]);
    expect(out.events.map((e) => [e.event_type.id, e.event_source.description, e.alert])).toEqual([
      [56, 'API', false],
      [18, 'Policy Control', true],
      [19, 'Policy Control', true],
    ]);
    const usedUp = out.events[2];
    expect(out.enforcement).toEqual([
      {
        command_id: `enf-${usedUp?.id}`,
        timestamp: T0 + 3000,
        action: 'BLOCK',
        scope: 'DATA',
        level: 'ENDPOINT',
        endpoint_id: 1,
        imsis: [IMSI],
        peak_throughput: null,
        reason: 'Data quota used up',
        cause_event_id: usedUp?.id,
      },
    ]);
    // The traffic is still rated and billed.
    expect(out.usage).toHaveLength(2);
  });

  it('expires a quota when event time passes its expiry, driven by any record of the partition', () => {
    const other = signaling('UPDATE_LOCATION', T0 + 11 * HOUR, { imsi: '295050000000103' });
    const { out } = fold([quotaCommand({}), other]);
    expect(out.events.map((e) => e.event_type.id)).toEqual([56, 60, 1]);
    expect(out.enforcement.map((c) => [c.action, c.endpoint_id, c.timestamp])).toEqual([
      ['BLOCK', 1, T0 + 11 * HOUR],
    ]);
  });

  it('applies a command once, and dead-letters commands it cannot apply', () => {
    const { out } = fold([
      quotaCommand({}),
      quotaCommand({}),
      quotaCommand({ endpoint_id: 999, command_id: 'x' }),
      quotaCommand({ command_id: 'y', volume: null }),
    ]);
    expect(out.events.map((e) => e.event_type.id)).toEqual([56]);
    expect(out.duplicates).toBe(1);
    expect(out.deadLetters.map((d) => [d.reason_code, d.reason])).toEqual([
      ['UNKNOWN_ENDPOINT', 'command x: endpoint 999 is not in the reference data'],
      ['INVALID_COMMAND', 'command y: QUOTA_ASSIGN: volume is required'],
    ]);
  });

  it('enforces the service profile data limit: warning 65, then 11 and a block', () => {
    const world = smallWorld();
    world.service_profiles[0] = {
      ...world.service_profiles[0],
      limits: { data_mb: '1', warning_percentage: 80 },
    } as (typeof world.service_profiles)[0];
    const { out } = fold(
      [cdr(1, T0, T0 + 1000, 900_000, 0), cdr(2, T0 + 1000, T0 + 2000, 200_000, 0)],
      world,
    );
    expect(out.events.map((e) => [e.event_type.id, e.description])).toEqual([
      [65, 'Data traffic reached 80% of the monthly limit of 1 MB.'],
      [11, 'Blocking data access for endpoint, traffic limit exceeded.'],
    ]);
    expect(out.enforcement.map((c) => [c.action, c.scope])).toEqual([['BLOCK', 'DATA']]);
  });
});

describe('edge cases found in review', () => {
  it('spreads the expiry of many quotas over the following inputs instead of running out of ids', () => {
    const world = smallWorld();
    const base = world.sims?.[0] as NonNullable<typeof world.sims>[number];
    const template = world.endpoints?.[0] as NonNullable<typeof world.endpoints>[number];
    for (let k = 0; k < 80; k++) {
      world.sims?.push({
        ...base,
        id: 1000 + k,
        iccid: `8988303000000${String(1000 + k).padStart(6, '0')}`,
        imsis: [
          {
            id: 50_000 + k,
            imsi: `29505000000${String(1000 + k).padStart(4, '0')}`,
            import_date: base.production_date,
          },
        ],
      });
      world.endpoints?.push({ ...template, id: 1000 + k, name: `q-${k}`, sim_id: 1000 + k });
    }
    const commands = Array.from(
      { length: 80 },
      (_, k): RawRecord => ({
        kind: 'command',
        record: {
          command_id: `q${k}`,
          timestamp: T0,
          type: 'QUOTA_ASSIGN',
          endpoint_id: 1000 + k,
          service: 'DATA',
          volume: '1',
          expiry_date: T0 + HOUR,
          threshold_percentage: null,
          action_on_exhaustion: 'BLOCK',
          peak_throughput: null,
          auto_refill: false,
          issued_by: null,
        },
      }),
    );
    const later = [
      signaling('UPDATE_LOCATION', T0 + 2 * HOUR),
      signaling('UPDATE_GPRS_LOCATION', T0 + 2 * HOUR + 1),
      signaling('UPDATE_LOCATION', T0 + 2 * HOUR + 2, { record_id: 'again' }),
    ];
    const { out } = fold([...commands, ...later], world);
    expect(out.events.filter((e) => e.event_type.id === 60)).toHaveLength(80);
    expect(out.enforcement).toHaveLength(80);
    expect(out.deadLetters).toEqual([]);
  });

  it('reads back usage whose cost is below one millionth exactly', () => {
    const world = smallWorld();
    const zone = world.tariffs[0]?.ratezones[0];
    if (zone) zone.rates.data_per_mb = '0.001';
    const { out } = fold([cdr(1, T0, T0 + 1000, 100, 0)], world);
    const record = out.usage[0]?.record as EmnifyUsageRecord;
    expect(record.cost).toBe('0.0000009766'); // 1 KB at 0.001/MB = 0.0000009765625, half-up
    expect(usageFromJson(toJson(record)).cost).toBe('0.0000009766');
  });

  it('recognises a repeated signaling transaction for an hour, and a CDR for 48 hours', () => {
    const repeat = (t: number) => signaling('UPDATE_LOCATION', T0, { timestamp: t });
    const { out } = fold([
      signaling('UPDATE_LOCATION', T0),
      cdr(1, T0, T0 + 1000, 10, 10),
      repeat(T0 + 30 * 60_000), // the same transaction id, 30 minutes later
      sms('s-1', 'MO', T0 + 150 * 60_000), // event time moves on 2.5 hours
      repeat(T0 + 150 * 60_000), // now too late to be a repeat: a new transaction
      sms('s-2', 'MO', T0 + 47 * HOUR),
      cdr(1, T0, T0 + 1000, 10, 10), // still within 48 hours of the first copy
    ]);
    expect(out.duplicates).toBe(2);
    expect(out.events.filter((e) => e.event_type.id === 1)).toHaveLength(2);
    expect(out.usage.filter((u) => u.record.traffic_type.description === 'Data')).toHaveLength(1);
  });

  it('skips a repeated signaling transaction, and dead-letters a CDR opened before 2000', () => {
    const { out } = fold([
      signaling('UPDATE_LOCATION', T0),
      signaling('UPDATE_LOCATION', T0),
      cdr(1, 0, T0, 10, 10),
    ]);
    expect(out.events).toHaveLength(1);
    expect(out.duplicates).toBe(1);
    expect(out.deadLetters.map((d) => d.reason_code)).toEqual(['IMPOSSIBLE_TIMESTAMP']);
  });
});

describe('monthly reset on the 1st', () => {
  it('unblocks an endpoint blocked by its monthly limit when event time reaches the 1st, whoever sent the record', () => {
    const world = worldWithDataLimit();
    const feb = Date.UTC(2026, 1, 1, 0, 5);
    const { out } = fold(
      [
        cdr(1, T0, T0 + 1000, 2_000_000, 0),
        signaling('UPDATE_LOCATION', feb, { imsi: '295050000000103' }),
        // 27 days later than the first: the clock guard applies the one before once this follows.
        signaling('UPDATE_LOCATION', feb + 1000, { imsi: '295050000000104', record_id: 'r-next' }),
      ],
      world,
    );
    expect(
      out.enforcement.map((c) => [c.action, c.endpoint_id, new Date(c.timestamp).toISOString()]),
    ).toEqual([
      ['BLOCK', 1, '2026-01-05T00:00:01.000Z'],
      ['UNBLOCK', 1, '2026-02-01T00:00:00.000Z'],
    ]);
  });
});

describe('blocks from different rules', () => {
  it('keeps an endpoint blocked by its monthly limit when its exhausted quota is topped up', () => {
    const world = worldWithDataLimit();
    const quota = (fields: Partial<import('../src/contracts/raw.js').EngineCommand>): RawRecord => ({
      kind: 'command',
      record: {
        command_id: `c-${fields.type}`,
        timestamp: T0,
        type: 'QUOTA_ASSIGN',
        endpoint_id: 1,
        service: 'DATA',
        volume: '1',
        expiry_date: T0 + 40 * 24 * HOUR,
        threshold_percentage: null,
        action_on_exhaustion: 'BLOCK',
        peak_throughput: null,
        auto_refill: false,
        issued_by: null,
        ...fields,
      },
    });
    const feb = Date.UTC(2026, 1, 1, 0, 5);
    const { out } = fold(
      [
        quota({}),
        cdr(1, T0, T0 + 1000, 2_000_000, 0), // uses the 1 MB quota up and passes the 1 MB limit
        quota({ type: 'QUOTA_TOP_UP', volume: '10', timestamp: T0 + 2000 }), // the quota no longer blocks, the limit still does
        signaling('UPDATE_LOCATION', feb, { imsi: '295050000000103' }), // the 1st: the limit lets go too
        signaling('UPDATE_LOCATION', feb + 1000, { imsi: '295050000000104', record_id: 'r-next' }), // confirms the jump
      ],
      world,
    );
    expect(out.enforcement.map((c) => [c.action, c.scope, new Date(c.timestamp).toISOString()])).toEqual([
      ['BLOCK', 'DATA', '2026-01-05T00:00:01.000Z'],
      ['BLOCK', 'DATA', '2026-01-05T00:00:01.000Z'],
      ['UNBLOCK', 'DATA', '2026-02-01T00:00:00.000Z'],
    ]);
  });
});

describe('the clock guard: a record far ahead of the partition waits for the next ones', () => {
  const DAY = 24 * HOUR;
  const other = (t: number, id: string) =>
    signaling('UPDATE_LOCATION', t, { imsi: '295050000000103', record_id: id });

  it('dead-letters a record whose clock is years ahead, and the partition goes on as before', () => {
    const world = worldWithDataLimit();
    const year2099 = Date.UTC(2099, 0, 1);
    const { folder, out } = fold(
      [
        cdr(1, T0, T0 + 1000, 600_000, 0),
        cdr(2, year2099 - 1000, year2099, 1000, 0), // a core node with a wrong clock
        other(T0 + 2000, 'a'),
        other(T0 + 3000, 'b'),
        other(T0 + 4000, 'c'),
        cdr(1, T0, T0 + 1000, 600_000, 0), // a repeat: still recognised
        cdr(3, T0 + 5000, T0 + 6000, 600_000, 0), // 1.2 MB in January: over the 1 MB limit
      ],
      world,
    );
    expect(folder.state.watermark).toBe(T0 + 6000);
    expect(folder.state.held).toBeUndefined();
    expect(out.deadLetters).toEqual([
      expect.objectContaining({
        id: outputId(0, 1, 0),
        reason_code: 'FUTURE_TIMESTAMP',
        held: { offset: 1, raw: expect.objectContaining({ kind: 'data_cdr' }) },
      }),
    ]);
    expect(out.deadLetters[0]?.reason).toMatch(
      /^data_cdr record at 2099-01-01T00:00:00.000Z is \d+ h ahead of the partition's event time \(2026-01-05T00:00:03.000Z\), more than 168 h, and the next 3 records did not follow it/,
    );
    expect(out.duplicates).toBe(1);
    expect(out.usage.map((u) => u.record.id)).toEqual([outputId(0, 0, 0), expect.any(Number)]);
    // The monthly limit still counts January: the 2099 record did not move the endpoint's month.
    expect(out.events.map((e) => e.event_type.id)).toContain(11);
    expect(CONFIRM_WITHIN).toBe(3);
  });

  it('applies a held record once the next record shows the jump is real, with the ids of its own position', () => {
    const later = T0 + 30 * DAY;
    const records = [signaling('UPDATE_LOCATION', T0), other(later, 'jump'), other(later + 1000, 'next')];
    const { folder, out } = fold(records);
    expect(out.events.map((e) => [e.id, e.timestamp])).toEqual([
      [outputId(0, 0, 0), '2026-01-05T00:00:00.000Z'],
      [outputId(0, 1, 0), '2026-02-04T00:00:00.000Z'],
      [outputId(0, 2, 0), '2026-02-04T00:00:01.000Z'],
    ]);
    expect(folder.state.watermark).toBe(later + 1000);
    // Until then it waits in the state (and so in snapshots), not applied.
    const waiting = fold(records.slice(0, 2));
    expect(waiting.out.events).toHaveLength(1);
    expect(waiting.folder.state.held).toEqual([{ raw: records[1], offset: 1, misses: 0 }]);
    expect(MAX_LEAP_MS).toBe(7 * DAY);
  });

  it("gives a held record's own dead letters its position, not the one of the record that confirmed it", () => {
    const later = T0 + 30 * DAY;
    const { out } = fold([
      signaling('UPDATE_LOCATION', T0),
      signaling('UPDATE_LOCATION', later, { imsi: '001019999999999', record_id: 'stranger' }),
      other(later + 1000, 'next'),
    ]);
    expect(out.deadLetters).toEqual([
      expect.objectContaining({
        id: outputId(0, 1, 0),
        reason_code: 'UNKNOWN_IMSI',
        held: { offset: 1, raw: expect.objectContaining({ kind: 'signaling' }) },
      }),
    ]);
  });

  it('lets a record up to 7 days ahead through at once', () => {
    const { out } = fold([signaling('UPDATE_LOCATION', T0), other(T0 + 7 * DAY, 'week')]);
    expect(out.events).toHaveLength(2);
  });
});
