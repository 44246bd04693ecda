/**
 * Where data streams are kept: one JSON file, replaced atomically on every change, so a
 * crash leaves the old or the new set of streams. Small by nature (streams per
 * organisation are few); Kafka mode will keep them in a compacted topic instead.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../log/embedded/files.js';
import type { DataStream } from './config.js';

export class StreamStore {
  private readonly file: string;
  private readonly streams = new Map<string, DataStream>();
  /** Changes are written one at a time, in call order. */
  private writing: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'streams.json');
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      // No file yet: no streams.
    }
    if (text) for (const stream of JSON.parse(text) as DataStream[]) this.streams.set(stream.id, stream);
  }

  list(organisationId?: number): DataStream[] {
    return [...this.streams.values()].filter(
      (s) => organisationId === undefined || s.organisation_id === organisationId,
    );
  }

  get(id: string): DataStream | undefined {
    return this.streams.get(id);
  }

  async put(stream: DataStream): Promise<void> {
    this.streams.set(stream.id, stream);
    await this.save();
  }

  async delete(id: string): Promise<boolean> {
    const had = this.streams.delete(id);
    if (had) await this.save();
    return had;
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify([...this.streams.values()], null, 2)}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.file, text));
    return this.writing;
  }
}
