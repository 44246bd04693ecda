/**
 * The per-partition fold over raw records: device connectivity state, connectivity events
 * and rated usage records in the emnify shape. Pure: the same state and input give the
 * same outputs, with ids derived from the input position. Quota commands, quotas and
 * the service-profile limits act here too and yield enforcement commands for the core;
 * the organisation cost limit spans partitions and has its own stage.
 */
import {
  type DataCdr,
  type EnforcementCommand,
  type EngineCommand,
  eventTime,
  type RawRecord,
  type SignalingRecord,
  type SmsRecord,
} from '../contracts/raw.js';
import type { Directory } from '../reference/directory.js';
import type { Country, Operator, Ratezone, Tariff } from '../reference/types.js';
import { CdrRepeats, type CdrRepeatsSnapshot } from './cdr-repeats.js';
import { formatDecimal } from './decimal.js';
import { derivedPart } from './derived.js';
import { buildEvent, type EventSpec, type EventSubject, eventOf, isoMonth, isoTime } from './events.js';
import { IdWindow, type IdWindowSnapshot } from './id-window.js';
import { MAX_SUB, outputId } from './ids.js';
import {
  countEndpointUsage,
  type EndpointLimits,
  extendEndpointLimit,
  type LimitEffect,
  monthOf,
  newEndpointLimits,
  rollEndpointMonth,
} from './limits.js';
import { CURRENCIES, type EmnifyEvent, type EmnifyUsageRecord, type EventEndpoint } from './output.js';
import { advanceQuota, applyQuotaCommand, consumeQuota, type Quota, type QuotaEffect } from './quota.js';
import { type RatedSlice, rateData, rateSms } from './rating.js';
import { sessionId } from './session-id.js';
import { operatorDetail, subjectOf } from './subject.js';
import { bytesToMb } from './units.js';

export type Connectivity = 'Offline' | 'Attached' | 'Online';

interface OpenSession {
  /** The PDP context: gateway (P-GW/GGSN) address and charging id. */
  gateway: string | null;
  chargingId: number | null;
  sessionId: string;
  rx: bigint;
  tx: bigint;
  detail: Record<string, unknown>;
  /** Its final CDR (a closing cause, FINAL_CDR_CAUSES) was rated. */
  final?: true;
}

/** A session deleted before its final CDR came: event 5 waits for that CDR (or CLOSE_WAIT_MS). */
interface ClosingSession extends OpenSession {
  deletedAt: number;
  /** Event 5's description, from the Delete PDP Context. */
  description: string;
  /** The IMSI slot the Delete came from. */
  slot: number;
}

/**
 * TS 32.298 causes that close a bearer's last CDR: normal and abnormal release, CAMEL
 * release, management intervention. The others (volume or time limit, serving node or RAT
 * change, ...) close a partial record of a bearer that goes on.
 */
const FINAL_CDR_CAUSES = new Set([0, 4, 5, 20]);
/** How long (event time) event 5 waits after the Delete for a final CDR that is late. */
export const CLOSE_WAIT_MS = 15 * 60_000;

/** Where a device's session of this gateway and charging id is in its list, or -1. */
function sessionAt(
  sessions: readonly OpenSession[] | undefined,
  gateway: string | null,
  chargingId: number | null,
): number {
  if (!sessions) return -1;
  for (let i = 0; i < sessions.length; i++) {
    const session = sessions[i] as OpenSession;
    if (session.chargingId === chargingId && session.gateway === gateway) return i;
  }
  return -1;
}

/**
 * "a/b/c": a key the state keeps. A template literal would leave V8's tree of the parts
 * (a cons string, ~157 bytes with its map entry); join makes one flat string (~70): the
 * inclusive-volume counters hold one per endpoint, zone and month.
 */
function stateKey(...parts: (string | number)[]): string {
  return parts.join('/');
}

/**
 * One copy of each text that many records repeat (APNs, network nodes, gateways, MCC and
 * MNC): open sessions keep them in the state, a million sessions would keep a million
 * copies. Bounded: starts over when full.
 */
const interned = new Map<string, string>();
function intern<T extends string | null>(text: T): T {
  if (text === null) return text;
  const known = interned.get(text);
  if (known !== undefined) return known as T;
  if (interned.size >= 50_000) interned.clear();
  interned.set(text, text);
  return text;
}

export interface DeviceState {
  connectivity: Connectivity;
  operatorId: number | null;
  ratType: number | null;
  lac: number | null;
  cellId: number | null;
  updated: number;
  // The three below exist only while they hold something: a million-device state is
  // mostly devices without them (an empty Map alone costs more than the rest of a device).
  /** Open PDP contexts (a list: a device has one or two, and a Map per device costs more). */
  sessions?: OpenSession[];
  quotas?: { DATA?: Quota; SMS?: Quota };
  limits: EndpointLimits | null;
  /** What currently blocks or throttles the endpoint, as "DATA:quota", "SMS:limit"... */
  holds?: string[];
  /** Sessions deleted before their final CDR came. */
  closing?: ClosingSession[];
}

export interface PartitionState {
  devices: Map<number, DeviceState>;
  /** Data CDRs already rated, per bearer (cdr-repeats.ts). */
  cdrRepeats: CdrRepeats;
  /** SMS and command ids already applied (id-window.ts). */
  seenSms: IdWindow;
  seenCommands: IdWindow;
  /** Signaling record ids of the last hour: a repeated transaction from the core is skipped. */
  seenSignaling: IdWindow;
  /** Endpoints (directory index) holding a quota: checked for expiry and refill as time passes. */
  withQuota: Set<number>;
  /** Earliest event time at which a quota expires or refills. */
  nextQuotaDeadline: number;
  /** Endpoints blocked by a monthly limit: unblocked when event time reaches the 1st. */
  limitBlocked: Set<number>;
  /** Billable bytes used against a zone's inclusive volume: endpoint/zone/month -> bytes. */
  inclusiveUsed: Map<string, bigint>;
  /** Highest event time seen. */
  watermark: number;
  /** Records too far ahead of the watermark, waiting for the next records to confirm the jump. */
  held?: HeldRecord[];
  /** Endpoints (directory index) with closing sessions, and the earliest time one is due. */
  closing?: Set<number>;
  nextCloseDue?: number;
}

/** A record held back by the clock guard (PartitionFold.apply), with its input offset. */
export interface HeldRecord {
  raw: RawRecord;
  offset: number;
  /** Following records that did not confirm it. */
  misses: number;
}

/**
 * The clock guard. A record more than this far ahead of the partition's event time would
 * move the clock that expires quotas, resets monthly limits and forgets repeats, and its
 * own month would become its endpoint's: one wrong timestamp (a core's clock in 2099)
 * could reset every limit and let repeats be billed twice. So it is held until the
 * records after it show the jump is real.
 */
export const MAX_LEAP_MS = 7 * 24 * 3_600_000;
/** Following records that may fail to confirm a held record before it is dead-lettered. */
export const CONFIRM_WITHIN = 3;

export function emptyState(): PartitionState {
  return {
    devices: new Map(),
    cdrRepeats: new CdrRepeats(),
    seenSms: new IdWindow(),
    seenCommands: new IdWindow(),
    seenSignaling: new IdWindow(),
    withQuota: new Set(),
    nextQuotaDeadline: Number.POSITIVE_INFINITY,
    limitBlocked: new Set(),
    inclusiveUsed: new Map(),
    watermark: 0,
  };
}

/** A rated usage record with the exact values the store and the aggregators need. */
export interface RatedUsage {
  record: EmnifyUsageRecord;
  endpointId: number;
  organisationId: number;
  currency: 'EUR' | 'USD';
  cost: bigint;
  rxBytes: bigint;
  txBytes: bigint;
}

export interface DeadLetterSpec {
  id: number;
  stage: 'validate' | 'resolve' | 'rate' | 'fold';
  reason_code: string;
  reason: string;
  /** Of a record the clock guard held back (applied or rejected later), not of the current input. */
  held?: { offset: number; raw: RawRecord };
}

export interface FoldOutputs {
  events: EmnifyEvent[];
  usage: RatedUsage[];
  deadLetters: DeadLetterSpec[];
  /** Decisions for the mobile core. */
  enforcement: EnforcementCommand[];
  /** Repeated inputs recognised and skipped (mediation retries). */
  duplicates: number;
}

export function emptyOutputs(): FoldOutputs {
  return { events: [], usage: [], deadLetters: [], enforcement: [], duplicates: 0 };
}

/** Repeats of CDRs, SMS and commands are recognised within this much event time of the first copy. */
export const DEDUP_WINDOW_MS = 48 * 3_600_000;
/**
 * Repeats of a signaling transaction within this much: the core resends one within
 * seconds when an answer is lost, and a window of 48 hours held every signaling id of a
 * fleet for two days (a third of all records).
 */
export const SIGNALING_WINDOW_MS = 3_600_000;
/** Timestamps outside this range are impossible for a record of ours. */
const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2100, 0, 1);

/** The input being folded: where it came from and how many outputs it has produced. */
class Input {
  private sub = 0;
  constructor(
    readonly partition: number,
    readonly offset: number,
  ) {}
  nextId(): number {
    return outputId(this.partition, this.offset, this.sub++);
  }
  /** Ids left for this input (see ids.ts: 64 outputs per input). */
  get idsLeft(): number {
    return MAX_SUB + 1 - this.sub;
  }
}

/** Open PDP contexts a device can have (3GPP TS 24.008: NSAPI 5..15). */
export const MAX_OPEN_SESSIONS = 11;

/** Ids a record keeps for its own outputs when the quota clock runs on it. */
const OWN_OUTPUTS = 16;

/** The minute of an event time, as the repeat windows keep it. */
function minuteOf(time: number): number {
  return Math.floor(time / 60_000);
}

/** The repeat windows as a snapshot holds them: version 3 in their own form, earlier ones in Maps. */
interface SnapshotWindows {
  seenCdrs?: Map<string, number>;
  cdrRepeats?: CdrRepeatsSnapshot;
  seenSms: Map<string, number> | IdWindowSnapshot;
  seenCommands: Map<string, number> | IdWindowSnapshot;
  seenSignaling: Map<string, number> | IdWindowSnapshot;
}
const ID_WINDOWS = ['seenSms', 'seenCommands', 'seenSignaling'] as const;

/**
 * A state as a snapshot of `version` holds it, in today's shape. Version 3 keeps the
 * repeat windows in their own form (cdr-repeats.ts, id-window.ts); 2 kept Maps of ids,
 * and of "node/charging id/sequence", to the minute; 1 also kept milliseconds instead of
 * minutes, and sessions in a Map keyed "gateway/charging id" (with empty quotas, holds and
 * session Maps, which today's code reads as none).
 */
export function restoreState(version: number, snapshot: PartitionState): PartitionState {
  const windows = snapshot as unknown as SnapshotWindows;
  if (version === 1) upgradeV1(snapshot, windows);
  const state = snapshot as PartitionState & { seenCdrs?: unknown };
  if (version < 3) {
    state.cdrRepeats = CdrRepeats.fromKeys(windows.seenCdrs ?? new Map());
    delete state.seenCdrs;
    for (const name of ID_WINDOWS) state[name] = IdWindow.fromEntries(windows[name] as Map<string, number>);
  } else {
    state.cdrRepeats = CdrRepeats.restore(windows.cdrRepeats as CdrRepeatsSnapshot);
    for (const name of ID_WINDOWS) state[name] = IdWindow.restore(windows[name] as IdWindowSnapshot);
  }
  return state;
}

function upgradeV1(state: PartitionState, windows: SnapshotWindows): void {
  for (const name of ['seenCdrs', ...ID_WINDOWS] as const) {
    const seen = windows[name] as Map<string, number> | undefined;
    for (const [key, time] of seen ?? []) seen?.set(key, minuteOf(time));
  }
  for (const device of state.devices.values()) {
    const earlier = device.sessions as unknown as Map<string, Omit<OpenSession, 'gateway' | 'chargingId'>>;
    const sessions: OpenSession[] = [];
    for (const [key, session] of earlier) {
      const slash = key.lastIndexOf('/');
      const gateway = key.slice(0, slash);
      const charging = key.slice(slash + 1);
      sessions.push({
        ...session,
        gateway: gateway === 'null' ? null : gateway,
        chargingId: charging === 'null' ? null : Number(charging),
      });
    }
    device.sessions = sessions.length > 0 ? sessions : undefined;
  }
}

export class PartitionFold {
  constructor(
    private readonly dir: Directory,
    readonly state: PartitionState = emptyState(),
  ) {}

  /** Folds one raw record read at (partition, offset) into the state; appends what it produces to `out`. */
  apply(raw: RawRecord, partition: number, offset: number, out: FoldOutputs): void {
    const time = eventTime(raw);
    if (this.state.held) this.decideHeld(time, partition, out);
    // The first record of a partition sets its clock wherever it is.
    if (this.state.watermark > 0 && time > this.state.watermark + MAX_LEAP_MS) {
      this.state.held ??= [];
      this.state.held.push({ raw, offset, misses: 0 });
      return;
    }
    this.applyNow(raw, partition, offset, out);
  }

  /**
   * A record close to (or after) the newest held one confirms the jump: the held records
   * are applied, in input order and with their own positions' ids, before it. Any other
   * record is a miss for each; a record held through CONFIRM_WITHIN misses had a wrong
   * clock and is dead-lettered.
   */
  private decideHeld(time: number, partition: number, out: FoldOutputs): void {
    const held = this.state.held as HeldRecord[];
    const newest = held[held.length - 1] as HeldRecord;
    if (time >= eventTime(newest.raw) - MAX_LEAP_MS) {
      this.state.held = undefined;
      for (const record of held) {
        const before = out.deadLetters.length;
        this.applyNow(record.raw, partition, record.offset, out);
        // Its dead letters (an unknown IMSI, say) are its own, not the current input's.
        for (let i = before; i < out.deadLetters.length; i++)
          (out.deadLetters[i] as DeadLetterSpec).held = { offset: record.offset, raw: record.raw };
      }
      return;
    }
    const waiting: HeldRecord[] = [];
    for (const record of held) {
      record.misses++;
      if (record.misses < CONFIRM_WITHIN) {
        waiting.push(record);
        continue;
      }
      const at = eventTime(record.raw);
      out.deadLetters.push({
        id: outputId(partition, record.offset, 0),
        stage: 'validate',
        reason_code: 'FUTURE_TIMESTAMP',
        reason: `${record.raw.kind} record at ${isoTime(at)} is ${Math.floor((at - this.state.watermark) / 3_600_000)} h ahead of the partition's event time (${isoTime(this.state.watermark)}), more than ${MAX_LEAP_MS / 3_600_000} h, and the next ${CONFIRM_WITHIN} records did not follow it: its clock is wrong`,
        held: { offset: record.offset, raw: record.raw },
      });
    }
    this.state.held = waiting.length > 0 ? waiting : undefined;
  }

  private applyNow(raw: RawRecord, partition: number, offset: number, out: FoldOutputs): void {
    const input = new Input(partition, offset);
    switch (raw.kind) {
      case 'signaling':
        this.signaling(raw.record, input, out);
        return;
      case 'data_cdr':
        this.dataCdr(raw.record, input, out);
        return;
      case 'sms':
        this.sms(raw.record, input, out);
        return;
      case 'command':
        this.command(raw.record, input, out);
        return;
    }
  }

  device(endpointIndex: number): DeviceState | undefined {
    return this.state.devices.get(endpointIndex);
  }

  // ---- shared checks -------------------------------------------------------------------

  private reject(
    out: FoldOutputs,
    input: Input,
    stage: DeadLetterSpec['stage'],
    code: string,
    reason: string,
  ): void {
    out.deadLetters.push({ id: input.nextId(), stage, reason_code: code, reason });
  }

  private advance(time: number, input: Input, out: FoldOutputs): void {
    if (time <= this.state.watermark) {
      // Transitions that did not fit into the previous input's ids continue here.
      if (this.state.nextQuotaDeadline <= this.state.watermark)
        this.quotaClock(this.state.watermark, input, out);
      this.monthClock(this.state.watermark, input, out);
      if ((this.state.nextCloseDue ?? Number.POSITIVE_INFINITY) <= this.state.watermark)
        this.closeClock(this.state.watermark, input, out);
      return;
    }
    this.monthClock(time, input, out);
    const hourBefore = Math.floor(this.state.watermark / 3_600_000);
    this.state.watermark = time;
    if (Math.floor(time / 3_600_000) !== hourBefore) this.evictSeen(time);
    if (time >= this.state.nextQuotaDeadline) this.quotaClock(time, input, out);
    if (time >= (this.state.nextCloseDue ?? Number.POSITIVE_INFINITY)) this.closeClock(time, input, out);
  }

  /** Event 5 of every closing session whose final CDR did not come within CLOSE_WAIT_MS. */
  private closeClock(time: number, input: Input, out: FoldOutputs): void {
    let next = Number.POSITIVE_INFINITY;
    for (const index of [...(this.state.closing ?? [])].sort((a, b) => a - b)) {
      const device = this.state.devices.get(index);
      for (const session of [...(device?.closing ?? [])]) {
        const due = session.deletedAt + CLOSE_WAIT_MS;
        if (due > time || input.idsLeft <= OWN_OUTPUTS + 1) {
          next = Math.min(next, Math.max(due, time));
          continue;
        }
        this.closed(index, session, input, out);
      }
    }
    this.state.nextCloseDue = next;
  }

  /** Event 5 of a closing session, with the volume of every CDR it got; the session is gone. */
  private closed(index: number, session: ClosingSession, input: Input, out: FoldOutputs): void {
    const device = this.state.devices.get(index) as DeviceState;
    device.closing = device.closing?.filter((s) => s !== session);
    if (device.closing?.length === 0) {
      device.closing = undefined;
      this.state.closing?.delete(index);
    }
    this.deleted(
      out,
      input,
      session.deletedAt,
      subjectOf(this.dir, index, session.slot),
      session.description,
      session,
    );
  }

  /** Event 5 (Delete PDP Context) with the session's volume. */
  private deleted(
    out: FoldOutputs,
    input: Input,
    time: number,
    subject: EventSubject,
    description: string,
    session: OpenSession,
  ): void {
    // The session's detail is kept as it is (the state holds it): a copy gets the additions.
    const detail = { ...session.detail };
    detail.session_id = session.sessionId;
    detail.volume = {
      total: Number(bytesToMb(session.rx + session.tx)),
      rx: Number(bytesToMb(session.rx)),
      tx: Number(bytesToMb(session.tx)),
    };
    this.networkEvent(out, input, time, subject, false, 'DELETE_PDP_CONTEXT', description, detail);
  }

  /** Expiry and daily refill of every quota whose moment has come (event time drives it). */
  private quotaClock(time: number, input: Input, out: FoldOutputs): void {
    let next = Number.POSITIVE_INFINITY;
    for (const index of [...this.state.withQuota].sort((a, b) => a - b)) {
      const device = this.state.devices.get(index);
      for (const quota of [device?.quotas?.DATA, device?.quotas?.SMS]) {
        if (!quota) continue;
        // One input has room for 64 outputs: what does not fit waits for the next input.
        if (quotaDeadline(quota) <= time && input.idsLeft <= OWN_OUTPUTS + 2) {
          next = time;
          continue;
        }
        this.quotaEffects(index, advanceQuota(quota, time), quota.service, time, input, out);
        next = Math.min(next, quotaDeadline(quota));
      }
    }
    this.state.nextQuotaDeadline = next;
  }

  /** Monthly limits reset on the 1st (UTC, event time): blocked endpoints are let go then. */
  private monthClock(time: number, input: Input, out: FoldOutputs): void {
    if (this.state.limitBlocked.size === 0) return;
    const date = new Date(time);
    const first = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
    for (const index of [...this.state.limitBlocked].sort((a, b) => a - b)) {
      const limits = this.state.devices.get(index)?.limits;
      if (!limits || limits.month >= monthOf(time)) continue;
      if (input.idsLeft <= OWN_OUTPUTS + 1) return; // the rest on the next input
      this.limitEffects(index, rollEndpointMonth(limits, first), first, input, out);
      this.state.limitBlocked.delete(index);
    }
  }

  /** Forgets repeat keys older than their window (checked once an hour of event time). */
  private evictSeen(now: number): void {
    const limit = minuteOf(now - DEDUP_WINDOW_MS);
    this.state.cdrRepeats.forgetBefore(limit);
    this.state.seenSms.forgetBefore(limit);
    this.state.seenCommands.forgetBefore(limit);
    this.state.seenSignaling.forgetBefore(minuteOf(now - SIGNALING_WINDOW_MS));
  }

  private resolve(imsi: string, time: number, kind: string, input: Input, out: FoldOutputs) {
    if (!Number.isFinite(time) || time < EARLIEST || time >= LATEST) {
      this.reject(
        out,
        input,
        'validate',
        'IMPOSSIBLE_TIMESTAMP',
        `${kind} has timestamp ${time}, outside 2000..2100`,
      );
      return undefined;
    }
    const ref = this.dir.resolveImsi(imsi);
    if (!ref)
      this.reject(
        out,
        input,
        'resolve',
        'UNKNOWN_IMSI',
        `IMSI ${imsi} belongs to no SIM in the reference data`,
      );
    return ref;
  }

  private network(
    mcc: string,
    mnc: string,
    input: Input,
    out: FoldOutputs,
  ): { operator: Operator; country: Country } | undefined {
    const operator = this.dir.operatorOf(mcc, mnc);
    const country = operator && this.dir.country(operator.country_id);
    if (!operator || !country) {
      this.reject(
        out,
        input,
        'resolve',
        'UNKNOWN_NETWORK',
        `network ${mcc}-${mnc} is not in the reference data`,
      );
      return undefined;
    }
    return { operator, country };
  }

  private deviceState(index: number): DeviceState {
    let device = this.state.devices.get(index);
    if (!device) {
      device = {
        connectivity: 'Offline',
        operatorId: null,
        ratType: null,
        lac: null,
        cellId: null,
        updated: 0,
        limits: null,
      };
      this.state.devices.set(index, device);
    }
    return device;
  }

  private event(out: FoldOutputs, input: Input, spec: Omit<EventSpec, 'id'>): void {
    out.events.push(eventOf(input.nextId(), spec));
  }

  /** An event the network reports (at `time`, a signaling record's): a warning when it was rejected. */
  private networkEvent(
    out: FoldOutputs,
    input: Input,
    time: number,
    subject: EventSubject,
    rejected: boolean,
    type: EventSpec['type'],
    description: string,
    detail?: Record<string, unknown>,
  ): void {
    out.events.push(
      eventOf(input.nextId(), {
        time,
        subject,
        type,
        source: 'NETWORK',
        severity: rejected ? 'WARN' : 'INFO',
        alert: rejected,
        description,
        detail,
      }),
    );
  }

  // ---- signaling ------------------------------------------------------------------------

  private signaling(record: SignalingRecord, input: Input, out: FoldOutputs): void {
    const ref = this.resolve(record.imsi, record.timestamp, 'signaling record', input, out);
    if (!ref) return;
    const net = this.network(record.visited_mcc, record.visited_mnc, input, out);
    if (!net) return;
    if (this.state.seenSignaling.repeat(record.record_id, minuteOf(record.timestamp))) {
      out.duplicates++;
      return;
    }
    this.advance(record.timestamp, input, out);
    const subject = subjectOf(this.dir, ref.index, ref.slot);
    const device = this.deviceState(ref.index);
    const where = `${net.operator.name} (${net.country.name})`;
    const accepted = record.result === 'ACCEPTED';

    if (accepted && record.type !== 'PURGE_LOCATION' && record.type !== 'PURGE_GPRS_LOCATION') {
      device.operatorId = net.operator.id;
      device.ratType = record.rat_type;
      device.lac = record.lac;
      device.cellId = record.cell_id;
      device.updated = record.timestamp;
    }
    switch (record.type) {
      case 'UPDATE_LOCATION':
      case 'UPDATE_GPRS_LOCATION': {
        const type = record.type;
        const what = type === 'UPDATE_LOCATION' ? 'Location update' : 'GPRS location update';
        if (!accepted) {
          const description = `${what} rejected in ${where}: ${causeText(record.cause)}.`;
          this.networkEvent(out, input, record.timestamp, subject, true, type, description);
          return;
        }
        if (device.connectivity === 'Offline') device.connectivity = 'Attached';
        const description = `${what} in ${where}${record.network_node ? ` via ${type === 'UPDATE_LOCATION' ? 'VLR' : 'SGSN'} ${record.network_node}` : ''}.`;
        const detail = operatorDetail(net.operator, net.country);
        this.networkEvent(out, input, record.timestamp, subject, false, type, description, detail);
        return;
      }
      case 'CREATE_PDP_CONTEXT':
        this.createPdp(record, input, out, ref, device, net, subject);
        return;
      case 'DELETE_PDP_CONTEXT': {
        const at = sessionAt(device.sessions, record.gateway_address, record.charging_id);
        const session = device.sessions?.[at];
        if (at >= 0) device.sessions?.splice(at, 1);
        if (device.sessions?.length === 0) device.sessions = undefined;
        if (!device.sessions && device.connectivity === 'Online') device.connectivity = 'Attached';
        const description = `PDP Context deleted${record.cause ? ` (${causeText(record.cause)})` : ''}.`;
        if (session && !session.final) {
          // Its final CDR is late: event 5 waits for it, so that its volume counts.
          device.closing ??= [];
          device.closing.push({ ...session, deletedAt: record.timestamp, description, slot: ref.slot });
          this.state.closing ??= new Set();
          this.state.closing.add(ref.index);
          this.state.nextCloseDue = Math.min(
            this.state.nextCloseDue ?? Number.POSITIVE_INFINITY,
            record.timestamp + CLOSE_WAIT_MS,
          );
          return;
        }
        const known = session ?? {
          gateway: record.gateway_address,
          chargingId: record.charging_id,
          sessionId: sessionId(record.gateway_address ?? '', record.charging_id ?? 0),
          rx: 0n,
          tx: 0n,
          detail: operatorDetail(net.operator, net.country),
        };
        this.deleted(out, input, record.timestamp, subject, description, known);
        return;
      }
      case 'PURGE_LOCATION':
      case 'PURGE_GPRS_LOCATION':
        // A purged device has no registration and no sessions left.
        device.sessions = undefined;
        device.connectivity = 'Offline';
        this.networkEvent(
          out,
          input,
          record.timestamp,
          subject,
          false,
          record.type,
          `${record.type === 'PURGE_LOCATION' ? 'Location' : 'GPRS location'} purged by ${where}${record.cause ? ` (${causeText(record.cause)})` : ''}.`,
        );
        return;
    }
  }

  private createPdp(
    record: SignalingRecord,
    input: Input,
    out: FoldOutputs,
    ref: { index: number; slot: number },
    device: DeviceState,
    net: { operator: Operator; country: Country },
    subject: EventSubject,
  ): void {
    if (record.result !== 'ACCEPTED') {
      // Rejections by policy come from our side of the core; the rest from the network.
      const policy = record.cause === 'SERVICE_NOT_ALLOWED' || record.cause === 'OPERATOR_BARRING';
      this.event(out, input, {
        time: record.timestamp,
        subject,
        type: 'CREATE_PDP_CONTEXT',
        source: policy ? 'POLICY_CONTROL' : 'NETWORK',
        severity: 'WARN',
        alert: true,
        description: `PDP Context rejected: ${(record.cause ?? 'unknown').toLowerCase().replace(/_/g, ' ')}${record.cause_code !== null ? ` (cause ${record.cause_code})` : ''}.`,
      });
      return;
    }
    const tariffProfileId = this.dir.tariffProfileIdOf(ref.index);
    const zone = this.dir.ratezoneFor(tariffProfileId, net.operator.id);
    const tariff = this.dir.tariff(this.dir.tariffProfile(tariffProfileId)?.tariff_id ?? -1);
    const id = sessionId(record.gateway_address ?? '', record.charging_id ?? 0);
    const gateway = intern(record.gateway_address);
    const node = intern(record.network_node);
    // A fresh object: pdp_context goes after the operator's fields, as a spread would put it.
    const detail = operatorDetail(net.operator, net.country);
    detail.pdp_context = {
      pdp_context_id: record.charging_id,
      tunnel_created: isoTime(record.timestamp).slice(0, 19),
      gtp_version: 1,
      ggsn_control_plane_ip_address: gateway,
      ggsn_data_plane_ip_address: gateway,
      sgsn_control_plane_ip_address: node,
      sgsn_data_plane_ip_address: node,
      region: this.dir.serviceProfileOf(ref.index).breakout_region ?? null,
      breakout_ip: null,
      apn: intern(record.apn),
      nsapi: record.nsapi,
      ue_ip_address: record.pdp_address,
      imeisv: record.imeisv,
      imsi: record.imsi,
      mcc: intern(record.visited_mcc),
      mnc: intern(record.visited_mnc),
      lac: record.lac,
      sac: null,
      rac: null,
      ci: record.cell_id,
      rat_type: record.rat_type,
      operator_id: String(net.operator.id),
      tariff_profile_id: String(tariffProfileId),
      ratezone_id: zone ? String(zone.id) : null,
      tariff_id: tariff ? String(tariff.id) : null,
    };
    const session: OpenSession = {
      gateway,
      chargingId: record.charging_id,
      sessionId: id,
      rx: 0n,
      tx: 0n,
      detail,
    };
    const at = sessionAt(device.sessions, record.gateway_address, record.charging_id);
    device.sessions ??= [];
    if (at >= 0) device.sessions[at] = session;
    else {
      // A device has at most 11 PDP contexts (NSAPI 5..15): beyond that, the oldest ended
      // without its Delete reaching us, and keeping it would let the state grow for ever.
      if (device.sessions.length >= MAX_OPEN_SESSIONS) device.sessions.shift();
      device.sessions.push(session);
    }
    device.connectivity = 'Online';
    this.event(out, input, {
      time: record.timestamp,
      subject,
      type: 'CREATE_PDP_CONTEXT',
      source: 'NETWORK',
      severity: 'INFO',
      alert: false,
      description: `New PDP Context successfully activated with SGSN ${record.network_node ?? 'unknown'}.`,
      detail: { ...detail, session_id: id },
    });
  }

  // ---- usage ----------------------------------------------------------------------------

  /** Tariff and ratezone of an endpoint in a network, or a dead letter and an event when it is not covered. */
  private coverage(
    index: number,
    slot: number,
    operator: Operator,
    country: Country,
    time: number,
    what: string,
    input: Input,
    out: FoldOutputs,
  ) {
    const tariffProfileId = this.dir.tariffProfileIdOf(index);
    const profile = this.dir.tariffProfile(tariffProfileId);
    const tariff = profile && this.dir.tariff(profile.tariff_id);
    const zone = this.dir.ratezoneFor(tariffProfileId, operator.id);
    if (tariff && zone) return { tariff, zone };
    const reason = `${what} in ${operator.name} (${country.name}), which no ratezone of tariff profile ${tariffProfileId} covers: not rated`;
    this.event(out, input, {
      time,
      subject: subjectOf(this.dir, index, slot),
      type: 'GENERIC',
      source: 'POLICY_CONTROL',
      severity: 'WARN',
      alert: true,
      description: `${reason}.`,
    });
    this.reject(out, input, 'rate', 'NOT_COVERED', reason);
    return undefined;
  }

  private dataCdr(cdr: DataCdr, input: Input, out: FoldOutputs): void {
    const ref = this.resolve(cdr.servedIMSI, cdr.timeOfLastUsage, 'data CDR', input, out);
    if (!ref) return;
    if (
      cdr.dataVolumeUplink < 0 ||
      cdr.dataVolumeDownlink < 0 ||
      !Number.isSafeInteger(cdr.dataVolumeUplink) ||
      !Number.isSafeInteger(cdr.dataVolumeDownlink)
    ) {
      this.reject(
        out,
        input,
        'validate',
        'NEGATIVE_VOLUME',
        `data CDR ${cdr.nodeID}/${cdr.chargingID}/${cdr.recordSequenceNumber} has volumes ${cdr.dataVolumeUplink}/${cdr.dataVolumeDownlink}; they must be whole, non-negative byte counts`,
      );
      return;
    }
    if (
      outsideRange(cdr.recordOpeningTime) ||
      outsideRange(cdr.timeOfFirstUsage) ||
      cdr.recordOpeningTime > cdr.timeOfLastUsage ||
      cdr.timeOfFirstUsage > cdr.timeOfLastUsage
    ) {
      this.reject(
        out,
        input,
        'validate',
        'IMPOSSIBLE_TIMESTAMP',
        `data CDR ${cdr.nodeID}/${cdr.chargingID}/${cdr.recordSequenceNumber} has impossible times: opened ${cdr.recordOpeningTime}, first usage ${cdr.timeOfFirstUsage}, last usage ${cdr.timeOfLastUsage}`,
      );
      return;
    }
    const plmn = cdr.servingNodePLMNIdentifier;
    const net = this.network(plmn.slice(0, 3), plmn.slice(3), input, out);
    if (!net) return;
    const minute = minuteOf(cdr.timeOfLastUsage);
    if (this.state.cdrRepeats.repeat(cdr.nodeID, cdr.chargingID, cdr.recordSequenceNumber, minute)) {
      out.duplicates++;
      return;
    }
    this.advance(cdr.timeOfLastUsage, input, out);
    const covered = this.coverage(
      ref.index,
      ref.slot,
      net.operator,
      net.country,
      cdr.timeOfLastUsage,
      'Data',
      input,
      out,
    );
    if (!covered) return;

    const rx = BigInt(cdr.dataVolumeDownlink);
    const tx = BigInt(cdr.dataVolumeUplink);
    const device = this.deviceState(ref.index);
    const closing = device.closing?.[sessionAt(device.closing, cdr.pGWAddress, cdr.chargingID)];
    const session = closing ?? device.sessions?.[sessionAt(device.sessions, cdr.pGWAddress, cdr.chargingID)];
    if (session) {
      session.rx += rx;
      session.tx += tx;
      if (FINAL_CDR_CAUSES.has(cdr.causeForRecClosing)) session.final = true;
    }
    // Counted in the month of its own usage time, even when it arrives late.
    const month = isoMonth(cdr.timeOfLastUsage);
    const counter = stateKey(this.dir.endpointId(ref.index), covered.zone.id, month);
    const rated = rateData({
      tariff: covered.tariff,
      zone: covered.zone,
      rxBytes: rx,
      txBytes: tx,
      inclusiveUsedBytes: this.state.inclusiveUsed.get(counter) ?? 0n,
    });
    if (covered.zone.inclusive_volume) this.state.inclusiveUsed.set(counter, rated.inclusiveUsedBytes);
    this.policy(
      ref.index,
      ref.slot,
      { dataBytes: rx + tx, sms: 0n, smsMo: 0n },
      cdr.timeOfLastUsage,
      input,
      out,
    );
    const what = {
      traffic: 'data' as const,
      start: cdr.recordOpeningTime,
      end: cdr.timeOfLastUsage,
      session: session?.sessionId ?? sessionId(cdr.pGWAddress, cdr.chargingID),
      mnc: plmn.slice(3),
    };
    for (const slice of rated.slices)
      out.usage.push(this.usage(input, ref, net, covered.tariff, covered.zone, slice, what));
    if (closing?.final) this.closed(ref.index, closing, input, out);
  }

  private sms(record: SmsRecord, input: Input, out: FoldOutputs): void {
    const ref = this.resolve(record.imsi, record.timestamp, 'SMS record', input, out);
    if (!ref) return;
    const net = this.network(record.visited_mcc, record.visited_mnc, input, out);
    if (!net) return;
    if (this.state.seenSms.repeat(record.sms_id, minuteOf(record.timestamp))) {
      out.duplicates++;
      return;
    }
    this.advance(record.timestamp, input, out);
    if (!record.delivered) return; // only delivered messages are charged
    const covered = this.coverage(
      ref.index,
      ref.slot,
      net.operator,
      net.country,
      record.timestamp,
      `SMS ${record.direction}`,
      input,
      out,
    );
    if (!covered) return;
    this.policy(
      ref.index,
      ref.slot,
      { dataBytes: 0n, sms: 1n, smsMo: record.direction === 'MO' ? 1n : 0n },
      record.timestamp,
      input,
      out,
    );
    const slice = rateSms(covered.tariff, covered.zone, record.direction);
    out.usage.push(
      this.usage(input, ref, net, covered.tariff, covered.zone, slice, {
        traffic: 'sms',
        start: record.timestamp,
        end: record.timestamp,
        session: null,
        mnc: record.visited_mnc,
      }),
    );
  }

  private usage(
    input: Input,
    ref: { index: number; slot: number },
    net: { operator: Operator; country: Country },
    tariff: Tariff,
    zone: Ratezone,
    slice: RatedSlice,
    what: { traffic: 'data' | 'sms'; start: number; end: number; session: string | null; mnc: string },
  ): RatedUsage {
    const subject = subjectOf(this.dir, ref.index, ref.slot);
    const endpoint = subject.endpoint as NonNullable<EventSubject['endpoint']>;
    const sim = subject.sim as NonNullable<EventSubject['sim']>;
    const imsi = subject.imsi as NonNullable<EventSubject['imsi']>;
    const data = what.traffic === 'data';
    const volume = data
      ? {
          total: bytesToMb(slice.rxBytes + slice.txBytes),
          rx: bytesToMb(slice.rxBytes),
          tx: bytesToMb(slice.txBytes),
        }
      : { total: '1', rx: String(slice.rxBytes), tx: String(slice.txBytes) };
    const record: EmnifyUsageRecord = {
      id: input.nextId(),
      traffic_type: data ? DATA_TRAFFIC : SMS_TRAFFIC,
      start_timestamp: isoTime(what.start),
      end_timestamp: isoTime(what.end),
      organisation: subject.organisation,
      endpoint: withBalance(endpoint),
      sim,
      imsi_id: imsi.id,
      imsi: imsi.imsi,
      operator: usageOperator(net.operator, net.country, what.mnc),
      tariff: usageTariff(tariff, zone),
      volume,
      cost: formatDecimal(slice.cost),
      currency: CURRENCIES[tariff.currency],
      session_id: what.session,
      rating: {
        tariff_version: tariff.version,
        rate: slice.rate,
        billable_bytes: Number(slice.billableBytes),
        inclusive: slice.inclusive,
        rx_bytes: Number(slice.rxBytes),
        tx_bytes: Number(slice.txBytes),
      },
    };
    return {
      record,
      endpointId: endpoint.id,
      organisationId: subject.organisation.id,
      currency: tariff.currency,
      cost: slice.cost,
      rxBytes: slice.rxBytes,
      txBytes: slice.txBytes,
    };
  }
  // ---- commands, quotas, limits, enforcement -------------------------------------------

  private command(command: EngineCommand, input: Input, out: FoldOutputs): void {
    if (!Number.isFinite(command.timestamp) || command.timestamp < EARLIEST || command.timestamp >= LATEST) {
      this.reject(
        out,
        input,
        'validate',
        'IMPOSSIBLE_TIMESTAMP',
        `command ${command.command_id} has timestamp ${command.timestamp}, outside 2000..2100`,
      );
      return;
    }
    const index = this.dir.indexOfEndpointId(command.endpoint_id);
    if (index === undefined) {
      this.reject(
        out,
        input,
        'resolve',
        'UNKNOWN_ENDPOINT',
        `command ${command.command_id}: endpoint ${command.endpoint_id} is not in the reference data`,
      );
      return;
    }
    if (this.state.seenCommands.repeat(command.command_id, minuteOf(command.timestamp))) {
      out.duplicates++;
      return;
    }
    this.advance(command.timestamp, input, out);
    const device = this.deviceState(index);
    try {
      if (command.type === 'LIMIT_EXTENSION') {
        if (command.volume === null) throw new RangeError('LIMIT_EXTENSION: volume is required');
        device.limits ??= newEndpointLimits(command.timestamp);
        const effects = extendEndpointLimit(
          device.limits,
          this.limitPolicy(index),
          command.service,
          command.volume,
          command.timestamp,
        );
        this.limitEffects(index, effects, command.timestamp, input, out);
        return;
      }
      const { quota, effects } = applyQuotaCommand(device.quotas?.[command.service], command);
      if (quota) {
        device.quotas ??= {};
        device.quotas[command.service] = quota;
        this.state.withQuota.add(index);
        this.state.nextQuotaDeadline = Math.min(this.state.nextQuotaDeadline, quotaDeadline(quota));
      } else {
        if (device.quotas) delete device.quotas[command.service];
        if (!device.quotas?.DATA && !device.quotas?.SMS) {
          device.quotas = undefined;
          this.state.withQuota.delete(index);
        }
      }
      this.quotaEffects(index, effects, command.service, command.timestamp, input, out);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.reject(
        out,
        input,
        'validate',
        'INVALID_COMMAND',
        `command ${command.command_id}: ${error.message}`,
      );
    }
  }

  private limitPolicy(index: number) {
    const limits = this.dir.serviceProfileOf(index).limits;
    return { dataMb: limits?.data_mb, sms: limits?.sms, warningPercentage: limits?.warning_percentage };
  }

  /** Usage counted against the endpoint's quotas and monthly limits. */
  private policy(
    index: number,
    slot: number,
    usage: { dataBytes: bigint; sms: bigint; smsMo: bigint },
    t: number,
    input: Input,
    out: FoldOutputs,
  ): void {
    const device = this.deviceState(index);
    const data = device.quotas?.DATA;
    const sms = device.quotas?.SMS;
    if (data && usage.dataBytes > 0n)
      this.quotaEffects(index, consumeQuota(data, usage.dataBytes, t), 'DATA', t, input, out, slot);
    // An SMS quota counts the messages the device sends.
    if (sms && usage.smsMo > 0n)
      this.quotaEffects(index, consumeQuota(sms, usage.smsMo, t), 'SMS', t, input, out, slot);
    const policy = this.limitPolicy(index);
    if (policy.dataMb === undefined && policy.sms === undefined) return;
    device.limits ??= newEndpointLimits(t);
    this.limitEffects(
      index,
      countEndpointUsage(device.limits, policy, { dataBytes: usage.dataBytes, sms: usage.sms }, t),
      t,
      input,
      out,
      slot,
    );
  }

  /** Quota transitions as events (56-61 from the API, 18-21 and 60/61 from policy control) and core commands. */
  private quotaEffects(
    index: number,
    effects: QuotaEffect[],
    service: 'DATA' | 'SMS',
    t: number,
    input: Input,
    out: FoldOutputs,
    slot = 0,
  ): void {
    for (const effect of effects) {
      const fromApi = effect.event.endsWith('_ASSIGNED') || effect.event.endsWith('_DELETED');
      const alert = !fromApi && effect.event !== 'GENERIC';
      const id = input.nextId();
      out.events.push(
        buildEvent({
          id,
          time: t,
          subject: subjectOf(this.dir, index, slot),
          type: effect.event,
          source: fromApi ? 'API' : 'POLICY_CONTROL',
          severity: alert || effect.event === 'GENERIC' ? 'WARN' : 'INFO',
          alert,
          description: effect.description,
          detail: effect.detail,
        }),
      );
      if (effect.enforce)
        this.enforce(
          index,
          effect.enforce.action,
          service,
          effect.enforce.peakThroughput,
          effect.enforce.reason,
          t,
          id,
          out,
          'quota',
        );
    }
  }

  /** Limit transitions as events (65 warning, 11 blocked, resets) and core commands. */
  private limitEffects(
    index: number,
    effects: LimitEffect[],
    t: number,
    input: Input,
    out: FoldOutputs,
    slot = 0,
  ): void {
    for (const effect of effects) {
      const id = input.nextId();
      const alert = effect.event !== 'GENERIC';
      out.events.push(
        buildEvent({
          id,
          time: t,
          subject: subjectOf(this.dir, index, slot),
          type: effect.event,
          source: 'POLICY_CONTROL',
          severity: alert ? 'WARN' : 'INFO',
          alert,
          description: effect.description,
          detail: null,
        }),
      );
      if (effect.enforce?.action === 'BLOCK') this.state.limitBlocked.add(index);
      if (effect.enforce)
        this.enforce(
          index,
          effect.enforce.action,
          effect.enforce.scope,
          null,
          effect.enforce.reason,
          t,
          id,
          out,
          'limit',
        );
    }
  }

  private enforce(
    index: number,
    action: EnforcementCommand['action'],
    scope: EnforcementCommand['scope'],
    peakThroughput: number | null,
    reason: string,
    t: number,
    causeEventId: number,
    out: FoldOutputs,
    rule: 'quota' | 'limit',
  ): void {
    // Quotas and limits block independently: the core is told to unblock a service only
    // when no rule holds it any more.
    const device = this.deviceState(index);
    const services = scope === 'ALL' ? ['DATA', 'SMS'] : [scope];
    if (action === 'BLOCK' || action === 'THROTTLE') {
      device.holds ??= [];
      for (const service of services)
        if (!device.holds.includes(`${service}:${rule}`)) device.holds.push(`${service}:${rule}`);
    } else if (action === 'UNBLOCK') {
      const holds = (device.holds ?? []).filter(
        (hold) => !services.some((service) => hold === `${service}:${rule}`),
      );
      device.holds = holds.length > 0 ? holds : undefined;
      const free = services.filter((service) => !holds.some((hold) => hold.startsWith(`${service}:`)));
      if (free.length === 0) return;
      scope = free.length === 2 ? 'ALL' : (free[0] as 'DATA' | 'SMS');
    }
    out.enforcement.push({
      command_id: `enf-${causeEventId}`,
      timestamp: t,
      action,
      scope,
      level: 'ENDPOINT',
      endpoint_id: this.dir.endpointId(index),
      imsis: this.dir.sim(index).imsis.map((i) => i.imsi),
      peak_throughput: peakThroughput,
      reason,
      cause_event_id: causeEventId,
    });
  }
}

const DATA_TRAFFIC = { id: 5, description: 'Data' };
const SMS_TRAFFIC = { id: 6, description: 'SMS' };

/**
 * The endpoint of a usage record: the subject's endpoint with balance null. Subjects are
 * immutable and cached (subject.ts), so one copy per subject endpoint serves every record.
 */
const withBalanceCache = new WeakMap<EventEndpoint, EmnifyUsageRecord['endpoint']>();
function withBalance(endpoint: EventEndpoint): EmnifyUsageRecord['endpoint'] {
  let copy = withBalanceCache.get(endpoint);
  if (!copy) {
    copy = { ...endpoint, balance: null };
    withBalanceCache.set(endpoint, copy);
  }
  return copy;
}

/** The operator and tariff parts of usage records (derivedPart: output-json.ts writes each once). */
const usageOperators = new WeakMap<Operator, Map<string, EmnifyUsageRecord['operator']>>();
function usageOperator(operator: Operator, country: Country, mnc: string): EmnifyUsageRecord['operator'] {
  return derivedPart(
    usageOperators,
    operator,
    mnc,
    (part) =>
      part.name === operator.name &&
      part.id === operator.id &&
      part.country.id === country.id &&
      part.country.mcc === country.mcc &&
      part.country.name === country.name,
    () => ({
      id: operator.id,
      name: operator.name,
      mnc,
      country: { id: country.id, mcc: country.mcc, name: country.name },
    }),
  );
}

const usageTariffs = new WeakMap<Tariff, Map<Ratezone, EmnifyUsageRecord['tariff']>>();
function usageTariff(tariff: Tariff, zone: Ratezone): EmnifyUsageRecord['tariff'] {
  return derivedPart(
    usageTariffs,
    tariff,
    zone,
    (part) =>
      part.name === tariff.name &&
      part.id === tariff.id &&
      part.ratezone.id === zone.id &&
      part.ratezone.name === zone.name,
    () => ({ id: tariff.id, name: tariff.name, ratezone: { id: zone.id, name: zone.name } }),
  );
}

/** A timestamp no record of ours can have (NaN is let through, as it always was). */
function outsideRange(time: number): boolean {
  return time < EARLIEST || time >= LATEST;
}

/** A signaling cause as words: "ROAMING_NOT_ALLOWED" -> "roaming not allowed". */
function causeText(cause: string | null): string {
  return (cause ?? 'UNKNOWN').toLowerCase().replace(/_/g, ' ');
}

/** When a quota next changes by itself: its expiry, or the next midnight UTC if it refills. */
function quotaDeadline(quota: Quota): number {
  if (quota.status === 'EXPIRED') return Number.POSITIVE_INFINITY;
  const midnight = (quota.day + 1) * 86_400_000;
  return quota.autoRefill ? Math.min(quota.expiry, midnight) : quota.expiry;
}
