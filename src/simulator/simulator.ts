import {
  type Cause,
  CauseForRecClosing,
  type DataCdr,
  type EnforcementCommand,
  type RawRecord,
  type SignalingRecord,
  type SignalingType,
  type SmsRecord,
} from '../contracts/raw.js';
import type { Directory } from '../reference/directory.js';
import type { DeviceProfile, Operator } from '../reference/types.js';
import { hash32, seedOf } from '../util/random.js';
import { TimerHeap } from './heap.js';
import { DIURNAL_LOAD, PROFILES, type ProfileParameters } from './profiles.js';

// Device connectivity states (emnify glossary: Offline, Attached, Online).
const OFFLINE = 0;
const ATTACHED = 1;
const ONLINE = 2;

// What a device does at its next action timer.
const ACT_ATTACH = 0;
const ACT_SESSION = 1;
const ACT_TICK = 2;
const ACT_PURGE = 3;

// Policy flags set by enforcement commands. Blocks are kept per level (the endpoint's own
// rules, its organisation's cost limit): an UNBLOCK lifts only its own level's.
const DATA_BLOCKED = 1;
const SMS_BLOCKED = 2;
const THROTTLED = 4;
const ORG_DATA_BLOCKED = 8;
const ORG_SMS_BLOCKED = 16;
const ANY_DATA_BLOCK = DATA_BLOCKED | ORG_DATA_BLOCKED;
const ANY_SMS_BLOCK = SMS_BLOCKED | ORG_SMS_BLOCKED;
/** A device configured with a wrong APN: all its sessions are rejected. */
const WRONG_APN = 0x80;

const PROFILE_NAMES: DeviceProfile[] = ['meter', 'tracker', 'gateway'];

/** The two PGWs of the simulated core, by breakout region. */
const PGWS = [
  { node: 'pgw-eu-west-1a', address: '100.64.0.10', index: 0 },
  { node: 'pgw-us-east-1a', address: '100.64.1.10', index: 1 },
] as const;
type Pgw = (typeof PGWS)[number];

/** Identifiers an open session repeats in every CDR, computed once per session. */
interface SessionIds {
  imsi: string;
  imeisv: string | null;
  msisdn: string | null;
  ip: string | null;
  plmn: string;
  sgsn: string;
  pgw: Pgw;
}

/** Rules of the core, in one place. Times in ms, volumes in bytes. */
export const CORE_RULES = {
  /** Interim CDRs are cut on this grid of session time... */
  interimPeriodMs: 45_000,
  /** ...once at least this much was used since the previous record. */
  interimMinBytes: 100 * 1024,
  /** The VLR/SGSN purges a device not heard from for this long (implicit detach). */
  purgeAfterMs: 4 * 3600_000,
  /** Periodic re-registration (Update Location again in the same network). */
  reregistrationMs: 8 * 3600_000,
  /** A device that could not attach tries again after this long. */
  attachRetryMs: 20 * 60_000,
  /** Probability, per session, that a device powers off for hours afterwards. */
  powerOffChance: 0.02,
  /** Background rejection rates of the core. */
  attachAuthFailureChance: 0.002,
  pdpNoResourcesChance: 0.003,
  pdpAuthFailureChance: 0.002,
  /** Share of international moves that go to any country, not one of the deployment's. */
  farMoveShare: 0.15,
  /** Share of devices configured with a wrong APN (their sessions are rejected). */
  wrongApnShare: 0.003,
} as const;

export interface SimulatorOptions {
  directory: Directory;
  seed: number | string;
  /** Virtual start time, ms since epoch. */
  start: number;
  /** Virtual duration, ms. */
  durationMs: number;
  /** Share of final CDRs the mediation delivers after the Delete PDP Context (late). */
  lateCdrRate?: number;
  /** Share of CDRs the mediation delivers twice (a retry). */
  duplicateCdrRate?: number;
}

export interface SimulatorStats {
  records: number;
  byKind: Record<string, number>;
  bySignaling: Record<string, number>;
  rejected: Record<string, number>;
  sms: { MO: number; MT: number; undelivered: number };
  imsiSwitches: number;
  enforcementApplied: number;
}

/**
 * The core simulator: a deterministic fold of device behaviour on a virtual clock. Every
 * device has one action timer (attach, start a session, cut a CDR, purge) and one SMS
 * timer; a heap orders them. Per-device randomness is a hash of (seed, device, counter),
 * so a device's behaviour does not depend on how many other devices there are.
 */
export class CoreSimulator {
  readonly start: number;
  readonly end: number;
  readonly lateCdrRate: number;
  readonly duplicateCdrRate: number;
  private readonly dir: Directory;
  private readonly seed: number;
  private readonly n: number;
  private readonly heap: TimerHeap;
  private readonly operators: readonly Operator[];
  private readonly operatorIndex = new Map<number, number>();
  /** country index -> operator indexes */
  private readonly operatorsByCountry: number[][];
  private readonly countryByIso = new Map<string, number>();

  // Static per-device parameters.
  private readonly profile: Uint8Array;
  private readonly intervalS: Float32Array;
  private readonly volumeFactor: Float32Array;
  private readonly uplinkShare: Float32Array;
  private readonly home: Uint16Array;

  // Dynamic per-device state.
  private readonly state: Uint8Array;
  private readonly action: Uint8Array;
  private readonly slot: Uint8Array;
  private readonly flags: Uint8Array;
  private readonly rat: Uint8Array;
  private readonly country: Uint16Array;
  private readonly operator: Uint16Array;
  private readonly throttleBps: Uint32Array;
  private readonly draws: Uint32Array;
  private readonly cell: Int32Array;
  private readonly tAction: Float64Array;
  private readonly tSms: Float64Array;
  private readonly tResume: Float64Array;
  private readonly lastRegistration: Float64Array;
  private readonly lastSeen: Float64Array;
  /** Time of the device's latest record: nothing of the device is emitted before it. */
  private readonly busy: Float64Array;
  // Open session.
  private readonly sStart: Float64Array;
  private readonly sEnd: Float64Array;
  private readonly sBytesPerMs: Float64Array;
  private readonly sCutTime: Float64Array;
  private readonly sCutBytes: Float64Array;
  private readonly sSeq: Uint16Array;
  private readonly sCharging: Uint32Array;
  private readonly sessionIds: (SessionIds | undefined)[] = [];

  private readonly commands: EnforcementCommand[] = [];
  private nextChargingId: number;
  private signalingSeq = 0;
  private smsSeq = 0;
  /** Running CDR number per PGW node. */
  private readonly pgwSeq = new Float64Array(2);
  private clock: number;
  private out: RawRecord[] = [];
  readonly stats: SimulatorStats = {
    records: 0,
    byKind: { signaling: 0, data_cdr: 0, sms: 0 },
    bySignaling: {},
    rejected: {},
    sms: { MO: 0, MT: 0, undelivered: 0 },
    imsiSwitches: 0,
    enforcementApplied: 0,
  };

  constructor(options: SimulatorOptions) {
    const dir = options.directory;
    this.dir = dir;
    this.seed = seedOf(`simulate:${options.seed}`);
    this.start = options.start;
    this.end = options.start + options.durationMs;
    this.clock = options.start;
    this.lateCdrRate = options.lateCdrRate ?? 0.01;
    this.duplicateCdrRate = options.duplicateCdrRate ?? 0.002;
    this.nextChargingId = hash32(this.seed, 77) & 0x3fffffff;
    this.operators = dir.operators;
    dir.operators.forEach((op, i) => {
      this.operatorIndex.set(op.id, i);
    });
    this.operatorsByCountry = dir.countries.map((c) =>
      dir.operatorsIn(c.iso_code).map((op) => this.operatorIndex.get(op.id) as number),
    );
    dir.countries.forEach((c, i) => {
      this.countryByIso.set(c.iso_code, i);
    });

    const n = dir.endpointCount;
    this.n = n;
    this.profile = new Uint8Array(n);
    this.intervalS = new Float32Array(n);
    this.volumeFactor = new Float32Array(n);
    this.uplinkShare = new Float32Array(n);
    this.home = new Uint16Array(n);
    this.state = new Uint8Array(n);
    this.action = new Uint8Array(n);
    this.slot = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.rat = new Uint8Array(n);
    this.country = new Uint16Array(n);
    this.operator = new Uint16Array(n);
    this.throttleBps = new Uint32Array(n);
    this.draws = new Uint32Array(n);
    this.cell = new Int32Array(n);
    this.tAction = new Float64Array(n);
    this.tSms = new Float64Array(n);
    this.tResume = new Float64Array(n);
    this.lastRegistration = new Float64Array(n);
    this.lastSeen = new Float64Array(n);
    this.busy = new Float64Array(n);
    this.sStart = new Float64Array(n);
    this.sEnd = new Float64Array(n);
    this.sBytesPerMs = new Float64Array(n);
    this.sCutTime = new Float64Array(n);
    this.sCutBytes = new Float64Array(n);
    this.sSeq = new Uint16Array(n);
    this.sCharging = new Uint32Array(n);
    this.heap = new TimerHeap(n + 1024);

    for (let i = 0; i < n; i++) this.initDevice(i);
  }

  /** Virtual time of the last processed step. */
  get now(): number {
    return this.clock;
  }

  get deviceCount(): number {
    return this.n;
  }

  /** Connectivity state of a device, for tests and progress: Offline, Attached or Online. */
  connectivity(index: number): 'Offline' | 'Attached' | 'Online' {
    return (['Offline', 'Attached', 'Online'] as const)[this.state[index] as number] as
      | 'Offline'
      | 'Attached'
      | 'Online';
  }

  activeImsiSlot(index: number): number {
    return this.slot[index] as number;
  }

  visitedCountry(index: number): string {
    return this.dir.countries[this.country[index] as number]?.iso_code ?? '';
  }

  /**
   * Queues an enforcement command from the engine. It takes effect at its timestamp (or
   * at the current virtual time if that has passed), before the device's next record.
   */
  enforce(command: EnforcementCommand): void {
    const at = Math.max(command.timestamp, this.clock);
    const queued = { ...command, timestamp: at };
    let i = this.commands.length;
    while (i > 0 && (this.commands[i - 1] as EnforcementCommand).timestamp > at) i--;
    this.commands.splice(i, 0, queued);
  }

  /** True while virtual time has not reached the end. */
  get running(): boolean {
    return (
      this.heap.peekTime() < this.end || (this.commands[0]?.timestamp ?? Number.POSITIVE_INFINITY) < this.end
    );
  }

  /**
   * Runs the simulation forward until `max` records were produced or virtual time reaches
   * `until` (default: the end), appending the records to `out`. Returns false once the
   * whole duration is simulated.
   */
  generate(out: RawRecord[], max: number, until = this.end): boolean {
    this.out = out;
    const limit = Math.min(until, this.end);
    const target = out.length + max;
    while (out.length < target) {
      const t = this.heap.peekTime();
      const command = this.commands[0];
      if (command && command.timestamp <= t && command.timestamp < limit) {
        this.commands.shift();
        this.clock = Math.max(this.clock, command.timestamp);
        this.applyCommand(command);
        continue;
      }
      if (t >= limit) {
        if (limit === until && until < this.end) this.clock = Math.max(this.clock, until);
        break;
      }
      const i = this.heap.peekDevice();
      this.heap.pop();
      // A device re-timed by a command leaves a stale heap entry behind; skip it.
      if (t !== this.nextWake(i)) continue;
      this.clock = t;
      const sms = (this.tSms[i] as number) < (this.tAction[i] as number);
      if (t <= (this.busy[i] as number)) {
        // Still finishing an earlier exchange (e.g. Update GPRS Location): come back right after.
        if (sms) this.tSms[i] = (this.busy[i] as number) + 1;
        else this.tAction[i] = (this.busy[i] as number) + 1;
      } else if (sms) this.onSms(i, t);
      else this.onAction(i, t);
      this.heap.push(this.nextWake(i), i);
    }
    return this.running;
  }

  // ---- randomness -------------------------------------------------------------------

  /** Next uniform draw in [0, 1) of device i. */
  private rand(i: number): number {
    const c = this.draws[i] as number;
    this.draws[i] = c + 1;
    return hash32(this.seed, i, c) / 4294967296;
  }

  /** A draw that depends only on (device, purpose): static device traits. */
  private trait(i: number, purpose: number): number {
    return hash32(this.seed ^ 0x5bd1e995, i, 0x10000 + purpose) / 4294967296;
  }

  private params(i: number): ProfileParameters {
    return PROFILES[PROFILE_NAMES[this.profile[i] as number] as DeviceProfile];
  }

  // ---- set-up -----------------------------------------------------------------------

  private initDevice(i: number): void {
    const deployment = this.dir.deployment(i);
    const profileName = deployment.profile ?? 'meter';
    this.profile[i] = PROFILE_NAMES.indexOf(profileName);
    const p = PROFILES[profileName];
    const [lo, hi] = p.sessionIntervalS;
    this.intervalS[i] = lo * (hi / lo) ** this.trait(i, 1);
    // Pareto(alpha 1.2) tail, capped: most devices near 1x, a few 100x and more.
    this.volumeFactor[i] = Math.min(500, 0.4 * (1 - this.trait(i, 2)) ** (-1 / 1.2));
    this.uplinkShare[i] = p.uplinkShare[0] + (p.uplinkShare[1] - p.uplinkShare[0]) * this.trait(i, 3);
    this.rat[i] = p.ratTypes[Math.floor(this.trait(i, 4) * p.ratTypes.length)] as number;
    if (this.trait(i, 5) < CORE_RULES.wrongApnShare) this.flags[i] = WRONG_APN;
    const homes = (deployment.countries ?? [])
      .map((iso) => this.countryByIso.get(iso))
      .filter((c) => c !== undefined);
    const home =
      homes.length > 0
        ? (homes[Math.floor(this.trait(i, 6) * homes.length)] as number)
        : Math.floor(this.trait(i, 6) * this.dir.countries.length);
    this.home[i] = home;
    this.country[i] = home;
    // Until it registers, the device counts as in the first network of its home country.
    this.operator[i] = this.operatorsByCountry[home]?.[0] ?? 0;
    this.state[i] = OFFLINE;
    // Devices come up spread over the first hour (or their first interval, if shorter).
    const spread = Math.min(3600, this.intervalS[i] as number) * 1000;
    this.action[i] = ACT_ATTACH;
    this.tAction[i] = this.start + Math.floor(this.trait(i, 7) * spread);
    this.tSms[i] = this.start + this.smsGap(i, this.start);
    this.heap.push(this.nextWake(i), i);
  }

  private nextWake(i: number): number {
    const a = this.tAction[i] as number;
    const s = this.tSms[i] as number;
    return Math.min(s, a);
  }

  /** Load factor of the device's local hour. */
  private diurnal(i: number, t: number): number {
    const offset = this.dir.countries[this.country[i] as number]?.utc_offset_hours ?? 0;
    const hour = (Math.floor(t / 3600_000) + Math.round(offset) + 48) % 24;
    return DIURNAL_LOAD[hour] as number;
  }

  private smsGap(i: number, t: number): number {
    const p = this.params(i);
    const perDay = (p.smsMoPerDay + p.smsMtPerDay) * this.diurnal(i, t);
    // Exponential inter-arrival time, at least one second.
    return Math.max(1000, Math.floor((-Math.log(1 - this.rand(i)) / perDay) * 86_400_000));
  }

  // ---- record builders --------------------------------------------------------------

  private emit(i: number, record: RawRecord, time: number): void {
    if (time > (this.busy[i] as number)) this.busy[i] = time;
    this.out.push(record);
    this.stats.records++;
    this.stats.byKind[record.kind] = (this.stats.byKind[record.kind] ?? 0) + 1;
  }

  private signaling(
    i: number,
    t: number,
    type: SignalingType,
    fields: Partial<SignalingRecord> = {},
    slot = this.slot[i] as number,
  ): SignalingRecord {
    const op = this.operators[this.operator[i] as number] as Operator;
    const country = this.dir.countries[this.country[i] as number];
    const imei = this.dir.imei(i);
    const gprs = type !== 'UPDATE_LOCATION' && type !== 'PURGE_LOCATION';
    const record: SignalingRecord = {
      record_id: `core1-${(this.signalingSeq++).toString(36)}`,
      type,
      timestamp: t,
      imsi: this.dir.imsi(i, slot),
      imeisv: imei ? `${imei.slice(0, 14)}01` : null,
      result: 'ACCEPTED',
      cause: null,
      cause_code: null,
      visited_mcc: country?.mcc ?? '000',
      visited_mnc: op.mncs[0] as string,
      rat_type: this.rat[i] as number,
      lac: ((this.cell[i] as number) >>> 16) & 0xffff,
      cell_id: (this.cell[i] as number) & 0xffff,
      network_node: gprs ? this.sgsnAddress(i) : this.vlrAddress(i),
      charging_id: null,
      gateway_address: null,
      apn: null,
      pdp_address: null,
      nsapi: null,
      ...fields,
    };
    this.stats.bySignaling[type] = (this.stats.bySignaling[type] ?? 0) + 1;
    if (record.result === 'REJECTED') {
      const key = `${type}:${record.cause}`;
      this.stats.rejected[key] = (this.stats.rejected[key] ?? 0) + 1;
    }
    this.emit(i, { kind: 'signaling', record }, t);
    return record;
  }

  private vlrAddress(i: number): string {
    const country = this.dir.countries[this.country[i] as number];
    return `${country?.country_code ?? '0'}${String(1000 + (this.operator[i] as number)).slice(-3)}90000${(this.cell[i] as number) & 7}`;
  }

  private sgsnAddress(i: number): string {
    const op = this.operator[i] as number;
    return `${80 + (op % 120)}.${(op * 37) % 256}.${(op * 11) % 256}.${10 + ((this.cell[i] as number) & 3)}`;
  }

  private pgw(i: number): Pgw {
    const region = this.dir.serviceProfileOf(i).breakout_region ?? 'eu-west-1';
    return region.startsWith('us') ? PGWS[1] : PGWS[0];
  }

  // ---- the state machine ------------------------------------------------------------

  private onAction(i: number, t: number): void {
    switch (this.action[i]) {
      case ACT_ATTACH: {
        // A device that could not register (or was purged) may have moved meanwhile.
        const moved = this.movedTo(i, t);
        this.attach(i, t, moved < 0 ? (this.country[i] as number) : moved);
        break;
      }
      case ACT_SESSION:
        this.beginSession(i, t);
        break;
      case ACT_TICK:
        this.tick(i, t);
        break;
      case ACT_PURGE:
        this.purge(i, t, 'INACTIVITY');
        this.action[i] = ACT_ATTACH;
        this.tAction[i] = this.tResume[i] as number;
        break;
    }
  }

  /** The IMSI the multi-IMSI applet selects in a country: first IMSI preferred there, else the first. */
  private appletSlot(i: number, countryIndex: number): number {
    const region = this.dir.countries[countryIndex]?.region;
    const count = this.dir.imsiCount(i);
    for (let s = 1; s < count; s++) if (region && this.dir.preferredRegions(i, s).includes(region)) return s;
    return 0;
  }

  /**
   * Network selection and registration: Update Location then Update GPRS Location in the
   * visited network. Tries the country's operators in the device's preferred order; one
   * outside the tariff profile's ratezones rejects with roaming not allowed.
   */
  private attach(i: number, t: number, countryIndex: number): boolean {
    const wantedSlot = this.appletSlot(i, countryIndex);
    if (wantedSlot !== this.slot[i]) {
      // The applet switches IMSI: the old IMSI's registration is purged by the old network.
      if (this.state[i] !== OFFLINE) {
        this.purge(i, t, 'IMSI_SWITCH');
        t += 100;
      }
      if ((this.lastRegistration[i] as number) > 0) this.stats.imsiSwitches++;
      this.slot[i] = wantedSlot;
    }
    this.country[i] = countryIndex;
    const candidates = this.operatorsByCountry[countryIndex] ?? [];
    const tariffProfile = this.dir.tariffProfileIdOf(i);
    const first = Math.floor(this.rand(i) * candidates.length);
    let at = t;
    for (let k = 0; k < candidates.length; k++) {
      const opIndex = candidates[(first + k) % candidates.length] as number;
      this.operator[i] = opIndex;
      this.cell[i] = hash32(this.seed, i, opIndex ^ (this.draws[i] as number)) & 0x7fffffff;
      if (!this.dir.covers(tariffProfile, (this.operators[opIndex] as Operator).id)) {
        this.signaling(i, at, 'UPDATE_LOCATION', {
          result: 'REJECTED',
          cause: 'ROAMING_NOT_ALLOWED',
          cause_code: 8,
        });
        at += 2_000 + Math.floor(this.rand(i) * 8_000);
        continue;
      }
      if (this.rand(i) < CORE_RULES.attachAuthFailureChance) {
        this.signaling(i, at, 'UPDATE_LOCATION', { result: 'REJECTED', cause: 'AUTHENTICATION_FAILURE' });
        break;
      }
      this.signaling(i, at, 'UPDATE_LOCATION');
      this.signaling(i, at + 150 + Math.floor(this.rand(i) * 600), 'UPDATE_GPRS_LOCATION');
      this.state[i] = ATTACHED;
      this.lastRegistration[i] = at;
      this.lastSeen[i] = at;
      this.action[i] = ACT_SESSION;
      this.tAction[i] = at + 2_000 + Math.floor(this.rand(i) * 20_000);
      return true;
    }
    this.state[i] = OFFLINE;
    this.action[i] = ACT_ATTACH;
    this.tAction[i] = t + CORE_RULES.attachRetryMs + Math.floor(this.rand(i) * CORE_RULES.attachRetryMs);
    return false;
  }

  private purge(i: number, t: number, cause: Cause): void {
    this.signaling(i, t, 'PURGE_LOCATION', { cause });
    this.signaling(i, t + 50, 'PURGE_GPRS_LOCATION', { cause });
    this.state[i] = OFFLINE;
  }

  /** A device wakes up to send data: re-register or move if due, then Create PDP Context. */
  private beginSession(i: number, wake: number): void {
    let t = wake;
    const p = this.params(i);
    const moved = this.movedTo(i, t);
    if (moved >= 0) {
      // Register in the new network first; attach() schedules the session after it.
      this.state[i] = ATTACHED;
      this.attach(i, t, moved);
      return;
    }
    if (t - (this.lastRegistration[i] as number) >= CORE_RULES.reregistrationMs) {
      this.signaling(i, t, 'UPDATE_LOCATION');
      this.signaling(i, t + 200, 'UPDATE_GPRS_LOCATION');
      this.lastRegistration[i] = t;
      t += 400;
    }
    this.lastSeen[i] = t;
    const apn = (this.flags[i] as number) & WRONG_APN ? 'internet' : 'em';
    const pgw = this.pgw(i);
    const charging = this.nextChargingId;
    this.nextChargingId = (this.nextChargingId + 1) >>> 0;
    const pdp: Partial<SignalingRecord> = {
      charging_id: charging,
      gateway_address: pgw.address,
      apn,
      nsapi: 5,
    };
    const services = this.dir.serviceProfileOf(i).services;
    const r = this.rand(i);
    let rejection: [Cause, number] | undefined;
    if (!services.data || (this.flags[i] as number) & ANY_DATA_BLOCK)
      rejection = ['SERVICE_NOT_ALLOWED', 200];
    else if (apn !== 'em') rejection = ['UNKNOWN_APN', 219];
    else if (r < CORE_RULES.pdpNoResourcesChance) rejection = ['NO_RESOURCES', 199];
    else if (r < CORE_RULES.pdpNoResourcesChance + CORE_RULES.pdpAuthFailureChance)
      rejection = ['USER_AUTHENTICATION_FAILED', 209];
    if (rejection) {
      this.signaling(i, t, 'CREATE_PDP_CONTEXT', {
        ...pdp,
        result: 'REJECTED',
        cause: rejection[0],
        cause_code: rejection[1],
      });
      this.scheduleIdle(i, t, true);
      return;
    }

    this.signaling(i, t, 'CREATE_PDP_CONTEXT', { ...pdp, pdp_address: this.dir.ipAddress(i) });
    const [dLo, dHi] = p.sessionDurationS;
    const durationMs = Math.floor((dLo + (dHi - dLo) * this.rand(i)) * 1000);
    // Log-normal spread around the device's median volume.
    const z = Math.sqrt(-2 * Math.log(1 - this.rand(i))) * Math.cos(2 * Math.PI * this.rand(i));
    let bytes = p.medianSessionBytes * (this.volumeFactor[i] as number) * Math.exp(0.8 * z);
    if ((this.flags[i] as number) & THROTTLED)
      bytes = Math.min(bytes, ((this.throttleBps[i] as number) / 8) * (durationMs / 1000));
    this.state[i] = ONLINE;
    this.sStart[i] = t;
    this.sEnd[i] = t + durationMs;
    this.sBytesPerMs[i] = Math.max(1, Math.floor(bytes)) / durationMs;
    this.sCutTime[i] = t;
    this.sCutBytes[i] = 0;
    this.sSeq[i] = 0;
    this.sCharging[i] = charging;
    this.scheduleCut(i);
  }

  /**
   * Whether the device moved since it was last seen, and where to: another country
   * (international mobility) or another operator at home (national). -1: it did not move.
   */
  private movedTo(i: number, t: number): number {
    const mobility = this.dir.deployment(i).mobility ?? 'static';
    const away = (t - (this.lastSeen[i] as number)) / 1000;
    if (mobility === 'static' || this.rand(i) >= away / this.params(i).meanDwellS) return -1;
    if (mobility === 'national') return this.country[i] as number;
    const countries = (this.dir.deployment(i).countries ?? []).map(
      (iso) => this.countryByIso.get(iso) as number,
    );
    const others = countries.filter((c) => c !== this.country[i]);
    // Now and then a device is shipped beyond its usual countries, often outside its coverage.
    if (others.length === 0 || this.rand(i) < CORE_RULES.farMoveShare)
      return Math.floor(this.rand(i) * this.dir.countries.length);
    return others[Math.floor(this.rand(i) * others.length)] as number;
  }

  /** Bytes used from session start until time t: the device sends at a constant rate. */
  private usedBy(i: number, t: number): number {
    return Math.floor((this.sBytesPerMs[i] as number) * (t - (this.sStart[i] as number)));
  }

  /**
   * Next CDR cut: the first 45 s mark with at least 100 KB since the last record, or the
   * session end, whichever comes first.
   */
  private scheduleCut(i: number): void {
    const start = this.sStart[i] as number;
    const period = CORE_RULES.interimPeriodMs;
    const needed = (this.sCutBytes[i] as number) + CORE_RULES.interimMinBytes;
    let k = Math.max(
      Math.floor(((this.sCutTime[i] as number) - start) / period) + 1,
      Math.ceil(needed / (this.sBytesPerMs[i] as number) / period),
    );
    while (this.usedBy(i, start + k * period) < needed) k++;
    const cut = start + k * period;
    this.action[i] = ACT_TICK;
    this.tAction[i] = Math.min(cut, this.sEnd[i] as number);
  }

  private tick(i: number, t: number): void {
    if (t >= (this.sEnd[i] as number)) {
      this.closeSession(i, t, CauseForRecClosing.normalRelease, 'NORMAL_RELEASE');
      this.scheduleIdle(i, t, false);
      return;
    }
    this.emit(i, { kind: 'data_cdr', record: this.cdr(i, t, CauseForRecClosing.timeLimit) }, t);
    this.scheduleCut(i);
  }

  /** Writes the CDR covering usage since the last cut, up to time t. */
  private cdr(i: number, t: number, cause: number): DataCdr {
    const used = this.usedBy(i, t);
    const volume = used - (this.sCutBytes[i] as number);
    const share = this.uplinkShare[i] as number;
    const up = Math.floor(used * share) - Math.floor((this.sCutBytes[i] as number) * share);
    const opened = this.sCutTime[i] as number;
    const seq = (this.sSeq[i] as number) + 1;
    const ids = this.sessionIds[i] ?? this.openSessionIds(i);
    const pgw = ids.pgw;
    const localSequenceNumber = (this.pgwSeq[pgw.index] as number) + 1;
    this.pgwSeq[pgw.index] = localSequenceNumber;
    this.sSeq[i] = seq;
    this.sCutTime[i] = t;
    this.sCutBytes[i] = used;
    return {
      recordType: 85,
      nodeID: pgw.node,
      localSequenceNumber,
      servedIMSI: ids.imsi,
      servedIMEISV: ids.imeisv,
      servedMSISDN: ids.msisdn,
      chargingID: this.sCharging[i] as number,
      recordSequenceNumber: seq,
      pGWAddress: pgw.address,
      servingNodeAddress: ids.sgsn,
      servingNodePLMNIdentifier: ids.plmn,
      rATType: this.rat[i] as number,
      accessPointNameNI: 'em',
      servedPDPPDNAddress: ids.ip,
      recordOpeningTime: opened,
      timeOfFirstUsage: volume > 0 ? Math.min(t, opened + 1000) : opened,
      timeOfLastUsage: t,
      duration: Math.round((t - opened) / 1000),
      dataVolumeUplink: up,
      dataVolumeDownlink: volume - up,
      causeForRecClosing: cause,
      locationAreaCode: ((this.cell[i] as number) >>> 16) & 0xffff,
      cellIdentity: (this.cell[i] as number) & 0xffff,
    };
  }

  /** Final CDR and Delete PDP Context; the mediation sometimes delivers the CDR late or twice. */
  /** Identifiers of device i for the session it just opened (the network does not change within it). */
  private openSessionIds(i: number): SessionIds {
    const op = this.operators[this.operator[i] as number] as Operator;
    const imei = this.dir.imei(i);
    const ids: SessionIds = {
      imsi: this.dir.imsi(i, this.slot[i] as number),
      imeisv: imei ? `${imei.slice(0, 14)}01` : null,
      msisdn: this.dir.msisdn(i),
      ip: this.dir.ipAddress(i),
      plmn: `${this.dir.countries[this.country[i] as number]?.mcc ?? '000'}${op.mncs[0]}`,
      sgsn: this.sgsnAddress(i),
      pgw: this.pgw(i),
    };
    this.sessionIds[i] = ids;
    return ids;
  }

  private closeSession(i: number, t: number, recClosing: number, cause: Cause): void {
    const final = this.cdr(i, t, recClosing);
    const late = this.rand(i) < this.lateCdrRate;
    if (!late) this.emit(i, { kind: 'data_cdr', record: final }, t);
    this.signaling(i, t, 'DELETE_PDP_CONTEXT', {
      charging_id: this.sCharging[i] as number,
      gateway_address: this.pgw(i).address,
      apn: 'em',
      nsapi: 5,
      pdp_address: this.dir.ipAddress(i),
      cause,
    });
    if (late) this.emit(i, { kind: 'data_cdr', record: final }, t);
    if (this.rand(i) < this.duplicateCdrRate) this.emit(i, { kind: 'data_cdr', record: { ...final } }, t);
    this.sessionIds[i] = undefined;
    this.state[i] = ATTACHED;
    this.lastSeen[i] = t;
  }

  /** Schedules the next session, or a purge first if the device will be silent for long. */
  private scheduleIdle(i: number, t: number, failed: boolean): void {
    const base = (this.intervalS[i] as number) * 1000;
    let gap = Math.floor((base * (0.5 + this.rand(i))) / this.diurnal(i, t));
    if (failed) gap = Math.min(gap, 5 * 60_000 + Math.floor(this.rand(i) * 25 * 60_000));
    else if (this.rand(i) < CORE_RULES.powerOffChance) gap += Math.floor((6 + 42 * this.rand(i)) * 3600_000);
    const next = t + gap;
    if (gap > CORE_RULES.purgeAfterMs) {
      this.action[i] = ACT_PURGE;
      this.tAction[i] = t + CORE_RULES.purgeAfterMs;
      this.tResume[i] = next;
    } else {
      this.action[i] = ACT_SESSION;
      this.tAction[i] = next;
    }
  }

  private onSms(i: number, t: number): void {
    const p = this.params(i);
    const mo = this.rand(i) < p.smsMoPerDay / (p.smsMoPerDay + p.smsMtPerDay);
    this.tSms[i] = t + this.smsGap(i, t);
    const services = this.dir.serviceProfileOf(i).services;
    if (mo && this.state[i] === OFFLINE) return; // a device that is off sends nothing
    // An SMS exchange means the network heard from the device: the purge timer restarts.
    if (this.action[i] === ACT_PURGE && this.state[i] !== OFFLINE)
      this.tAction[i] = Math.max(this.tAction[i] as number, t + CORE_RULES.purgeAfterMs);
    let cause: string | null = null;
    if (this.state[i] === OFFLINE) cause = 'absentSubscriber';
    else if ((this.flags[i] as number) & ANY_SMS_BLOCK) cause = 'smsBlocked';
    else if (!(mo ? services.sms_mo : services.sms_mt)) cause = 'teleserviceNotProvisioned';
    const op = this.operators[this.operator[i] as number] as Operator;
    const country = this.dir.countries[this.country[i] as number];
    const record: SmsRecord = {
      sms_id: `smsc1-${(this.smsSeq++).toString(36)}`,
      direction: mo ? 'MO' : 'MT',
      timestamp: t,
      imsi: this.dir.imsi(i, this.slot[i] as number),
      msisdn: this.dir.msisdn(i),
      other_party: mo ? `4915700000${String(hash32(this.seed, i, 3) % 100).padStart(2, '0')}` : 'emnify',
      visited_mcc: country?.mcc ?? '000',
      visited_mnc: op.mncs[0] as string,
      smsc_address: '423663900001',
      delivered: cause === null,
      cause,
      length: 20 + Math.floor(this.rand(i) * 140),
    };
    this.stats.sms[record.direction]++;
    if (cause) this.stats.sms.undelivered++;
    this.emit(i, { kind: 'sms', record }, t);
  }

  // ---- enforcement ------------------------------------------------------------------

  private applyCommand(command: EnforcementCommand): void {
    const i = this.dir.indexOfEndpointId(command.endpoint_id);
    if (i === undefined) return; // not one of ours: the core ignores it
    const t = Math.max(command.timestamp, (this.busy[i] as number) + 1);
    this.stats.enforcementApplied++;
    const data = command.scope !== 'SMS';
    const sms = command.scope !== 'DATA';
    // Commands written before levels existed are the endpoint's.
    const organisation = command.level === 'ORGANISATION';
    const dataBlock = organisation ? ORG_DATA_BLOCKED : DATA_BLOCKED;
    const smsBlock = organisation ? ORG_SMS_BLOCKED : SMS_BLOCKED;
    let flags = this.flags[i] as number;
    switch (command.action) {
      case 'BLOCK':
        if (data) flags |= dataBlock;
        if (sms) flags |= smsBlock;
        break;
      case 'THROTTLE':
        flags |= THROTTLED;
        this.throttleBps[i] = command.peak_throughput ?? 64_000;
        break;
      case 'UNBLOCK':
        // A throttle is the endpoint's (a quota's): an organisation's UNBLOCK leaves it.
        if (data) flags &= organisation ? ~dataBlock : ~(dataBlock | THROTTLED);
        if (sms) flags &= ~smsBlock;
        break;
      case 'DISCONNECT':
        break;
    }
    this.flags[i] = flags;
    const teardown =
      command.action === 'DISCONNECT' ||
      ((command.action === 'BLOCK' || command.action === 'THROTTLE') && data);
    if (teardown && this.state[i] === ONLINE) {
      this.closeSession(i, t, CauseForRecClosing.managementIntervention, 'MANAGEMENT_INTERVENTION');
      // Blocked devices retry at their usual pace (and are rejected); others reconnect soon.
      if (command.action === 'BLOCK') this.scheduleIdle(i, t, true);
      else {
        this.action[i] = ACT_SESSION;
        this.tAction[i] = t + 5_000 + Math.floor(this.rand(i) * 25_000);
      }
      this.heap.push(this.nextWake(i), i);
    }
  }
}
