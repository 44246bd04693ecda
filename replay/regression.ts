/**
 * Expected outputs of the recorded regression captures (replay/expected/<name>.json):
 * the engine summary (src/engine/summary.ts) and, per output topic, the record count and
 * a SHA-256 over the records' bytes in (partition, offset) order, each record followed by
 * "\n" (so it equals `sha256sum` of the topic dumped as NDJSON). Shared by the regression
 * test (test/replay-regression.test.ts) and the script that re-records them (record.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCapture } from '../src/capture/reader.js';
import { EmbeddedEngine } from '../src/engine/engine.js';
import { type EngineSummary, summarise } from '../src/engine/summary.js';
import { DIFF_TOPICS } from '../src/lab/diff.js';
import { packageRoot } from '../src/util/paths.js';
import { CAPTURES, type RegressionCapture, sha256 } from './captures.js';

export interface TopicDigest {
  records: number;
  /** Records per partition, partition 0 first. */
  per_partition: number[];
  /** SHA-256 (hex) over every record's bytes followed by "\n", in (partition, offset) order. */
  sha256: string;
}

export interface ExpectedOutputs {
  capture: string;
  /** SHA-256 of the capture file these outputs belong to. */
  capture_sha256: string;
  partitions: number;
  summary: EngineSummary;
  topics: Record<string, TopicDigest>;
}

export const REPLAY_DIR = join(packageRoot(), 'replay');
export const capturePath = (capture: RegressionCapture) => join(REPLAY_DIR, 'captures', capture.file);
export const expectedPath = (capture: RegressionCapture) =>
  join(REPLAY_DIR, 'expected', `${capture.name}.json`);

export { CAPTURES };

/** Digest of every output topic of an engine. */
export async function digestOutputs(engine: EmbeddedEngine): Promise<Record<string, TopicDigest>> {
  const topics: Record<string, TopicDigest> = {};
  for (const name of DIFF_TOPICS) {
    const topic = engine.outputTopic(name);
    const hash = createHash('sha256');
    const digest: TopicDigest = { records: 0, per_partition: [], sha256: '' };
    for (let p = 0; p < topic.partitions; p++) {
      let n = 0;
      let offset = await topic.startOffset(p);
      for (;;) {
        const batch = await topic.read(p, offset, 10_000);
        if (batch.length === 0) break;
        for (const record of batch) {
          hash.update(record.value);
          hash.update('\n');
        }
        n += batch.length;
        offset = (batch[batch.length - 1]?.offset ?? offset) + 1;
      }
      digest.per_partition.push(n);
      digest.records += n;
    }
    digest.sha256 = hash.digest('hex');
    topics[name] = digest;
  }
  return topics;
}

/** Replays a regression capture into a fresh data dir and computes what it is compared on. */
export async function replayAndDigest(capture: RegressionCapture, dataDir: string): Promise<ExpectedOutputs> {
  const file = capturePath(capture);
  const { header } = await openCapture(file);
  const engine = await EmbeddedEngine.open({ dataDir, partitions: capture.partitions }, header.reference);
  try {
    await engine.replay(file);
    return {
      capture: capture.file,
      capture_sha256: sha256(readFileSync(file)),
      partitions: capture.partitions,
      summary: await summarise(engine),
      topics: await digestOutputs(engine),
    };
  } finally {
    await engine.close();
  }
}

export function readExpected(capture: RegressionCapture): ExpectedOutputs {
  return JSON.parse(readFileSync(expectedPath(capture), 'utf8')) as ExpectedOutputs;
}
