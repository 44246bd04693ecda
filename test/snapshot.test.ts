import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deserialise,
  readSnapshot,
  SNAPSHOT_HEADER,
  serialise,
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
  it('are written in steps, a line each, and read back as serialise and deserialise would give them', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ds-snapshot-')), 'partition-3.json');
    await writeSnapshot(file, state);
    expect(await readSnapshot(file)).toEqual(deserialise(serialise(state)));
    const read = (await readSnapshot<typeof state>(file)) as typeof state;
    const device = read.devices.get(7) as { sessions: Map<string, { rx: bigint }> };
    expect(device.sessions.get('10.0.0.1/42')?.rx).toBe(10n ** 20n);
    expect(read.nextDeadline).toBe(Number.POSITIVE_INFINITY);
    expect(read.withQuota).toEqual(new Set([1, 2, 3]));

    // No line holds more than a thousand entries of a Map: the file is never one string.
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).toBe(SNAPSHOT_HEADER);
    expect(lines.filter((l) => l.startsWith('["map",["seen"]')).length).toBe(6);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(60_000);
  });

  it('still reads a snapshot written as one JSON text (before the steps)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ds-snapshot-')), 'partition-3.json');
    writeFileSync(file, serialise(state));
    expect(await readSnapshot(file)).toEqual(deserialise(serialise(state)));
  });

  it('refuses a cut or damaged snapshot with SNAPSHOT_CORRUPT, naming the file and the step', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ds-snapshot-'));
    const file = join(dir, 'partition-3.json');
    await writeSnapshot(file, state);
    const text = readFileSync(file, 'utf8');
    const cut = join(dir, 'cut.json');
    writeFileSync(cut, text.slice(0, Math.floor(text.length / 2)));
    await expect(readSnapshot(cut)).rejects.toMatchObject({
      code: 'SNAPSHOT_CORRUPT',
      message: expect.stringContaining(cut),
    });
    const damaged = join(dir, 'damaged.json');
    writeFileSync(damaged, text.replace('["map",["devices"]', '["mop",["devices"]'));
    await expect(readSnapshot(damaged)).rejects.toMatchObject({
      code: 'SNAPSHOT_CORRUPT',
      message: expect.stringMatching(/step \d+: /),
    });
    expect(await readSnapshot(join(dir, 'none.json'))).toBeUndefined();
  });
});
