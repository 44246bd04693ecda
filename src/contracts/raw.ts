/**
 * TypeScript views of the raw input contracts in schemas/avro/. The .avsc files are the
 * source of truth; these types mirror them field for field (checked in contracts.test.ts).
 */

export type SignalingType =
  | 'UPDATE_LOCATION'
  | 'UPDATE_GPRS_LOCATION'
  | 'CREATE_PDP_CONTEXT'
  | 'DELETE_PDP_CONTEXT'
  | 'PURGE_LOCATION'
  | 'PURGE_GPRS_LOCATION';

export type Cause =
  | 'UNKNOWN'
  | 'ROAMING_NOT_ALLOWED'
  | 'UNKNOWN_SUBSCRIBER'
  | 'AUTHENTICATION_FAILURE'
  | 'SERVICE_NOT_ALLOWED'
  | 'OPERATOR_BARRING'
  | 'NO_RESOURCES'
  | 'UNKNOWN_APN'
  | 'USER_AUTHENTICATION_FAILED'
  | 'NORMAL_RELEASE'
  | 'INACTIVITY'
  | 'MANAGEMENT_INTERVENTION'
  | 'IMSI_SWITCH';

export interface SignalingRecord {
  record_id: string;
  type: SignalingType;
  timestamp: number;
  imsi: string;
  imeisv: string | null;
  result: 'ACCEPTED' | 'REJECTED';
  cause: Cause | null;
  cause_code: number | null;
  visited_mcc: string;
  visited_mnc: string;
  rat_type: number | null;
  lac: number | null;
  cell_id: number | null;
  network_node: string | null;
  charging_id: number | null;
  gateway_address: string | null;
  apn: string | null;
  pdp_address: string | null;
  nsapi: number | null;
}

/** TS 32.298 causeForRecClosing values the simulator writes. */
export const CauseForRecClosing = {
  normalRelease: 0,
  abnormalRelease: 4,
  volumeLimit: 16,
  timeLimit: 17,
  servingNodeChange: 18,
  managementIntervention: 20,
} as const;

export interface DataCdr {
  recordType: number;
  nodeID: string;
  localSequenceNumber: number;
  servedIMSI: string;
  servedIMEISV: string | null;
  servedMSISDN: string | null;
  chargingID: number;
  recordSequenceNumber: number;
  pGWAddress: string;
  servingNodeAddress: string;
  servingNodePLMNIdentifier: string;
  rATType: number;
  accessPointNameNI: string;
  servedPDPPDNAddress: string | null;
  recordOpeningTime: number;
  timeOfFirstUsage: number;
  timeOfLastUsage: number;
  duration: number;
  dataVolumeUplink: number;
  dataVolumeDownlink: number;
  causeForRecClosing: number;
  locationAreaCode: number | null;
  cellIdentity: number | null;
}

export interface SmsRecord {
  sms_id: string;
  direction: 'MO' | 'MT';
  timestamp: number;
  imsi: string;
  msisdn: string | null;
  other_party: string;
  visited_mcc: string;
  visited_mnc: string;
  smsc_address: string;
  delivered: boolean;
  cause: string | null;
  length: number;
}

export interface EngineCommand {
  command_id: string;
  timestamp: number;
  type: 'QUOTA_ASSIGN' | 'QUOTA_TOP_UP' | 'QUOTA_DELETE' | 'LIMIT_EXTENSION';
  endpoint_id: number;
  service: 'DATA' | 'SMS';
  volume: string | null;
  expiry_date: number | null;
  threshold_percentage: number | null;
  action_on_exhaustion: 'BLOCK' | 'THROTTLE' | null;
  peak_throughput: number | null;
  auto_refill: boolean;
  issued_by: string | null;
}

export type EnforcementAction = 'BLOCK' | 'THROTTLE' | 'UNBLOCK' | 'DISCONNECT';
export type EnforcementScope = 'DATA' | 'SMS' | 'ALL';
/**
 * Who decided: the endpoint's own rules (quotas, monthly limits; the partition merges
 * them) or its organisation's cost limit. The core keeps one block per level, so lifting
 * one never lifts the other.
 */
export type EnforcementLevel = 'ENDPOINT' | 'ORGANISATION';

export interface EnforcementCommand {
  command_id: string;
  timestamp: number;
  action: EnforcementAction;
  scope: EnforcementScope;
  level: EnforcementLevel;
  endpoint_id: number;
  imsis: string[];
  peak_throughput: number | null;
  reason: string;
  cause_event_id: number | null;
}

/** The kinds of record an input log (and a capture) carries. */
export type RawKind = 'signaling' | 'data_cdr' | 'sms' | 'command';

export type RawRecord =
  | { kind: 'signaling'; record: SignalingRecord }
  | { kind: 'data_cdr'; record: DataCdr }
  | { kind: 'sms'; record: SmsRecord }
  | { kind: 'command'; record: EngineCommand };

/** Event time of any raw record: the instant it is ordered and rated by. */
export function eventTime(raw: RawRecord): number {
  return raw.kind === 'data_cdr' ? raw.record.timeOfLastUsage : raw.record.timestamp;
}
