import { describe, expect, it } from 'vitest';
import {
  type DataCdr,
  type EnforcementCommand,
  eventTime,
  type RawRecord,
  type SignalingRecord,
} from '../src/contracts/raw.js';
import { Directory } from '../src/reference/directory.js';
import { generateReferenceData } from '../src/reference/generator.js';
import { CORE_RULES } from '../src/simulator/simulator.js';
import { HOUR, imsiOf, runAll, simulator, smallWorld, T0 } from './fixtures.js';

const signalingOf = (records: RawRecord[], imsis?: Set<string>) =>
  records
    .filter(
      (r): r is { kind: 'signaling'; record: SignalingRecord } =>
        r.kind === 'signaling' && (!imsis || imsis.has(r.record.imsi)),
    )
    .map((r) => r.record);
const cdrsOf = (records: RawRecord[]) =>
  records
    .filter((r): r is { kind: 'data_cdr'; record: DataCdr } => r.kind === 'data_cdr')
    .map((r) => r.record);

function imsisOfEndpoint(index: number, reference = smallWorld()): Set<string> {
  return new Set(new Directory(reference).sim(index).imsis.map((i) => i.imsi));
}

describe('core simulator: determinism', () => {
  it('gives the same records for the same seed, different ones for another seed', () => {
    const reference = generateReferenceData({ devices: 300, seed: 5 });
    const a = runAll(simulator(reference, { seed: 11, durationMs: 6 * HOUR }));
    const b = runAll(simulator(reference, { seed: 11, durationMs: 6 * HOUR }));
    const c = runAll(simulator(reference, { seed: 12, durationMs: 6 * HOUR }));
    expect(a.length).toBeGreaterThan(1000);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('does not depend on the batch size used to pull records', () => {
    const reference = generateReferenceData({ devices: 100, seed: 5 });
    const whole = runAll(simulator(reference, { durationMs: 3 * HOUR }));
    const sim = simulator(reference, { durationMs: 3 * HOUR });
    const pieces: RawRecord[] = [];
    while (sim.generate(pieces, 7)) {
      // pull in tiny batches
    }
    expect(pieces).toEqual(whole);
  });

  it('keeps each device in time order and inside the simulated window', () => {
    const reference = generateReferenceData({ devices: 500, seed: 5 });
    const records = runAll(simulator(reference, { durationMs: 12 * HOUR, lateCdrRate: 0 }));
    const last = new Map<string, number>();
    for (const r of records) {
      const t = eventTime(r);
      expect(t).toBeGreaterThanOrEqual(T0);
      expect(t).toBeLessThan(T0 + 12 * HOUR + 60_000);
      const key = imsiOf(r);
      expect(t).toBeGreaterThanOrEqual(last.get(key) ?? 0);
      last.set(key, t);
    }
  });
});

describe('core simulator: sessions and CDRs', () => {
  const reference = generateReferenceData({ devices: 400, seed: 8 });
  const records = runAll(
    simulator(reference, { durationMs: 24 * HOUR, lateCdrRate: 0, duplicateCdrRate: 0 }),
  );
  const creates = new Map<number, SignalingRecord>();
  const deletes = new Map<number, SignalingRecord>();
  for (const s of signalingOf(records)) {
    if (s.type === 'CREATE_PDP_CONTEXT' && s.result === 'ACCEPTED') creates.set(s.charging_id as number, s);
    if (s.type === 'DELETE_PDP_CONTEXT') deletes.set(s.charging_id as number, s);
  }
  const sessions = new Map<number, DataCdr[]>();
  for (const cdr of cdrsOf(records))
    sessions.set(cdr.chargingID, [...(sessions.get(cdr.chargingID) ?? []), cdr]);

  it('cuts interim CDRs on the 45 s grid, each with at least 100 KB, then a final CDR at Delete PDP Context', () => {
    let interims = 0;
    let closed = 0;
    for (const [charging, cdrs] of sessions) {
      const create = creates.get(charging) as SignalingRecord;
      expect(create, `Create PDP Context of session ${charging}`).toBeDefined();
      expect(cdrs.map((c) => c.recordSequenceNumber)).toEqual(cdrs.map((_, k) => k + 1));
      expect(cdrs[0]?.recordOpeningTime).toBe(create.timestamp);
      cdrs.forEach((cdr, k) => {
        if (k > 0) expect(cdr.recordOpeningTime).toBe(cdrs[k - 1]?.timeOfLastUsage);
        expect(cdr.dataVolumeUplink).toBeGreaterThanOrEqual(0);
        expect(cdr.dataVolumeDownlink).toBeGreaterThanOrEqual(0);
        if (cdr.causeForRecClosing === 17) {
          interims++;
          expect((cdr.timeOfLastUsage - create.timestamp) % CORE_RULES.interimPeriodMs).toBe(0);
          expect(cdr.dataVolumeUplink + cdr.dataVolumeDownlink).toBeGreaterThanOrEqual(100 * 1024);
        }
      });
      const final = cdrs[cdrs.length - 1] as DataCdr;
      const del = deletes.get(charging);
      if (del) {
        closed++;
        expect(final.causeForRecClosing).toBe(0);
        expect(final.timeOfLastUsage).toBe(del.timestamp);
        expect(cdrs.slice(0, -1).every((c) => c.causeForRecClosing === 17)).toBe(true);
      }
    }
    expect(interims).toBeGreaterThan(100);
    expect(closed).toBeGreaterThan(100);
  });

  it('never cuts an interim record while less than 100 KB accumulated at an earlier 45 s mark', () => {
    // With a constant rate per session, the record must be at the first grid mark reaching 100 KB.
    for (const cdrs of sessions.values()) {
      const first = cdrs[0] as DataCdr;
      const total = cdrs.reduce((n, c) => n + c.dataVolumeUplink + c.dataVolumeDownlink, 0);
      const last = cdrs[cdrs.length - 1] as DataCdr;
      const rate = total / (last.timeOfLastUsage - first.recordOpeningTime);
      for (const cdr of cdrs.filter((c) => c.causeForRecClosing === 17)) {
        const previousMark = cdr.timeOfLastUsage - CORE_RULES.interimPeriodMs;
        if (previousMark <= cdr.recordOpeningTime) continue;
        const beforeMark = rate * (previousMark - cdr.recordOpeningTime);
        expect(beforeMark).toBeLessThan(100 * 1024 + 2);
      }
    }
  });

  it('produces the heavy-tailed volumes of a real fleet: few devices carry most bytes', () => {
    const perDevice = new Map<string, number>();
    for (const c of cdrsOf(records))
      perDevice.set(
        c.servedIMSI,
        (perDevice.get(c.servedIMSI) ?? 0) + c.dataVolumeUplink + c.dataVolumeDownlink,
      );
    const volumes = [...perDevice.values()].sort((a, b) => b - a);
    const total = volumes.reduce((a, b) => a + b, 0);
    const topTenth = volumes.slice(0, Math.ceil(volumes.length / 10)).reduce((a, b) => a + b, 0);
    expect(topTenth / total).toBeGreaterThan(0.5);
    expect(volumes[Math.floor(volumes.length / 2)]).toBeLessThan(total / volumes.length);
  });

  it('starts every device with Update Location then Update GPRS Location', () => {
    const firstTwo = new Map<string, string[]>();
    for (const s of signalingOf(records)) {
      const seen = firstTwo.get(s.imsi) ?? [];
      if (seen.length < 2 && s.result === 'ACCEPTED') firstTwo.set(s.imsi, [...seen, s.type]);
    }
    for (const types of firstTwo.values()) expect(types).toEqual(['UPDATE_LOCATION', 'UPDATE_GPRS_LOCATION']);
  });

  it('follows the day: fewer sessions at night than in the working day (local time)', () => {
    const byHour = new Array(24).fill(0);
    for (const s of signalingOf(records))
      if (s.type === 'CREATE_PDP_CONTEXT') byHour[new Date(s.timestamp).getUTCHours()]++;
    const night = byHour[1] + byHour[2] + byHour[3];
    const day = byHour[9] + byHour[10] + byHour[11];
    expect(night).toBeLessThan(day * 0.8);
  });
});

describe('core simulator: mobility, coverage and failures', () => {
  it('switches IMSI with the multi-IMSI applet when moving between regions, purging the old one', () => {
    const world = smallWorld();
    const records = runAll(simulator(world, { durationMs: 21 * 24 * HOUR }));
    const imsis = imsisOfEndpoint(1, world); // the tracker with 3 IMSIs
    const [global, europe, americas] = [...new Directory(world).sim(1).imsis.map((i) => i.imsi)];
    const registrations = signalingOf(records, imsis).filter(
      (s) => s.type === 'UPDATE_LOCATION' && s.result === 'ACCEPTED',
    );
    const used = new Set(registrations.map((s) => s.imsi));
    expect(used).toEqual(new Set([europe, americas]));
    expect(used.has(global as string)).toBe(false);
    for (const s of registrations) expect(s.imsi).toBe(s.visited_mcc === '310' ? americas : europe);
    const signals = signalingOf(records, imsis);
    let switches = 0;
    signals.forEach((s, k) => {
      const previous = signals
        .slice(0, k)
        .reverse()
        .find((p) => p.type === 'UPDATE_LOCATION' && p.result === 'ACCEPTED');
      if (s.type === 'UPDATE_LOCATION' && s.result === 'ACCEPTED' && previous && previous.imsi !== s.imsi) {
        switches++;
        const purge = signals
          .slice(0, k)
          .reverse()
          .find((p) => p.type === 'PURGE_LOCATION');
        expect(purge?.imsi).toBe(previous.imsi);
      }
    });
    expect(switches).toBeGreaterThan(0);
    expect(signals.some((s) => s.type === 'PURGE_LOCATION' && s.cause === 'IMSI_SWITCH')).toBe(true);
  });

  it('rejects registration outside the tariff profile with roaming not allowed, then tries another network', () => {
    const world = smallWorld();
    const records = runAll(simulator(world, { durationMs: 24 * HOUR }));
    // Endpoint index 3: US, profile covers AT&T but not T-Mobile.
    const partly = signalingOf(records, imsisOfEndpoint(3, world)).filter(
      (s) => s.type === 'UPDATE_LOCATION',
    );
    const rejected = partly.filter((s) => s.result === 'REJECTED');
    expect(rejected.length).toBeGreaterThan(0);
    for (const s of rejected)
      expect([s.visited_mnc, s.cause, s.cause_code]).toEqual(['260', 'ROAMING_NOT_ALLOWED', 8]);
    expect(partly.filter((s) => s.result === 'ACCEPTED').every((s) => s.visited_mnc === '410')).toBe(true);
    // Endpoint index 4: US with a Europe-only profile: never registers, never opens a session.
    const never = signalingOf(records, imsisOfEndpoint(4, world));
    expect(never.length).toBeGreaterThan(2);
    expect(never.every((s) => s.type === 'UPDATE_LOCATION' && s.cause === 'ROAMING_NOT_ALLOWED')).toBe(true);
  });

  it('purges a device that stays silent, then re-attaches it when it wakes', () => {
    const world = smallWorld();
    const records = runAll(simulator(world, { durationMs: 7 * 24 * HOUR }));
    const purges = signalingOf(records).filter(
      (s) => s.type === 'PURGE_LOCATION' && s.cause === 'INACTIVITY',
    );
    expect(purges.length).toBeGreaterThan(0);
    for (const purge of purges) {
      const signals = signalingOf(records, new Set([purge.imsi]));
      const k = signals.indexOf(purge);
      expect(signals[k + 1]?.type).toBe('PURGE_GPRS_LOCATION');
      const before = [
        ...records.filter((r) => imsiOf(r) === purge.imsi && eventTime(r) < purge.timestamp),
      ].pop();
      expect(purge.timestamp - eventTime(before as RawRecord)).toBeGreaterThanOrEqual(
        CORE_RULES.purgeAfterMs - 1000,
      );
      const after = signals.slice(k + 2).find((s) => s.type !== 'PURGE_GPRS_LOCATION');
      if (after) expect(after.type).toBe('UPDATE_LOCATION');
    }
  });

  it('writes SMS MO and MT records, and refuses MO where the service profile disables it', () => {
    const world = smallWorld();
    const records = runAll(simulator(world, { durationMs: 14 * 24 * HOUR }));
    const sms = records
      .filter((r) => r.kind === 'sms')
      .map((r) => r.record as import('../src/contracts/raw.js').SmsRecord);
    expect(sms.some((s) => s.direction === 'MO' && s.delivered)).toBe(true);
    expect(sms.some((s) => s.direction === 'MT' && s.delivered)).toBe(true);
    const noMo = imsisOfEndpoint(5, world);
    const fromNoMo = sms.filter((s) => noMo.has(s.imsi) && s.direction === 'MO');
    expect(fromNoMo.length).toBeGreaterThan(0);
    expect(fromNoMo.every((s) => !s.delivered && s.cause === 'teleserviceNotProvisioned')).toBe(true);
  });

  it('produces every failure kind with its cause in a generated fleet', () => {
    const reference = generateReferenceData({ devices: 1000, seed: 7 });
    const records = runAll(simulator(reference, { seed: 7, durationMs: 6 * HOUR }));
    const rejections = new Set(
      signalingOf(records)
        .filter((s) => s.result === 'REJECTED')
        .map((s) => `${s.type}:${s.cause}`),
    );
    expect(rejections).toContain('UPDATE_LOCATION:ROAMING_NOT_ALLOWED');
    expect(rejections).toContain('UPDATE_LOCATION:AUTHENTICATION_FAILURE');
    expect(rejections).toContain('CREATE_PDP_CONTEXT:USER_AUTHENTICATION_FAILED');
    expect(rejections).toContain('CREATE_PDP_CONTEXT:NO_RESOURCES');
  });

  it('repeats some CDRs (mediation retries) and delivers some final CDRs after the Delete PDP Context', () => {
    const reference = generateReferenceData({ devices: 300, seed: 2 });
    const records = runAll(
      simulator(reference, { durationMs: 12 * HOUR, lateCdrRate: 0.2, duplicateCdrRate: 0.2 }),
    );
    const keys = cdrsOf(records).map((c) => `${c.nodeID}/${c.chargingID}/${c.recordSequenceNumber}`);
    expect(new Set(keys).size).toBeLessThan(keys.length);
    let late = 0;
    records.forEach((r, k) => {
      if (r.kind === 'data_cdr' && r.record.causeForRecClosing === 0) {
        const previous = records
          .slice(Math.max(0, k - 3), k)
          .find(
            (p) =>
              p.kind === 'signaling' &&
              p.record.type === 'DELETE_PDP_CONTEXT' &&
              p.record.charging_id === r.record.chargingID,
          );
        if (previous) late++;
      }
    });
    expect(late).toBeGreaterThan(0);
  });
});

describe('core simulator: enforcement commands', () => {
  const world = smallWorld();
  /** Runs until the gateway (endpoint 3, index 2) is online, returns the records so far. */
  function untilOnline() {
    const sim = simulator(world, { durationMs: 3 * 24 * HOUR });
    const out: RawRecord[] = [];
    while (sim.connectivity(2) !== 'Online') sim.generate(out, 1);
    return { sim, out };
  }
  const command = (
    action: EnforcementCommand['action'],
    timestamp: number,
    extra: Partial<EnforcementCommand> = {},
  ): EnforcementCommand => ({
    command_id: `test-${action}`,
    timestamp,
    action,
    scope: 'DATA',
    level: 'ENDPOINT',
    endpoint_id: 3,
    imsis: [...imsisOfEndpoint(2, world)],
    peak_throughput: null,
    reason: 'test',
    cause_event_id: null,
    ...extra,
  });

  it('BLOCK tears the session down at once and rejects every later Create PDP Context; UNBLOCK lifts it', () => {
    const { sim, out } = untilOnline();
    const at = sim.now + 1000;
    sim.enforce(command('BLOCK', at));
    sim.enforce(command('UNBLOCK', at + 24 * HOUR));
    while (sim.generate(out, 10_000)) {
      // run to the end
    }
    const imsis = imsisOfEndpoint(2, world);
    const mine = out.filter((r) => imsis.has(imsiOf(r)));
    const teardown = mine.find((r) => eventTime(r) === at && r.kind === 'data_cdr');
    expect((teardown as { record: DataCdr } | undefined)?.record.causeForRecClosing).toBe(20);
    const del = signalingOf(mine).find((s) => s.type === 'DELETE_PDP_CONTEXT' && s.timestamp === at);
    expect(del?.cause).toBe('MANAGEMENT_INTERVENTION');
    const blocked = signalingOf(mine).filter(
      (s) => s.type === 'CREATE_PDP_CONTEXT' && s.timestamp > at && s.timestamp < at + 24 * HOUR,
    );
    expect(blocked.length).toBeGreaterThan(0);
    expect(
      blocked.every(
        (s) => s.result === 'REJECTED' && s.cause === 'SERVICE_NOT_ALLOWED' && s.cause_code === 200,
      ),
    ).toBe(true);
    expect(cdrsOf(mine).some((c) => c.timeOfLastUsage > at && c.timeOfLastUsage < at + 24 * HOUR)).toBe(
      false,
    );
    const after = signalingOf(mine).filter(
      (s) => s.type === 'CREATE_PDP_CONTEXT' && s.timestamp > at + 24 * HOUR,
    );
    expect(after.some((s) => s.result === 'ACCEPTED')).toBe(true);
  });

  it("keeps the endpoint's own block and its organisation's apart: each UNBLOCK lifts only its level", () => {
    const { sim, out } = untilOnline();
    const at = sim.now + 1000;
    const hours = (n: number) => at + n * HOUR;
    // Organisation blocked from 0 h to 12 h, the endpoint itself (quota) from 6 h to 18 h.
    sim.enforce(command('BLOCK', hours(0), { level: 'ORGANISATION', command_id: 'org-block' }));
    sim.enforce(command('BLOCK', hours(6), { command_id: 'quota-block' }));
    sim.enforce(command('UNBLOCK', hours(12), { level: 'ORGANISATION', command_id: 'org-unblock' }));
    sim.enforce(command('UNBLOCK', hours(18), { command_id: 'quota-unblock' }));
    while (sim.generate(out, 10_000)) {
      // run to the end
    }
    const creates = signalingOf(out, imsisOfEndpoint(2, world)).filter(
      (s) => s.type === 'CREATE_PDP_CONTEXT' && s.timestamp > at,
    );
    const between = (from: number, to: number) =>
      creates.filter((s) => s.timestamp > hours(from) && s.timestamp < hours(to));
    expect(between(0, 18).length).toBeGreaterThan(0);
    expect(between(0, 18).every((s) => s.result === 'REJECTED')).toBe(true);
    expect(between(18, 72).some((s) => s.result === 'ACCEPTED')).toBe(true);
  });

  it('THROTTLE reconnects the device with sessions capped at the peak throughput', () => {
    const { sim, out } = untilOnline();
    const at = sim.now + 1000;
    sim.enforce(command('THROTTLE', at, { peak_throughput: 64_000 }));
    while (sim.generate(out, 10_000)) {
      // run to the end
    }
    const mine = out.filter((r) => imsisOfEndpoint(2, world).has(imsiOf(r)));
    const later = cdrsOf(mine).filter((c) => c.recordOpeningTime > at);
    expect(later.length).toBeGreaterThan(0);
    const bySession = new Map<number, DataCdr[]>();
    for (const c of later) bySession.set(c.chargingID, [...(bySession.get(c.chargingID) ?? []), c]);
    for (const cdrs of bySession.values()) {
      const bytes = cdrs.reduce((n, c) => n + c.dataVolumeUplink + c.dataVolumeDownlink, 0);
      const seconds =
        ((cdrs[cdrs.length - 1] as DataCdr).timeOfLastUsage - (cdrs[0] as DataCdr).recordOpeningTime) / 1000;
      expect(bytes).toBeLessThanOrEqual((64_000 / 8) * seconds + 1);
    }
    const reconnect = signalingOf(mine).find((s) => s.type === 'CREATE_PDP_CONTEXT' && s.timestamp > at);
    expect((reconnect?.timestamp as number) - at).toBeLessThanOrEqual(30_000);
  });

  it('DISCONNECT ends the session once and the device reconnects', () => {
    const { sim, out } = untilOnline();
    const at = sim.now + 500;
    sim.enforce(command('DISCONNECT', at));
    while (sim.generate(out, 10_000)) {
      // run to the end
    }
    const mine = signalingOf(out, imsisOfEndpoint(2, world));
    expect(mine.find((s) => s.type === 'DELETE_PDP_CONTEXT' && s.timestamp === at)?.cause).toBe(
      'MANAGEMENT_INTERVENTION',
    );
    const next = mine.find((s) => s.type === 'CREATE_PDP_CONTEXT' && s.timestamp > at);
    expect(next?.result).toBe('ACCEPTED');
  });

  it('ignores a command for an endpoint it does not know', () => {
    const sim = simulator(world, { durationMs: HOUR });
    sim.enforce(command('BLOCK', T0, { endpoint_id: 999 }));
    runAll(sim);
    expect(sim.stats.enforcementApplied).toBe(0);
  });
});
