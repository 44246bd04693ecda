/** The API's views of an embedded engine, for `serve` and the demo. */
import type { RawRecord } from '../contracts/raw.js';
import type { EmbeddedEngine } from '../engine/engine.js';
import type { QuotaBackend } from './plugins/quotas.js';

/**
 * Quotas read from the engine's state and changed through its input log. `now` stamps the
 * commands: the wall clock for a running engine, the virtual clock in the demo. A live
 * run's capture gets the commands too, so replaying it reproduces them.
 */
export function engineQuotas(
  engine: EmbeddedEngine,
  now: () => number,
  capture?: () => { write(records: RawRecord[]): Promise<void> } | undefined,
): QuotaBackend {
  return {
    quotaOf: (id, service) => engine.quotaOf(id, service),
    submit: (commands) => engine.submit(commands, capture?.()),
    now,
  };
}
