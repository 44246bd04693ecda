/**
 * Test support: a small Event Hubs namespace speaking AMQP 1.0 on 127.0.0.1, built on rhea's
 * server side. It answers what @azure/event-hubs asks of a producer, as the real service does
 * (see /work/shared/reference/test-endpoints.md, "Event Hubs over AMQP 1.0"):
 *
 * - CBS (`$cbs`): put-token with a SAS token, whose signature, expiry and key name it checks;
 *   replies go to the link named by `reply_to`, with `correlation_id = message_id`.
 * - Management (`$management`): READ of `com.microsoft:eventhub` and `com.microsoft:partition`,
 *   404 with the service's own "could not be found" text for a hub that does not exist.
 * - Sender links to `<hub>` or `<hub>/Partitions/<id>`: attach answered with `max_message_size`
 *   and the `com.microsoft:georeplication` capability echoed; refused with `amqp:not-found`
 *   for a missing hub and `amqp:unauthorized-access` without a token for it.
 * - Batches (message format 0x80013700): the envelope is decoded into its inner messages; the
 *   partition key is the envelope's `x-opt-partition-key` annotation.
 *
 * Every accepted event is recorded (body bytes, application properties, content type,
 * partition key); `rejectNext` makes the next transfers fail with an AMQP error condition.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import rhea, { type Connection, type Delivery, type EventContext, type Message, type Receiver } from 'rhea';

/** The message format of an Event Hubs batch: an envelope whose body sections are encoded messages. */
const BATCH_FORMAT = 0x80013700;
const GEO_REPLICATION = 'com.microsoft:georeplication';

export interface FakeEvent {
  hub: string;
  /** The data section, byte for byte. */
  body: Buffer;
  properties: Record<string, unknown>;
  contentType: string | undefined;
  partitionKey: string | undefined;
}

export interface FakeEventHubsOptions {
  /** Hub name → partition count. Default: one hub `telemetry` with 4 partitions. */
  hubs?: Record<string, number>;
  /** The `max_message_size` announced on sender links (the SDK sizes batches by it). Default 1 MiB. */
  maxMessageSize?: number;
  /** SAS policies: key name → key. Default `{ k: 's' }`. */
  keys?: Record<string, string>;
  /** Listen on this port (to bring a stopped namespace back); default: a free one. */
  port?: number;
}

export interface RejectOptions {
  description?: string;
  partitionKey?: string;
}

interface Rejection {
  condition: string;
  description: string;
  /** Only transfers with this partition key (undefined: any transfer). */
  partitionKey: string | undefined;
}

export class FakeEventHubs {
  /** Every event the fake accepted, in arrival order. */
  readonly accepted: FakeEvent[] = [];
  /** Events of the transfers the fake rejected on purpose. */
  readonly rejected: FakeEvent[] = [];
  /** Number of batch transfers received (accepted or not). */
  transfers = 0;
  maxMessageSize: number;
  readonly hubs: Map<string, number>;

  private readonly keys: Record<string, string>;
  private readonly rejections: Rejection[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly authorized = new WeakMap<Connection, Set<string>>();
  private readonly settlements: (() => void)[] = [];
  private settling = false;
  private server: Server | undefined;
  private readonly requestedPort: number;

  private constructor(options: FakeEventHubsOptions) {
    this.requestedPort = options.port ?? 0;
    this.hubs = new Map(Object.entries(options.hubs ?? { telemetry: 4 }));
    this.maxMessageSize = options.maxMessageSize ?? 1024 * 1024;
    this.keys = options.keys ?? { k: 's' };
  }

  static async start(options: FakeEventHubsOptions = {}): Promise<FakeEventHubs> {
    const fake = new FakeEventHubs(options);
    await fake.listen();
    return fake;
  }

  get port(): number {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('fake Event Hubs is not listening');
    return address.port;
  }

  /** A connection string for `hub` (plain TCP through UseDevelopmentEmulator). */
  connectionString(hub: string | undefined, keyName = 'k', key = this.keys[keyName] ?? 's'): string {
    const entity = hub === undefined ? '' : `;EntityPath=${hub}`;
    return `Endpoint=sb://127.0.0.1:${this.port};SharedAccessKeyName=${keyName};SharedAccessKey=${key}${entity};UseDevelopmentEmulator=true`;
  }

  /**
   * The next `count` batch transfers (those with `partitionKey` if given) are rejected with
   * this AMQP error condition.
   */
  rejectNext(
    count: number,
    condition: string,
    { description = `Rejected by the fake (${condition}).`, partitionKey }: RejectOptions = {},
  ): void {
    for (let i = 0; i < count; i++) this.rejections.push({ condition, description, partitionKey });
  }

  reset(): void {
    this.accepted.length = 0;
    this.rejected.length = 0;
    this.rejections.length = 0;
    this.transfers = 0;
  }

  /** Closes the listener and drops every connection, as a namespace that went away. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async listen(): Promise<void> {
    const container = rhea.create_container({ id: 'fake-event-hubs' });
    // The SDK opens the connection with SASL ANONYMOUS (the username is the key name); real
    // authorisation happens over CBS.
    container.sasl_server_mechanisms.enable_anonymous();
    container.on('connection_open', (context: EventContext) => {
      this.authorized.set(context.connection, new Set());
    });
    container.on('receiver_open', (context: EventContext) => this.onClientSender(context));
    container.on('sender_open', (context: EventContext) => {
      // A client receiver: the reply link of CBS or $management; rhea answers the attach itself.
      const sender = context.sender as unknown as { local: { attach: Record<string, unknown> } };
      sender.local.attach.source = (context.sender as unknown as { source: unknown }).source;
    });
    container.on('message', (context: EventContext) => this.onMessage(context));
    container.on('error', () => {
      // Errors of dropped connections: the client sees them; nothing to do here.
    });
    // autoaccept off: every delivery is settled by onMessage, accepted or rejected.
    const server = container.listen({
      port: this.requestedPort,
      host: '127.0.0.1',
      autoaccept: false,
    } as never) as Server;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    this.server = server;
  }

  /** The client attached a sender: $cbs, $management or a hub. Answer its attach. */
  private onClientSender(context: EventContext): void {
    const receiver = context.receiver as Receiver & { local: { attach: Record<string, unknown> } };
    const target = (receiver as unknown as { target?: { address?: string } }).target;
    const address = target?.address ?? '';
    if (address === '$cbs' || address.endsWith('$management')) {
      receiver.local.attach.target = target;
      return;
    }
    // A refused link is answered with a null target, then detached with the error (AMQP 2.6.3).
    const hub = address.split('/')[0] ?? '';
    if (!this.hubs.has(hub)) {
      receiver.close({ condition: 'amqp:not-found', description: this.notFound(hub) });
      return;
    }
    if (!this.isAuthorized(context.connection, hub)) {
      receiver.close({
        condition: 'amqp:unauthorized-access',
        description: `Unauthorized access. 'Send' claim(s) are required to perform this operation. Resource: 'sb://127.0.0.1/${hub}'.`,
      });
      return;
    }
    receiver.local.attach.target = target;
    receiver.local.attach.max_message_size = this.maxMessageSize;
    const desired = (receiver as unknown as { desired_capabilities?: string | string[] })
      .desired_capabilities;
    const wanted = Array.isArray(desired) ? desired : desired ? [desired] : [];
    if (wanted.includes(GEO_REPLICATION)) receiver.local.attach.offered_capabilities = [GEO_REPLICATION];
  }

  private onMessage(context: EventContext): void {
    const receiver = context.receiver as unknown as { target?: { address?: string } };
    const address = receiver.target?.address ?? '';
    const delivery = context.delivery as Delivery;
    const message = context.message as Message;
    if (address === '$cbs') this.onPutToken(context.connection, message, delivery);
    else if (address.endsWith('$management')) this.onManagement(context.connection, message, delivery);
    else this.onTransfer(address.split('/')[0] ?? '', context, delivery);
  }

  private onTransfer(hub: string, context: EventContext, delivery: Delivery): void {
    this.transfers++;
    const format = (context as EventContext & { format?: number }).format;
    const raw = context.message as unknown;
    const events = format === BATCH_FORMAT ? decodeBatch(hub, raw as Buffer) : [toEvent(hub, raw as Message)];
    const size = Buffer.isBuffer(raw) ? raw.length : 0;
    if (size > this.maxMessageSize) {
      this.settle(delivery, {
        condition: 'amqp:link:message-size-exceeded',
        description: `The received message (delivery-id:${delivery.id}, size:${size} bytes) exceeds the limit (${this.maxMessageSize} bytes) currently allowed on the link.`,
      });
      return;
    }
    if (!this.hubs.has(hub)) {
      // The hub was deleted after the link attached.
      this.settle(delivery, { condition: 'amqp:not-found', description: this.notFound(hub) });
      return;
    }
    const key = events[0]?.partitionKey;
    const at = this.rejections.findIndex((r) => r.partitionKey === undefined || r.partitionKey === key);
    const rejection = at >= 0 ? this.rejections.splice(at, 1)[0] : undefined;
    if (rejection) {
      this.rejected.push(...events);
      this.settle(delivery, { condition: rejection.condition, description: rejection.description });
      return;
    }
    this.accepted.push(...events);
    this.settle(delivery);
  }

  /**
   * Accepts (no error) or rejects a transfer, one per turn of the event loop: rhea 3.0.5
   * writes the dispositions of one turn as ranges and folds a delivery into a range of one
   * without comparing outcomes (session.js write_dispositions), which would turn
   * "rejected, accepted, accepted" into three rejections.
   */
  private settle(delivery: Delivery, error?: { condition: string; description: string }): void {
    this.settlements.push(() => (error ? delivery.reject(error) : delivery.accept()));
    if (this.settling) return;
    this.settling = true;
    const next = (): void => {
      const settlement = this.settlements.shift();
      if (!settlement) {
        this.settling = false;
        return;
      }
      settlement();
      setImmediate(next);
    };
    next();
  }

  private onPutToken(connection: Connection, request: Message, delivery: Delivery): void {
    this.settle(delivery);
    const props = request.application_properties ?? {};
    const audience = String(props.name ?? '');
    let status = 200;
    let description = 'OK';
    if (props.operation !== 'put-token' || props.type !== 'servicebus.windows.net:sastoken') {
      status = 400;
      description = `Unsupported CBS operation ${String(props.operation)} / ${String(props.type)}.`;
    } else {
      const problem = this.checkToken(String(request.body ?? ''), audience);
      if (problem) {
        status = 401;
        description = problem;
      } else {
        this.authorized.get(connection)?.add(pathOf(audience));
      }
    }
    this.reply(connection, request, { 'status-code': status, 'status-description': description });
  }

  private onManagement(connection: Connection, request: Message, delivery: Delivery): void {
    this.settle(delivery);
    const props = request.application_properties ?? {};
    const hub = String(props.name ?? '');
    const tokenProblem = this.checkToken(String(props.security_token ?? ''), `sb://127.0.0.1/${hub}`);
    if (tokenProblem) {
      this.reply(connection, request, {
        'status-code': 401,
        'status-description': tokenProblem,
        'error-condition': 'amqp:unauthorized-access',
      });
      return;
    }
    const partitions = this.hubs.get(hub);
    if (props.operation !== 'READ' || partitions === undefined) {
      const known = props.operation === 'READ';
      this.reply(connection, request, {
        'status-code': known ? 404 : 400,
        'status-description': known
          ? this.notFound(hub)
          : `Unsupported operation ${String(props.operation)}.`,
        'error-condition': known ? 'amqp:not-found' : 'com.microsoft:argument-error',
      });
      return;
    }
    const ok = { 'status-code': 200, 'status-description': 'OK' };
    if (props.type === 'com.microsoft:eventhub') {
      this.reply(connection, request, ok, {
        name: hub,
        created_at: new Date('2024-01-01T00:00:00Z'),
        partition_count: partitions,
        partition_ids: Array.from({ length: partitions }, (_, i) => String(i)),
      });
    } else {
      const partition = String(props.partition ?? '');
      const count = this.accepted.filter((event) => event.hub === hub).length;
      this.reply(connection, request, ok, {
        name: hub,
        partition,
        begin_sequence_number: 0,
        last_enqueued_sequence_number: count - 1,
        last_enqueued_offset: String(Math.max(count - 1, -1)),
        last_enqueued_time_utc: new Date(),
        is_partition_empty: count === 0,
      });
    }
  }

  /** Sends a response on the client's reply link: the one whose name is the request's reply_to. */
  private reply(
    connection: Connection,
    request: Message,
    props: Record<string, unknown>,
    body?: unknown,
  ): void {
    const replyTo = request.reply_to;
    const sender = connection.find_sender((s: { name: string }) => s.name === replyTo);
    sender?.send({ correlation_id: request.message_id, application_properties: props, body });
  }

  /** Checks a SAS token as the service does; returns what is wrong, or undefined. */
  private checkToken(token: string, resource: string): string | undefined {
    const match = /^SharedAccessSignature (.*)$/.exec(token);
    if (!match?.[1]) return 'InvalidIssuer: Token is not a SharedAccessSignature.';
    const fields = new URLSearchParams(match[1]);
    const sr = fields.get('sr') ?? '';
    const sig = fields.get('sig') ?? '';
    const se = Number(fields.get('se'));
    const key = this.keys[fields.get('skn') ?? ''];
    if (key === undefined) return 'InvalidIssuer: Token issuer is invalid.';
    if (!(se * 1000 > Date.now())) return 'ExpiredToken: The token is expired.';
    const expected = createHmac('sha256', key)
      .update(`${encodeURIComponent(sr)}\n${se}`)
      .digest();
    const given = Buffer.from(sig, 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return 'InvalidSignature: The token has an invalid signature.';
    if (!pathOf(resource).toLowerCase().startsWith(pathOf(sr).toLowerCase()))
      return `InvalidAudience: The token audience ${sr} does not cover ${resource}.`;
    return undefined;
  }

  private isAuthorized(connection: Connection, hub: string): boolean {
    const paths = this.authorized.get(connection) ?? new Set<string>();
    return [...paths].some((path) => `/${hub}`.toLowerCase().startsWith(path.toLowerCase()));
  }

  private notFound(hub: string): string {
    return `The messaging entity 'sb://127.0.0.1/${hub}' could not be found. To know more visit https://aka.ms/sbResourceMgrExceptions.`;
  }
}

/** The path of an `sb://host/path` audience, without a trailing slash ('' for the namespace). */
function pathOf(audience: string): string {
  return audience.replace(/^sb:\/\/[^/]*/i, '').replace(/\/$/, '');
}

/** Unpacks an Event Hubs batch: an AMQP message whose data sections each hold one encoded message. */
function decodeBatch(hub: string, raw: Buffer): FakeEvent[] {
  const envelope = rhea.message.decode(raw);
  const partitionKey = envelope.message_annotations?.['x-opt-partition-key'] as string | undefined;
  const section = envelope.body as { typecode: number; content: Buffer | Buffer[]; multiple?: boolean };
  if (section?.typecode !== 0x75) throw new Error('batch envelope without data sections');
  const parts = section.multiple ? (section.content as Buffer[]) : [section.content as Buffer];
  return parts.map((part) => {
    const event = toEvent(hub, rhea.message.decode(part) as unknown as Message);
    // Every event of a batch carries the same key; the service routes by the envelope's.
    return { ...event, partitionKey: partitionKey ?? event.partitionKey };
  });
}

function toEvent(hub: string, message: Message): FakeEvent {
  const body = message.body as { typecode?: number; content?: Buffer } | Buffer;
  const bytes = Buffer.isBuffer(body) ? body : body?.typecode === 0x75 ? body.content : undefined;
  if (!bytes) throw new Error('event without a single data section');
  return {
    hub,
    body: bytes,
    properties: { ...(message.application_properties ?? {}) },
    contentType: message.content_type,
    partitionKey: message.message_annotations?.['x-opt-partition-key'] as string | undefined,
  };
}
