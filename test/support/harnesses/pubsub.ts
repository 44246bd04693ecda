/**
 * Pub/Sub (`PubSub`): Google's official emulator (a Java jar) as a child process on a free
 * port; one topic per destination with a subscription made with message ordering on, read
 * back with synchronous Pull (and acked).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PubSub, v1 } from '@google-cloud/pubsub';
import { pubsubSink } from '../../../connectors/sinks/pubsub/index.js';
import type { SinkFactory } from '../../../connectors/sinks/types.js';
import {
  type Destination,
  FaultProxy,
  freePort,
  type Received,
  recordId,
  type SinkHarness,
  startService,
  stopService,
} from '../sink-harness.js';

// Otherwise google-auth-library probes the GCE metadata server, which is not on this machine.
process.env.METADATA_SERVER_DETECTION = 'none';

const EMULATOR_DIR = '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib';
const INSTALL_HINT =
  'The Pub/Sub emulator could not be started: it needs Java 17 and the official emulator, the Debian ' +
  'packages `openjdk-17-jre-headless` and `google-cloud-cli-pubsub-emulator` ' +
  `(jar cloud-pubsub-emulator-*-all.jar in ${EMULATOR_DIR}/)`;
const PROJECT = 'conformance-project';

function emulatorJar(): string {
  let jars: string[] = [];
  try {
    jars = readdirSync(EMULATOR_DIR).filter((f) => /^cloud-pubsub-emulator-.*-all\.jar$/.test(f));
  } catch {}
  const jar = jars.sort().at(-1);
  if (!jar) throw new Error(`${INSTALL_HINT}: no emulator jar found`);
  return join(EMULATOR_DIR, jar);
}

export class PubSubHarness implements SinkHarness {
  readonly name = 'pubsub';
  readonly factory = pubsubSink as unknown as SinkFactory;
  readonly ordering = 'per ordering key (endpoint id), on a subscription with message ordering';
  /** Over Pub/Sub's 10 MB message limit: the sink refuses it alone and publishes the rest. */
  readonly partial = { kind: 'oversized-record', bytes: 10_000_100 } as const;
  private emulator: ChildProcess | undefined;
  private admin: PubSub | undefined;
  private subscriber: v1.SubscriberClient | undefined;
  private _proxy: FaultProxy | undefined;

  get proxy(): FaultProxy {
    if (!this._proxy) throw new Error('pubsub harness not started');
    return this._proxy;
  }

  keylessKey(): string | null {
    return null;
  }

  async start(): Promise<void> {
    const jar = emulatorJar();
    const port = await freePort();
    this.emulator = await startService({
      command: 'java',
      args: ['-jar', jar, '--host=127.0.0.1', `--port=${port}`],
      installHint: INSTALL_HINT,
      ready: (output) => output.includes('Server started'),
      timeoutMs: 45_000,
    });
    // Keep draining its output so a chatty emulator never blocks on a full pipe.
    this.emulator.stdout?.resume();
    this.emulator.stderr?.resume();
    this.admin = new PubSub({ projectId: PROJECT, apiEndpoint: `127.0.0.1:${port}`, emulatorMode: true });
    const { port: _, ...config } = await this.admin.getClientConfig();
    this.subscriber = new v1.SubscriberClient({ ...config, port });
    this._proxy = new FaultProxy({ host: '127.0.0.1', port });
    await this._proxy.start();
  }

  async stop(): Promise<void> {
    await this._proxy?.close();
    await this.subscriber?.close().catch(() => undefined);
    await this.admin?.close().catch(() => undefined);
    await stopService(this.emulator);
  }

  async destination(name: string, _batchSize: number): Promise<Destination> {
    const admin = this.admin as PubSub;
    const topic = `conformance-${name}`;
    await admin.createTopic(topic);
    await admin.topic(topic).createSubscription(`${topic}-sub`, { enableMessageOrdering: true });
    const path = `projects/${PROJECT}/subscriptions/${topic}-sub`;
    const pulled: Received[] = [];
    return {
      body: {
        connection_type: pubsubSink.connectionType,
        credentials: {
          cps_project: PROJECT,
          cps_topic: topic,
          api_endpoint: `127.0.0.1:${this.proxy.port}`,
        },
      },
      received: async () => {
        await this.pull(path, pulled);
        return [...pulled];
      },
    };
  }

  /** Pulls (and acks) until the subscription has nothing more to give. */
  private async pull(path: string, into: Received[]): Promise<void> {
    const subscriber = this.subscriber as v1.SubscriberClient;
    for (let empty = 0; empty < 2; ) {
      const [response] = await subscriber.pull({
        subscription: path,
        maxMessages: 1000,
        returnImmediately: true,
      });
      const messages = response.receivedMessages ?? [];
      if (messages.length === 0) {
        empty++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      empty = 0;
      for (const { message } of messages) {
        const json = Buffer.from(message?.data ?? '').toString('utf8');
        into.push({
          id: recordId(json),
          key: message?.orderingKey || null,
          json,
          recordId: String(message?.attributes?.record_id),
        });
      }
      const ackIds = messages.map((m) => m.ackId).filter((id): id is string => !!id);
      await subscriber.acknowledge({ subscription: path, ackIds });
    }
  }
}
