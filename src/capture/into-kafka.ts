/**
 * A capture replayed into a running distributed deployment: its lines onto the raw topic,
 * partitioned as the engine partitions them (by the deployment's reference data), at the
 * capture's own pace times `speed` or as fast as possible. The replicas process them like
 * any other traffic. Every line is appended (no resume: others write the topic too).
 */
import { captureLines, Ingestor, pacedChunks } from '../engine/ingest.js';
import type { Topic } from '../log/types.js';
import type { Directory } from '../reference/directory.js';

export interface IntoTopicProgress {
  lines: number;
  /** Event time of the latest line, ms. */
  virtualTime: number | null;
}

export async function replayIntoTopic(
  capture: string,
  raw: Topic,
  directory: Directory,
  options: { speed?: number; onProgress?: (p: IntoTopicProgress) => void } = {},
): Promise<IntoTopicProgress> {
  const ingestor = await Ingestor.open(raw, directory, { resume: false });
  const progress: IntoTopicProgress = { lines: 0, virtualTime: null };
  for await (const chunk of pacedChunks(captureLines(capture), 5_000, options.speed)) {
    for (const line of chunk) ingestor.add(line);
    progress.lines += await ingestor.flush();
    progress.virtualTime = ingestor.latestTime;
    options.onProgress?.(progress);
  }
  return progress;
}
