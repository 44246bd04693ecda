import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RegressionCapture, sha256 } from '../replay/captures.js';
import {
  CAPTURES,
  capturePath,
  type ExpectedOutputs,
  expectedPath,
  readExpected,
  replayAndDigest,
} from '../replay/regression.js';
import { packageRoot } from '../src/util/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'ds-regression-'));
const rel = (path: string) => relative(packageRoot(), path);

const HOW_TO = (capture: RegressionCapture, dataDir: string) =>
  [
    'To see the changed records: replay the capture with the code before your change, e.g. in a',
    'checkout of the base commit (git worktree add ../base HEAD; cd ../base; npm ci; npm run build), with',
    `  npx data-streamer replay ${rel(capturePath(capture))} --data-dir /tmp/before --partitions ${capture.partitions}`,
    `then compare it with this run's replay (kept): npx data-streamer diff /tmp/before ${dataDir}`,
    'If the change is deliberate, re-record the expected outputs:',
    `  npm run build && node dist/replay/record.js ${capture.name}`,
    `check them as replay/README.md says, and commit ${rel(expectedPath(capture))} with the change.`,
  ].join('\n');

/** The first mismatch between what a replay gave and what was recorded, as a message; undefined when equal. */
function mismatch(
  capture: RegressionCapture,
  actual: ExpectedOutputs,
  expected: ExpectedOutputs,
  dataDir: string,
) {
  const name = capture.name;
  const where = `regression capture "${name}" (${rel(expectedPath(capture))})`;
  if (actual.capture_sha256 !== expected.capture_sha256)
    return `${where}: the capture file is not the one the outputs were recorded from; re-record: node dist/replay/record.js ${name}`;
  const problems: string[] = [];
  for (const [topic, digest] of Object.entries(expected.topics)) {
    const got = actual.topics[topic];
    if (!got) problems.push(`topic ${topic}: missing from this run`);
    else if (got.records !== digest.records || got.sha256 !== digest.sha256)
      problems.push(
        `topic ${topic}: ${got.records} records (expected ${digest.records}), sha256 ${got.sha256.slice(0, 12)}… (expected ${digest.sha256.slice(0, 12)}…)`,
      );
  }
  if (JSON.stringify(actual.summary) !== JSON.stringify(expected.summary))
    problems.push(
      `summary: ${JSON.stringify(actual.summary)}\n  expected ${JSON.stringify(expected.summary)}`,
    );
  if (problems.length === 0) return undefined;
  return `${where} no longer replays to its recorded outputs:\n  ${problems.join('\n  ')}\n${HOW_TO(capture, dataDir)}`;
}

describe('recorded regression captures (replay/)', () => {
  it('has a capture and an expected output for each, and the expected outputs belong to the capture files', () => {
    expect(CAPTURES.map((c) => c.name)).toEqual(['plain-day', 'quotas-cost-limit', 'malformed']);
    for (const capture of CAPTURES) {
      const expected = readExpected(capture);
      expect(expected.capture).toBe(capture.file);
      expect(expected.capture_sha256, capture.name).toBe(sha256(readFileSync(capturePath(capture))));
      // What each capture is there for shows in its recorded outputs.
      expect(Object.keys(expected.topics)).toEqual([
        'events',
        'usage',
        'enforcement',
        'dead-letters',
        'organisation-events',
        'organisation-enforcement',
      ]);
    }
    const [plain, quotas, malformed] = CAPTURES.map(readExpected) as ExpectedOutputs[];
    expect(plain?.summary.dead_letters).toEqual({});
    expect(plain?.summary.enforcement_commands).toBe(0);
    expect(quotas?.summary.events).toMatchObject({
      '12 Organisation blocked': 1,
      '19 Quota used up': expect.any(Number),
      '57 Data quota deleted': 1,
    });
    expect(quotas?.topics['organisation-enforcement']?.records).toBeGreaterThan(0);
    expect(quotas?.summary.dead_letters).toEqual({ INVALID_COMMAND: 1 });
    expect(Object.keys(malformed?.summary.dead_letters ?? {}).sort()).toEqual([
      'MALFORMED_JSON',
      'SCHEMA_MISMATCH',
      'UNKNOWN_IMSI',
      'UNKNOWN_KIND',
    ]);
    expect(malformed?.summary.duplicates_skipped).toBeGreaterThan(0);
  });

  for (const capture of CAPTURES) {
    it(`replays ${capture.file} to its recorded outputs (summary, record counts, SHA-256 per topic)`, async () => {
      const dataDir = join(dir, capture.name);
      const actual = await replayAndDigest(capture, dataDir);
      const expected = readExpected(capture);
      const message = mismatch(capture, actual, expected, dataDir);
      if (message) expect.fail(message);
      expect(actual).toEqual(expected);
    });
  }
});
