import type { DeviceProfile } from '../reference/types.js';

/**
 * Behaviour of the three device kinds the generator deploys. Times in seconds, volumes in
 * bytes, rates per day. Each device draws its own values inside these ranges, and a
 * per-device volume multiplier with a heavy tail makes most devices send little and a
 * few send a lot.
 */
export interface ProfileParameters {
  /** Mean time between data sessions, drawn log-uniformly per device. */
  sessionIntervalS: [number, number];
  /** Session duration range. */
  sessionDurationS: [number, number];
  /** Median bytes per session before the device's multiplier. */
  medianSessionBytes: number;
  /** Share of the bytes sent by the device (uplink). */
  uplinkShare: [number, number];
  smsMoPerDay: number;
  smsMtPerDay: number;
  /** Mean time a device stays in a country (international) or on an operator (national). */
  meanDwellS: number;
  /** RAT types the device kind uses (3GPP RAT type values). */
  ratTypes: number[];
}

export const PROFILES: Record<DeviceProfile, ProfileParameters> = {
  // Smart meters: short, rare sessions with a few KB; NB-IoT or LTE-M or 2G.
  meter: {
    sessionIntervalS: [1800, 86_400],
    sessionDurationS: [20, 120],
    medianSessionBytes: 6_000,
    uplinkShare: [0.6, 0.85],
    smsMoPerDay: 0.2,
    smsMtPerDay: 0.1,
    meanDwellS: 30 * 86_400,
    ratTypes: [8, 9, 2],
  },
  // Asset trackers: frequent sessions, crossing borders.
  tracker: {
    sessionIntervalS: [300, 3600],
    sessionDurationS: [30, 600],
    medianSessionBytes: 60_000,
    uplinkShare: [0.7, 0.9],
    smsMoPerDay: 1.5,
    smsMtPerDay: 0.5,
    meanDwellS: 86_400,
    ratTypes: [6, 9, 2],
  },
  // Gateways and routers: long sessions, heavy traffic.
  gateway: {
    sessionIntervalS: [600, 7200],
    sessionDurationS: [900, 4 * 3600],
    medianSessionBytes: 3_000_000,
    uplinkShare: [0.3, 0.6],
    smsMoPerDay: 0.3,
    smsMtPerDay: 0.5,
    meanDwellS: 7 * 86_400,
    ratTypes: [6, 1],
  },
};

/** Relative load by local hour: quiet at night, busy in the working day. */
export const DIURNAL_LOAD = [
  0.35, 0.3, 0.28, 0.27, 0.3, 0.4, 0.6, 0.85, 1.0, 1.0, 1.0, 1.0, 0.95, 1.0, 1.0, 1.0, 0.95, 0.9, 0.85, 0.75,
  0.65, 0.55, 0.45, 0.4,
];
