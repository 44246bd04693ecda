/**
 * Re-records the expected outputs of the regression captures after a deliberate change
 * of behaviour:
 *
 *   npm run build && node dist/replay/record.js [NAME...] [--captures]
 *
 * Replays each capture (all, or the NAMEs given) into a temporary data dir and writes
 * replay/expected/<name>.json. With --captures it first rebuilds the capture files
 * themselves from replay/captures.ts (only when a capture must change: the inputs of
 * every expected output change with it). Then check the new outputs by hand as
 * replay/README.md describes, and commit captures and expected outputs together.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CAPTURES, capturePath, expectedPath, replayAndDigest } from './regression.js';

/** Pretty JSON the way biome formats it (arrays of numbers on one line), so `npm test`'s lint passes. */
function formatted(value: unknown): string {
  const text = JSON.stringify(value, null, 2).replace(
    /\[\n\s+(-?\d+(?:,\n\s+-?\d+)*)\n\s+\]/g,
    (_, numbers: string) => `[${numbers.split(/,\s+/).join(', ')}]`,
  );
  return `${text}\n`;
}

async function main(argv: string[]): Promise<number> {
  const rebuild = argv.includes('--captures');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknownFlag = argv.find((a) => a.startsWith('--') && a !== '--captures');
  if (unknownFlag) {
    console.error(
      `record: unknown option ${unknownFlag}; usage: node dist/replay/record.js [NAME...] [--captures]`,
    );
    return 2;
  }
  const unknown = names.filter((n) => !CAPTURES.some((c) => c.name === n));
  if (unknown.length > 0) {
    console.error(
      `record: no capture named ${unknown.join(', ')}; captures: ${CAPTURES.map((c) => c.name).join(', ')}`,
    );
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'ds-record-'));
  try {
    for (const capture of CAPTURES.filter((c) => names.length === 0 || names.includes(c.name))) {
      if (rebuild) {
        mkdirSync(dirname(capturePath(capture)), { recursive: true });
        await capture.build(capturePath(capture));
        console.log(`built    ${capturePath(capture)}`);
      }
      const expected = await replayAndDigest(capture, join(work, capture.name));
      mkdirSync(dirname(expectedPath(capture)), { recursive: true });
      writeFileSync(expectedPath(capture), formatted(expected));
      const counts = Object.entries(expected.topics)
        .map(([topic, d]) => `${topic} ${d.records}`)
        .join(', ');
      console.log(`recorded ${expectedPath(capture)}: ${expected.summary.records_in} records in; ${counts}`);
    }
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`record: ${(error as Error)?.stack ?? String(error)}`);
    process.exitCode = 1;
  },
);
