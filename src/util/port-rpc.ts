/**
 * Calls and one-way notices between two threads over a message port (a Worker and its
 * parentPort). Values are structured-cloned. A failed call rejects on the caller's side
 * with a DataStreamerError of the same code, kind and message, so typed errors keep their
 * meaning across the thread boundary.
 */
import { DataStreamerError, type ErrorKind } from './errors.js';

export interface Port {
  postMessage(value: unknown): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
}

export type Handlers = Record<string, (argument: never) => unknown>;

type Message =
  | { t: 'call'; id: number; method: string; argument: unknown }
  | { t: 'ok'; id: number; value: unknown }
  | { t: 'error'; id: number; error: { code: string; kind: ErrorKind; message: string } }
  | { t: 'notice'; method: string; argument: unknown };

/** A thread's side of the port: serves `handlers`, calls the other side's. */
export class PortRpc {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly port: Port,
    handlers: Handlers,
    /** Notices from the other side, by name; unknown ones are ignored. */
    notices: Record<string, (argument: never) => void> = {},
  ) {
    port.on('message', (raw) => {
      const message = raw as Message;
      if (message.t === 'notice') notices[message.method]?.(message.argument as never);
      else if (message.t === 'call') void this.serve(handlers, message);
      else this.settle(message);
    });
  }

  /** Calls the other side's handler `method`. */
  call<T>(method: string, argument?: unknown): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ t: 'call', id, method, argument } satisfies Message);
    });
  }

  notify(method: string, argument?: unknown): void {
    this.port.postMessage({ t: 'notice', method, argument } satisfies Message);
  }

  /** The other side is gone: every unanswered call rejects with `error`. */
  failAll(error: Error): void {
    for (const { reject } of this.waiting.values()) reject(error);
    this.waiting.clear();
  }

  private async serve(handlers: Handlers, message: Extract<Message, { t: 'call' }>): Promise<void> {
    const { id, method, argument } = message;
    try {
      const handler = handlers[method];
      if (!handler) throw new DataStreamerError('RPC_UNKNOWN_METHOD', `no handler for ${method}`);
      this.port.postMessage({ t: 'ok', id, value: await handler(argument as never) } satisfies Message);
    } catch (error) {
      const e = error as Partial<DataStreamerError>;
      this.port.postMessage({
        t: 'error',
        id,
        error: {
          code: e.code ?? 'RPC_HANDLER_FAILED',
          kind: e.kind ?? 'permanent',
          message: e.message ?? String(error),
        },
      } satisfies Message);
    }
  }

  private settle(message: Extract<Message, { t: 'ok' | 'error' }>): void {
    const waiting = this.waiting.get(message.id);
    if (!waiting) return;
    this.waiting.delete(message.id);
    if (message.t === 'ok') waiting.resolve(message.value);
    else {
      const { code, kind, message: text } = message.error;
      waiting.reject(new DataStreamerError(code, text, kind));
    }
  }
}
