/**
 * Benchmark scenario: the repeat windows. The data CDRs' (src/core/cdr-repeats.ts) filled
 * with BEARERS bearers of four to eight CDRs each, 1% of them with one late, then every
 * CDR offered again; the signaling ids' (src/core/id-window.ts) with as many ids as there
 * are bearers, then again. Prints memory per bearer and per id, and time per check: what
 * a span of a fleet's traffic costs the engine (load-tests/RESULTS.md has the arithmetic).
 *   node --expose-gc dist/load-tests/scenarios/repeat-window.js [BEARERS]
 */
import { CdrRepeats } from '../../src/core/cdr-repeats.js';
import { IdWindow } from '../../src/core/id-window.js';

const bearers = Number(process.argv[2] ?? '10000000');
const MINUTE = 29_450_000; // January 2026
const NODES = ['pgw-eu-west-1a', 'pgw-eu-west-1b', 'pgw-us-east-1a', 'pgw-ap-south-1a'];

/** Heap and buffers in use, after a full collection (and time for buffers to be freed: on one core their sweeper runs later). */
async function settle(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  await new Promise((resolve) => setTimeout(resolve, 500));
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** CDRs of bearer b: 4 to 8, as (sequence) in arrival order; 1 in 100 bearers has one late. */
function sequences(b: number): number[] {
  const count = 4 + (b % 5);
  const order = Array.from({ length: count }, (_, i) => i + 1);
  if (b % 100 === 7) order.push(order.splice(1, 1)[0] as number);
  return order;
}

function offerAll(window: CdrRepeats): { cdrs: number; repeats: number; ms: number } {
  let cdrs = 0;
  let repeats = 0;
  const began = performance.now();
  for (let b = 0; b < bearers; b++) {
    const node = NODES[b % NODES.length] as string;
    const charging = (b * 2_654_435_761) % 2 ** 32; // spread as a gateway's ids are
    for (const sequence of sequences(b)) {
      cdrs++;
      if (window.repeat(node, charging, sequence, MINUTE + Math.floor(b / 10_000))) repeats++;
    }
  }
  return { cdrs, repeats, ms: performance.now() - began };
}

function offerIds(window: IdWindow): { repeats: number; ms: number } {
  let repeats = 0;
  const began = performance.now();
  for (let i = 0; i < bearers; i++)
    if (window.repeat(`core${i % 4}-${i}`, MINUTE + Math.floor(i / 10_000))) repeats++;
  return { repeats, ms: performance.now() - began };
}

let before = await settle();
const window = new CdrRepeats();
const first = offerAll(window);
const held = (await settle()) - before;
const again = offerAll(window);
if (first.repeats !== 0 || again.repeats !== again.cdrs) throw new Error('the CDR window answered wrongly');

before = await settle();
const ids = new IdWindow();
const firstIds = offerIds(ids);
const idsHeld = (await settle()) - before;
const idsAgain = offerIds(ids);
if (firstIds.repeats !== 0 || idsAgain.repeats !== bearers) throw new Error('the id window answered wrongly');

console.log(
  JSON.stringify({
    bearers,
    cdrs: first.cdrs,
    bytes_per_bearer: Math.round(held / bearers),
    bytes_per_cdr: Math.round((held / first.cdrs) * 10) / 10,
    window_mb: Math.round(held / 2 ** 20),
    new_ns_per_cdr: Math.round((first.ms * 1e6) / first.cdrs),
    repeat_ns_per_cdr: Math.round((again.ms * 1e6) / again.cdrs),
    bytes_per_id: Math.round(idsHeld / bearers),
    new_ns_per_id: Math.round((firstIds.ms * 1e6) / bearers),
    repeat_ns_per_id: Math.round((idsAgain.ms * 1e6) / bearers),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
