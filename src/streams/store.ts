/**
 * Where data streams are kept: one JSON file (owner-readable only: it holds destination
 * credentials), replaced atomically on every change, so a crash leaves the old or the new
 * set of streams. Read again whenever another process changed it: the replicas of the
 * distributed mode share it on a volume, and the CLI may change it beside a server.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SharedJsonFile } from '../util/shared-json-file.js';
import type { DataStream } from './config.js';

export class StreamStore {
  private readonly file: SharedJsonFile<DataStream[]>;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = new SharedJsonFile(join(dir, 'streams.json'), () => []);
  }

  list(organisationId?: number): DataStream[] {
    return this.file
      .current()
      .filter((s) => organisationId === undefined || s.organisation_id === organisationId);
  }

  get(id: string): DataStream | undefined {
    return this.file.current().find((s) => s.id === id);
  }

  async put(stream: DataStream): Promise<void> {
    await this.file.change((streams) => {
      const at = streams.findIndex((s) => s.id === stream.id);
      if (at >= 0) streams[at] = stream;
      else streams.push(stream);
    });
  }

  /** Changes a stored stream in place; nothing when it is gone (deleted meanwhile, maybe by another process). */
  async update(id: string, change: (stream: DataStream) => DataStream): Promise<void> {
    await this.file.change((streams) => {
      const at = streams.findIndex((s) => s.id === id);
      if (at >= 0) streams[at] = change(streams[at] as DataStream);
    });
  }

  async delete(id: string): Promise<boolean> {
    if (!this.get(id)) return false;
    await this.file.change((streams) => {
      const at = streams.findIndex((s) => s.id === id);
      if (at >= 0) streams.splice(at, 1);
    });
    return true;
  }
}
