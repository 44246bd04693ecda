import { describe, expect, it } from 'vitest';
import { CdrRepeats, type CdrRepeatsSnapshot } from '../src/core/cdr-repeats.js';
import { seeded, throughSnapshots } from './fixtures.js';

const M = 29_450_000; // a minute in January 2026

describe('the CDR repeat window', () => {
  it('recognises a repeat of each (node, charging id, sequence), in or out of order', () => {
    const window = new CdrRepeats();
    for (const sequence of [3, 1, 2, 5]) expect(window.repeat('pgw-1', 42, sequence, M)).toBe(false);
    for (const sequence of [1, 2, 3, 5]) expect(window.repeat('pgw-1', 42, sequence, M)).toBe(true);
    expect(window.repeat('pgw-1', 42, 4, M)).toBe(false);
    // Another node or bearer with the same numbers is another CDR.
    expect(window.repeat('pgw-2', 42, 1, M)).toBe(false);
    expect(window.repeat('pgw-1', 43, 1, M)).toBe(false);
    expect(window.size).toEqual({ rows: 3, outside: 0 });
  });

  it('keeps sequence numbers far ahead of the run aside, and takes them in when the run reaches them', () => {
    const window = new CdrRepeats();
    expect(window.repeat('pgw-1', 7, 1, M)).toBe(false);
    expect(window.repeat('pgw-1', 7, 100, M)).toBe(false); // 99 ahead: outside the 32-bit mask
    expect(window.repeat('pgw-1', 7, 70, M)).toBe(false);
    expect(window.size).toEqual({ rows: 1, outside: 2 });
    expect(window.repeat('pgw-1', 7, 100, M)).toBe(true);
    for (let sequence = 2; sequence < 100; sequence++)
      expect(window.repeat('pgw-1', 7, sequence, M)).toBe(sequence === 70);
    expect(window.size).toEqual({ rows: 1, outside: 0 });
    for (let sequence = 1; sequence <= 100; sequence++)
      expect(window.repeat('pgw-1', 7, sequence, M)).toBe(true);
    expect(window.repeat('pgw-1', 7, 101, M)).toBe(false);
  });

  it('keeps CDRs whose numbers fit no row under their whole key', () => {
    const window = new CdrRepeats();
    const odd: [number, number][] = [
      [42, 0], // sequence numbers start at 1
      [-1, 1],
      [2 ** 32, 1],
      [1.5, 1],
    ];
    for (const [charging, sequence] of odd) expect(window.repeat('pgw-1', charging, sequence, M)).toBe(false);
    for (const [charging, sequence] of odd) expect(window.repeat('pgw-1', charging, sequence, M)).toBe(true);
    expect(window.repeat('pgw-1', 42, 1, M)).toBe(false);
    expect(window.size).toEqual({ rows: 1, outside: 4 });
  });

  it('answers as a set of every key would, over 200,000 shuffled CDRs with repeats', () => {
    const window = new CdrRepeats();
    const seen = new Set<string>();
    const next = seeded(12345);
    let repeats = 0;
    let wrong = 0;
    for (let i = 0; i < 200_000; i++) {
      const node = `pgw-${next(3)}`;
      const charging = next(20_000) * 7919;
      // Mostly low sequence numbers, some far ahead so that spills happen.
      const sequence = 1 + (next(10) === 0 ? next(200) : next(12));
      const key = `${node}/${charging}/${sequence}`;
      const expected = seen.has(key);
      seen.add(key);
      if (expected) repeats++;
      if (window.repeat(node, charging, sequence, M + (i >> 10)) !== expected) wrong++;
    }
    expect(wrong).toBe(0);
    expect(repeats).toBeGreaterThan(50_000);
    const { rows, outside } = window.size;
    expect(rows).toBeLessThanOrEqual(60_000);
    expect(outside).toBeGreaterThan(0);
  });

  it('forgets a bearer once its latest CDR is older than the given minute, and the CDRs kept aside with it', () => {
    const window = new CdrRepeats();
    window.repeat('pgw-1', 1, 1, M);
    window.repeat('pgw-1', 1, 90, M); // aside
    window.repeat('pgw-1', 2, 1, M);
    window.repeat('pgw-1', 2, 2, M + 100); // the bearer's latest CDR keeps it
    window.repeat('pgw-1', 3, 0, M); // no row
    for (let charging = 10; charging < 5000; charging++) window.repeat('pgw-1', charging, 1, M);
    window.forgetBefore(M + 50);
    expect(window.size).toEqual({ rows: 1, outside: 0 });
    expect(window.repeat('pgw-1', 2, 1, M + 100)).toBe(true);
    expect(window.repeat('pgw-1', 1, 1, M + 100)).toBe(false);
    expect(window.repeat('pgw-1', 1, 90, M + 100)).toBe(false);
    expect(window.repeat('pgw-1', 3, 0, M + 100)).toBe(false);
    expect(window.repeat('pgw-1', 4000, 1, M + 100)).toBe(false);
  });

  it('goes through a snapshot in steps, and through one written as a single JSON text, and answers the same after', async () => {
    const window = new CdrRepeats();
    for (let charging = 0; charging < 10_000; charging++)
      window.repeat('pgw-1', charging, 1 + (charging % 3), M);
    window.repeat('pgw-2', 5, 60, M); // aside
    window.repeat('pgw-2', 5, 0, M); // no row
    const read = await throughSnapshots<{ cdrRepeats: CdrRepeatsSnapshot }>({ cdrRepeats: window });
    for (const { cdrRepeats: plain } of read) {
      expect(plain.rows.length).toBeGreaterThan(1); // 4,096 rows a piece
      const restored = CdrRepeats.restore(plain);
      expect(restored.size).toEqual(window.size);
      for (let charging = 0; charging < 10_000; charging++) {
        expect(restored.repeat('pgw-1', charging, 1 + (charging % 3), M)).toBe(true);
        expect(restored.repeat('pgw-1', charging, 4, M)).toBe(false);
      }
      expect(restored.repeat('pgw-2', 5, 60, M)).toBe(true);
      expect(restored.repeat('pgw-2', 5, 0, M)).toBe(true);
      expect(restored.repeat('pgw-2', 5, 1, M)).toBe(false);
    }
  });

  it('reads the window of earlier snapshots ("node/charging id/sequence" -> minute)', () => {
    const window = CdrRepeats.fromKeys(
      new Map([
        ['pgw/eu/1/42/1', M],
        ['pgw-1/42/0', M],
      ]),
    );
    expect(window.repeat('pgw/eu/1', 42, 1, M)).toBe(true);
    expect(window.repeat('pgw-1', 42, 0, M)).toBe(true);
    expect(window.repeat('pgw/eu/1', 42, 2, M)).toBe(false);
  });
});
