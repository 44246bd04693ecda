// Child process of test/log-crash.test.ts: appends batches to two partitions with fsync
// 'always' until it is killed, printing "ack <partition> <nextOffset>" once each batch is
// acknowledged, then committing a cursor. Plain JS on the built log (dist/), run by node.
import { openEmbeddedLog } from '../../dist/src/log/index.js';

const [dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: log-writer.mjs DIR');

// Same function as crashRecord in log-crash.test.ts: the content follows from the offset.
const record = (partition, offset) => ({
  key: `k${offset % 13}`,
  value: Buffer.from(`p${partition} o${offset} ${'x'.repeat((offset % 97) * 10)}`),
  timestamp: 1_767_225_600_000 + offset,
});

const log = await openEmbeddedLog({ dir, fsync: 'always', segmentBytes: 64 * 1024, retentionMs: Infinity });
const topic = await log.topic('crash', 2);

async function writer(partition) {
  for (;;) {
    const base = await topic.endOffset(partition);
    // Mostly small batches, now and then a big one (~300 KB) that takes longer to write.
    const count = Math.random() < 0.1 ? 500 : 1 + Math.floor(Math.random() * 50);
    const batch = Array.from({ length: count }, (_, i) => record(partition, base + i));
    const { baseOffset, nextOffset } = await topic.append(partition, batch);
    if (baseOffset !== base) throw new Error(`partition ${partition}: base ${baseOffset}, expected ${base}`);
    process.stdout.write(`ack ${partition} ${nextOffset}\n`);
    await log.cursors.commit('writer', 'crash', partition, nextOffset);
  }
}

await Promise.all([writer(0), writer(1)]);
