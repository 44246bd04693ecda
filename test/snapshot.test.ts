import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deserialise,
  readSnapshot,
  serialise,
  serialisePieces,
  writeSnapshot,
} from '../src/engine/snapshot.js';

const state = {
  version: 1,
  partition: 3,
  skipped: undefined,
  inputOffset: 12_345,
  nextDeadline: Number.POSITIVE_INFINITY,
  devices: new Map<number, unknown>([
    [
      7,
      {
        connectivity: 'Online',
        sessions: new Map([['10.0.0.1/42', { rx: 10n ** 20n, tx: 0n, detail: { a: [1, 'é'] } }]]),
        holds: [],
      },
    ],
    [9, { connectivity: 'Offline', sessions: new Map(), quotas: {}, limits: null, gone: undefined }],
  ]),
  seen: new Map(
    Array.from({ length: 5000 }, (_, i) => [`node-${i}/charging/${i % 7}`, 1_767_225_600_000 + i]),
  ),
  withQuota: new Set([1, 2, 3]),
  inclusiveUsed: new Map([['7/3/2026-01', 123_456_789_012_345_678n]]),
  list: [1, undefined, 'x'],
  empty: new Map(),
};

describe('snapshots', () => {
  it('are written in pieces with exactly the text of serialise, and read back whole', async () => {
    expect([...serialisePieces(state)].join('')).toBe(serialise(state));
    const file = join(mkdtempSync(join(tmpdir(), 'ds-snapshot-')), 'partition-3.json');
    await writeSnapshot(file, state);
    expect(readFileSync(file, 'utf8')).toBe(serialise(state));
    expect(await readSnapshot(file)).toEqual(deserialise(serialise(state)));
    const read = (await readSnapshot<typeof state>(file)) as typeof state;
    const device = read.devices.get(7) as { sessions: Map<string, { rx: bigint }> };
    expect(device.sessions.get('10.0.0.1/42')?.rx).toBe(10n ** 20n);
  });
});
