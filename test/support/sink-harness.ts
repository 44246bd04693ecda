/**
 * What the sink conformance suite (test/sinks-conformance.test.ts) needs from each sink's
 * test setup: its local endpoint, a fresh destination per case whose credentials point
 * through a TCP fault proxy, and a way to read back what arrived. Plus the fault proxy
 * itself and the child-process bookkeeping the harnesses share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { SinkFactory } from '../../connectors/sinks/types.js';

/** One record as read back from a destination, in arrival order. */
export interface Received {
  /** The record's `id` field. */
  id: number;
  /**
   * The destination's own key for it: Kinesis partition key, Pub/Sub ordering key, Event
   * Hubs partition key. Destinations without keys (webhook, S3) give the endpoint id read
   * from the record. Null when there is none.
   */
  key: string | null;
  /** The record's JSON text exactly as it arrived. */
  json: string;
  /**
   * The record id the destination carries beside the body, for consumers to deduplicate on
   * (Pub/Sub attribute and Event Hubs property `record_id`), as text; absent elsewhere.
   */
  recordId?: string;
}

/** One data stream destination of one case: where to send, and what arrived there. */
export interface Destination {
  /** `destination` of a data stream body (emnify's API v2), credentials through the proxy. */
  body: { connection_type: string; credentials: Record<string, unknown>; format?: string };
  /** Everything delivered so far, in arrival order (duplicates included). */
  received(): Promise<Received[]>;
}

/** How a sink can report a partial failure through its real (or protocol-faithful) endpoint. */
export type PartialFailure =
  /** The endpoint refuses part of a write once (Event Hubs fake `rejectNext`): retried, then all arrive. */
  | { kind: 'transient'; inject(destination: Destination, keys: string[]): void }
  /** A record the destination can never take (Pub/Sub: over 10 MB): partial, then dead-lettered alone. */
  | { kind: 'oversized-record'; bytes: number }
  /** Not reportable through a real endpoint; the suite asserts nothing for it. */
  | { kind: 'not-applicable'; why: string };

export interface SinkHarness {
  /** Short name for test titles: webhook, s3, kinesis, pubsub, eventhubs. */
  readonly name: string;
  readonly factory: SinkFactory;
  /** Sits between the sink and the endpoint; break it to inject failures. */
  readonly proxy: FaultProxy;
  /**
   * What "in order per endpoint" means at this destination, for the ordering case's
   * message (Kinesis: per shard, Pub/Sub: per ordering key...).
   */
  readonly ordering: string;
  readonly partial: PartialFailure;
  /** Key the destination gives a record without an endpoint (log partition as given). */
  keylessKey(partition: number): string | null;
  /** Starts the endpoint and the proxy. Rejects, saying how to install it, when it cannot. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A fresh, empty destination (bucket prefix, stream, topic, hub, path) for one case; batches of `batchSize` records. */
  destination(name: string, batchSize: number): Promise<Destination>;
}

// ---------------------------------------------------------------- fault proxy

/**
 * A TCP proxy on 127.0.0.1 in front of one endpoint. While broken, it resets every open
 * connection and every new one at once (the client sees ECONNRESET), which every sink
 * classifies as a retriable network failure. Healed, it forwards bytes untouched.
 */
export class FaultProxy {
  private server: Server | undefined;
  private readonly open = new Set<Socket>();
  private broken = false;
  /** Connections forwarded, refused while broken, and open ones reset by `break`. */
  forwarded = 0;
  refused = 0;
  resets = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  get port(): number {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('fault proxy is not listening');
    return address.port;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
  }

  /** From now on, connections are reset, open ones at once. */
  break(): void {
    this.broken = true;
    for (const socket of this.open) {
      this.resets++;
      reset(socket);
    }
    this.open.clear();
  }

  heal(): void {
    this.broken = false;
  }

  get isBroken(): boolean {
    return this.broken;
  }

  /** Broken for `ms`, then healed (resolves once healed). */
  async breakFor(ms: number): Promise<void> {
    this.break();
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.heal();
  }

  async close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    this.open.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.broken) {
      this.refused++;
      reset(client);
      return;
    }
    this.forwarded++;
    const upstream = connect(this.target.port, this.target.host);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.open.add(client);
    this.open.add(upstream);
    const drop = () => {
      this.open.delete(client);
      this.open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

function reset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

// ---------------------------------------------------------------- processes and ports

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) killGroup(child);
});

function killGroup(child: ChildProcess): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    // Started detached: the child (and a shim's grandchildren) form their own process group.
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** Kills a service started with `startService` and resolves once it has exited. */
export function stopService(child: ChildProcess | undefined): Promise<void> {
  if (!child) return Promise.resolve();
  children.delete(child);
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killGroup(child);
  return exited;
}

/**
 * Starts a local service as a child process (its own process group, killed on exit) and
 * waits until `ready` says so. Rejects with `installHint` and the service's last output
 * when it cannot start, exits, or is not ready within `timeoutMs`.
 */
export async function startService(options: {
  command: string;
  args: string[];
  env?: Record<string, string>;
  installHint: string;
  /** Polled every 100 ms; may also look at the output so far. */
  ready: (output: string) => boolean | Promise<boolean>;
  timeoutMs?: number;
}): Promise<ChildProcess> {
  const child = spawn(options.command, options.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    detached: true,
  });
  children.add(child);
  // Everything until the service is ready (a readiness line is never cut off), then the tail.
  let output = '';
  let started = false;
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (started) output = output.slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let failure: Error | undefined;
  child.once('error', (e) => {
    failure = new Error(`${options.installHint} (${options.command}: ${e.message})`);
  });
  child.once('exit', (code, signal) => {
    failure ??= new Error(
      `${options.installHint} (${options.command} exited with ${code ?? signal})\n${output}`,
    );
  });
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!failure && Date.now() < deadline) {
    if (await Promise.resolve(options.ready(output)).catch(() => false)) {
      started = true;
      output = output.slice(-4000);
      return child;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stopService(child);
  throw (
    failure ??
    new Error(
      `${options.installHint} (${options.command} was not ready within ${options.timeoutMs ?? 30_000} ms)\n${output}`,
    )
  );
}

export { freePort } from './ports.js';

/** The endpoint id of an emnify record's JSON, as the lane keys it; null for organisation-level records. */
export function endpointKey(json: string): string | null {
  const parsed = JSON.parse(json) as { endpoint?: { id?: number } | null };
  return parsed.endpoint?.id === undefined ? null : String(parsed.endpoint.id);
}

export function recordId(json: string): number {
  return (JSON.parse(json) as { id: number }).id;
}
