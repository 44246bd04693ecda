/**
 * Event Hubs (`EventHubs`): the protocol-level AMQP 1.0 fake of connectors/sinks/eventhubs
 * (rhea's server side, in this process, on a free port); one hub of 4 partitions per
 * destination. What arrived is the fake's record of accepted events, in arrival order.
 */
import { FakeEventHubs } from '../../../connectors/sinks/eventhubs/fake-event-hubs.js';
import { eventHubsSink } from '../../../connectors/sinks/eventhubs/index.js';
import type { SinkFactory } from '../../../connectors/sinks/types.js';
import { type Destination, FaultProxy, type Received, recordId, type SinkHarness } from '../sink-harness.js';

/** A SAS policy as the portal makes them: a 44-character base64 key. */
const KEY_NAME = 'datastreamer-send';
const KEY = 'q5YUmM1c2+u8XN0vZ7b1JXxkQ3lJb9mTzW4hR0cA2vE=';

export class EventHubsHarness implements SinkHarness {
  readonly name = 'eventhubs';
  readonly factory = eventHubsSink as unknown as SinkFactory;
  readonly ordering = 'per partition key (endpoint id), in the order the hub accepted them';
  readonly partial = {
    kind: 'transient',
    /** The hub refuses the next transfer of each of these partition keys once (server busy). */
    inject: (_destination: Destination, keys: string[]) => {
      for (const partitionKey of keys)
        this.fake?.rejectNext(1, 'com.microsoft:server-busy', { partitionKey });
    },
  } as const;
  private fake: FakeEventHubs | undefined;
  private _proxy: FaultProxy | undefined;

  get proxy(): FaultProxy {
    if (!this._proxy) throw new Error('eventhubs harness not started');
    return this._proxy;
  }

  keylessKey(): string | null {
    return null;
  }

  async start(): Promise<void> {
    this.fake = await FakeEventHubs.start({ hubs: {}, keys: { [KEY_NAME]: KEY } });
    this._proxy = new FaultProxy({ host: '127.0.0.1', port: this.fake.port });
    await this._proxy.start();
  }

  async stop(): Promise<void> {
    await this._proxy?.close();
    await this.fake?.stop();
  }

  async destination(name: string, _batchSize: number): Promise<Destination> {
    const fake = this.fake as FakeEventHubs;
    const hub = `conformance-${name}`;
    fake.hubs.set(hub, 4);
    return {
      body: {
        connection_type: eventHubsSink.connectionType,
        credentials: {
          connection_string: `Endpoint=sb://127.0.0.1:${this.proxy.port};SharedAccessKeyName=${KEY_NAME};SharedAccessKey=${KEY};EntityPath=${hub};UseDevelopmentEmulator=true`,
        },
      },
      received: async (): Promise<Received[]> =>
        fake.accepted
          .filter((e) => e.hub === hub)
          .map((e) => {
            const json = e.body.toString('utf8');
            return {
              id: recordId(json),
              key: e.partitionKey ?? null,
              json,
              recordId: String(e.properties.record_id),
            };
          }),
    };
  }
}
