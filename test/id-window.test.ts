import { describe, expect, it } from 'vitest';
import { IdWindow, type IdWindowSnapshot } from '../src/core/id-window.js';
import { seeded, throughSnapshots } from './fixtures.js';

const M = 29_450_000; // a minute in January 2026

describe('the id repeat window', () => {
  it('tells apart ids that differ only in prefix, leading zeros or digits', () => {
    const window = new IdWindow();
    const ids = [
      'core1-7',
      'core1-07',
      'core1-007',
      'core2-7',
      'core17',
      '7',
      '0',
      '00',
      'core1-',
      'sms',
      '',
    ];
    for (const id of ids) expect(window.repeat(id, M)).toBe(false);
    for (const id of ids) expect(window.repeat(id, M)).toBe(true);
    expect(window.size).toBe(ids.length);
  });

  it('keeps ids whose number is too large for a row under their text', () => {
    const window = new IdWindow();
    const ids = ['x-1099511627775', 'x-1099511627776', 'x-99999999999999999999', 'x-9007199254740993'];
    for (const id of ids) expect(window.repeat(id, M)).toBe(false);
    for (const id of ids) expect(window.repeat(id, M)).toBe(true);
    expect(window.repeat('x-9007199254740992', M)).toBe(false); // the same double, another id
  });

  it('answers as a set would, over 100,000 ids of mixed shapes with repeats', () => {
    const window = new IdWindow();
    const seen = new Set<string>();
    const next = seeded(99);
    const shapes = [
      () => `core${next(3)}-${next(30_000)}`,
      () => `smsc-${String(next(500)).padStart(next(3) + 1, '0')}`,
      () => `${next(40_000)}`,
      () => `tx-${next(1000)}-retry`,
    ];
    let wrong = 0;
    for (let i = 0; i < 100_000; i++) {
      const id = (shapes[next(shapes.length)] as () => string)();
      if (window.repeat(id, M) !== seen.has(id)) wrong++;
      seen.add(id);
    }
    expect(wrong).toBe(0);
    expect(window.size).toBe(seen.size);
  });

  it('forgets ids older than a minute, rows and text alike', () => {
    const window = new IdWindow();
    for (let i = 0; i < 3000; i++) window.repeat(`r-${i}`, M + (i % 3));
    window.repeat('old', M);
    window.repeat('new', M + 2);
    window.forgetBefore(M + 2);
    expect(window.size).toBe(1001);
    expect(window.repeat('r-2', M + 5)).toBe(true);
    expect(window.repeat('r-1', M + 5)).toBe(false);
    expect(window.repeat('old', M + 5)).toBe(false);
    expect(window.repeat('new', M + 5)).toBe(true);
  });

  it('goes through a snapshot in steps, and through one written as a single JSON text, and answers the same after', async () => {
    const window = new IdWindow();
    for (let i = 0; i < 10_000; i++) window.repeat(`core${i % 4}-${i}`, M);
    window.repeat('no-digits', M);
    const read = await throughSnapshots<{ seenSignaling: IdWindowSnapshot }>({ seenSignaling: window });
    for (const { seenSignaling: plain } of read) {
      const restored = IdWindow.restore(plain);
      expect(restored.size).toBe(10_001);
      for (let i = 0; i < 10_000; i++) expect(restored.repeat(`core${i % 4}-${i}`, M)).toBe(true);
      expect(restored.repeat('no-digits', M)).toBe(true);
      expect(restored.repeat('core0-1', M)).toBe(false);
    }
  });
});
