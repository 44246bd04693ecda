/**
 * A ClickHouse HTTP interface over chdb, for testing the server path of the store with the
 * real @clickhouse/client and a real ClickHouse engine (no ClickHouse server on the test
 * machines). It follows https://clickhouse.com/docs/interfaces/http:
 *  - POST or GET on /, the statement in the `query` parameter, in the body, or both (the
 *    parameter first, then the body: how an INSERT carries its data); GET is readonly=2;
 *  - `database`, `default_format` (TabSeparated otherwise), `query_id`, `session_id`,
 *    `param_<name>` bindings; every other parameter is a setting for this request only;
 *  - credentials as Basic auth, X-ClickHouse-User/-Key headers, or user/password parameters;
 *  - gzip request bodies (Content-Encoding), gzip answers with enable_http_compression=1;
 *  - answers with X-ClickHouse-Query-Id, -Format, -Timezone, -Server-Display-Name and
 *    -Summary; errors as "Code: N. DB::Exception: ... (TYPE) (version V)" with
 *    X-ClickHouse-Exception-Code and ClickHouse's status for the error;
 *  - GET /ping answers "Ok.".
 * Each request runs in a fresh chdb session on the data directory, like a server's query
 * context (a session_id keeps one), one request at a time. The body is text: enough for
 * the JSON, CSV and TSV formats the store uses, not for binary formats. Known gap: a
 * request with several statements runs them all, where a server refuses it.
 * failNext() injects what a test needs that a healthy server does not do: a proxy's 503,
 * a slow answer, a reset connection.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';

type ChdbModule = typeof import('chdb');
type Session = InstanceType<ChdbModule['Session']>;

export type Fault =
  /** Answer this instead of running the request (a proxy page, an injected ClickHouse error). */
  | { status: number; body: string; headers?: Record<string, string> }
  /** Run the request only after this long. */
  | { delayMs: number }
  /** Drop the connection without an answer. */
  | { reset: true };

export interface RecordedRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  sql: string;
}

export interface ClickHouseHttp {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Every request that reached the engine, in order. */
  readonly requests: RecordedRequest[];
  /** The next request gets this fault (queued: call twice for two requests). */
  failNext(fault: Fault): void;
  close(): Promise<void>;
}

export interface ClickHouseHttpOptions {
  dataDir: string;
  /** Accepted users and passwords; default: "default" with an empty password. */
  users?: Record<string, string>;
}

/** URL parameters the HTTP layer consumes; every other one is a setting. */
const HTTP_PARAMS = new Set([
  'query',
  'query_id',
  'database',
  'default_format',
  'user',
  'password',
  'quota_key',
  'stacktrace',
  'role',
  'buffer_size',
  'wait_end_of_query',
  'session_id',
  'session_timeout',
  'session_check',
  'close_session',
  'compress',
  'decompress',
  'client_protocol_version',
]);

/** Server defaults chdb does not share. */
const SERVER_DEFAULTS = 'output_format_json_quote_64bit_integers = 1';

/** ClickHouse's exceptionCodeToHTTPStatus, by error name; anything else is 500. */
const STATUS_BY_TYPE: Record<string, number> = {
  REQUIRED_PASSWORD: 401,
  UNKNOWN_USER: 403,
  WRONG_PASSWORD: 403,
  AUTHENTICATION_FAILED: 403,
  ACCESS_DENIED: 403,
  READONLY: 403,
  BAD_ARGUMENTS: 400,
  CANNOT_PARSE_TEXT: 400,
  CANNOT_PARSE_ESCAPE_SEQUENCE: 400,
  CANNOT_PARSE_QUOTED_STRING: 400,
  CANNOT_PARSE_DATE: 400,
  CANNOT_PARSE_DATETIME: 400,
  CANNOT_PARSE_NUMBER: 400,
  CANNOT_PARSE_INPUT_ASSERTION_FAILED: 400,
  CANNOT_PARSE_UUID: 400,
  DUPLICATE_COLUMN: 400,
  ILLEGAL_COLUMN: 400,
  ILLEGAL_TYPE_OF_ARGUMENT: 400,
  SYNTAX_ERROR: 400,
  INCORRECT_DATA: 400,
  TYPE_MISMATCH: 400,
  VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE: 400,
  UNKNOWN_TABLE: 404,
  UNKNOWN_FUNCTION: 404,
  UNKNOWN_IDENTIFIER: 404,
  UNKNOWN_TYPE: 404,
  UNKNOWN_STORAGE: 404,
  UNKNOWN_DATABASE: 404,
  UNKNOWN_SETTING: 404,
  UNKNOWN_FORMAT: 404,
  UNKNOWN_AGGREGATE_FUNCTION: 404,
  QUERY_IS_TOO_LARGE: 413,
  NOT_IMPLEMENTED: 501,
  SOCKET_TIMEOUT: 503,
  CANNOT_SCHEDULE_TASK: 503,
  TIMEOUT_EXCEEDED: 408,
};

class HttpQueryError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

async function loadChdb(): Promise<ChdbModule> {
  try {
    return await import('chdb');
  } catch (error) {
    throw new Error(
      `chdb cannot be loaded, so the ClickHouse HTTP test server cannot start: ${String(error)}. ` +
        'Run "npm install" in the project (chdb ships prebuilt for Linux x64/arm64 glibc and macOS).',
    );
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
}

function credentials(req: IncomingMessage, params: URLSearchParams): { user: string; password: string } {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  const header = req.headers['x-clickhouse-user'];
  if (typeof header === 'string') {
    const key = req.headers['x-clickhouse-key'];
    return { user: header, password: typeof key === 'string' ? key : '' };
  }
  return { user: params.get('user') ?? 'default', password: params.get('password') ?? '' };
}

function contentType(format: string): string {
  if (format.startsWith('JSON')) return 'application/json; charset=UTF-8';
  if (format.startsWith('CSV')) return 'text/csv; charset=UTF-8; header=absent';
  if (format.startsWith('TabSeparated') || format.startsWith('TSV'))
    return 'text/tab-separated-values; charset=UTF-8';
  return 'text/plain; charset=UTF-8';
}

/** A SET value as ClickHouse reads it from the URL: always a string literal. */
function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0' };

/**
 * A param_ value arrives in ClickHouse's escaped text form (the client writes it\'s); the
 * server unescapes it, while chdb's binder takes the value as it is: unescape here.
 */
function unescapeParam(value: string): string {
  return value.replace(/\\(x[0-9a-fA-F]{2}|.)/gs, (_, c: string) =>
    c.length === 3 ? String.fromCharCode(Number.parseInt(c.slice(1), 16)) : (ESCAPES[c] ?? c),
  );
}

/** The trailing FORMAT clause of a statement names the answer's format; best effort. */
function explicitFormat(sql: string): string | undefined {
  return /\bFORMAT\s+([A-Za-z0-9]+)\s*;?\s*$/i.exec(sql.split('\n', 1)[0] ?? '')?.[1];
}

export async function startClickHouseHttp(options: ClickHouseHttpOptions): Promise<ClickHouseHttp> {
  const chdb = await loadChdb();
  const users = options.users ?? { default: '' };
  const version = chdb.version().libchdb.replace(/"/g, '');
  // Keeps the engine up on the data directory between requests.
  const anchor = new chdb.Session(options.dataDir);
  const sessions = new Map<string, Session>();
  const faults: Fault[] = [];
  const requests: RecordedRequest[] = [];
  let queue: Promise<unknown> = Promise.resolve();

  const fail = (code: number, type: string, message: string) => new HttpQueryError(code, type, message);

  async function run(
    method: string,
    params: URLSearchParams,
    sql: string,
  ): Promise<{ body: Uint8Array; format: string; summary: Record<string, string> }> {
    const sessionId = params.get('session_id');
    let session = sessionId ? sessions.get(sessionId) : undefined;
    const fresh = !session;
    session ??= new chdb.Session(options.dataDir);
    if (sessionId && fresh) sessions.set(sessionId, session);
    try {
      // chdb quotes no 64-bit integers in JSON by default; a server does.
      if (fresh) await session.queryAsync(`SET ${SERVER_DEFAULTS}`);
      if (method === 'GET') await session.queryAsync('SET readonly = 2');
      await session.queryAsync(`USE \`${(params.get('database') ?? 'default').replace(/`/g, '\\`')}\``);
      const bindings: Record<string, string> = {};
      for (const [key, value] of params) {
        if (key.startsWith('param_')) bindings[key.slice(6)] = unescapeParam(value);
        else if (!HTTP_PARAMS.has(key)) await session.queryAsync(`SET ${key} = ${literal(value)}`);
      }
      const format = params.get('default_format') ?? 'TabSeparated';
      const result = Object.keys(bindings).length
        ? await session.queryBindAsync(sql, bindings, { format })
        : await session.queryAsync(sql, { format });
      const rows = String(result.rowsRead);
      const bytes = String(result.bytesRead);
      return {
        body: result.bytes(),
        format: explicitFormat(sql) ?? format,
        summary: {
          read_rows: rows,
          read_bytes: bytes,
          written_rows: /^\s*INSERT\b/i.test(sql) ? rows : '0',
          written_bytes: /^\s*INSERT\b/i.test(sql) ? bytes : '0',
          total_rows_to_read: rows,
          result_rows: rows,
          result_bytes: String(result.bytes().byteLength),
          elapsed_ns: String(Math.round(result.elapsed * 1e9)),
        },
      };
    } catch (error) {
      const clickhouseCode = (error as { clickhouseCode?: unknown }).clickhouseCode;
      const message = error instanceof Error ? error.message : String(error);
      const type = /\(([A-Z0-9_]{3,})\)\s*$/.exec(message)?.[1];
      if (typeof clickhouseCode === 'number' && type) throw fail(clickhouseCode, type, message);
      throw fail(1001, 'STD_EXCEPTION', `Code: 1001. DB::Exception: ${message}. (STD_EXCEPTION)`);
    } finally {
      if (!sessionId) session.close();
    }
  }

  function sendError(res: ServerResponse, queryId: string, error: HttpQueryError): void {
    res.writeHead(STATUS_BY_TYPE[error.type] ?? 500, {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Server-Display-Name': 'chdb-http',
      'X-ClickHouse-Query-Id': queryId,
      'X-ClickHouse-Exception-Code': String(error.code),
      'X-ClickHouse-Timezone': 'UTC',
    });
    res.end(`${error.message} (version ${version})\n`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const fault = faults.shift();
    if (fault && 'reset' in fault) {
      req.socket.destroy();
      return;
    }
    if (fault && 'status' in fault) {
      res.writeHead(fault.status, { 'Content-Type': 'text/html', ...fault.headers });
      res.end(fault.body);
      return;
    }
    if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));

    const params = url.searchParams;
    const queryId = params.get('query_id') ?? randomUUID();
    if (url.pathname === '/ping' || (url.pathname === '/' && method === 'GET' && !params.has('query'))) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
      res.end('Ok.\n');
      return;
    }
    if (url.pathname !== '/') {
      sendError(
        res,
        queryId,
        fail(
          1000,
          'POCO_EXCEPTION',
          `Code: 1000. DB::Exception: There is no handle ${url.pathname}. (POCO_EXCEPTION)`,
        ),
      );
      return;
    }
    const { user, password } = credentials(req, params);
    if (users[user] !== password) {
      sendError(
        res,
        queryId,
        fail(
          516,
          'AUTHENTICATION_FAILED',
          `Code: 516. DB::Exception: ${user}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)`,
        ),
      );
      return;
    }
    const urlQuery = params.get('query');
    const text = body.toString('utf8');
    const sql = urlQuery === null ? text : text === '' ? urlQuery : `${urlQuery}\n${text}`;
    if (sql.trim() === '') {
      sendError(
        res,
        queryId,
        fail(62, 'SYNTAX_ERROR', 'Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)'),
      );
      return;
    }
    requests.push({ method, path: url.pathname, params: Object.fromEntries(params), sql });

    const task = queue.then(() => run(method, params, sql));
    queue = task.catch(() => undefined);
    try {
      const result = await task;
      let payload = Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength);
      const headers: Record<string, string> = {
        'Content-Type': contentType(result.format),
        'X-ClickHouse-Server-Display-Name': 'chdb-http',
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Format': result.format,
        'X-ClickHouse-Timezone': 'UTC',
        'X-ClickHouse-Summary': JSON.stringify(result.summary),
        'Keep-Alive': 'timeout=10',
      };
      if (
        params.get('enable_http_compression') === '1' &&
        /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')
      ) {
        payload = gzipSync(payload);
        headers['Content-Encoding'] = 'gzip';
      }
      res.writeHead(200, headers);
      res.end(payload);
    } catch (error) {
      if (error instanceof HttpQueryError) sendError(res, queryId, error);
      else throw error;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`internal error of the test server: ${String(error)}`);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(fault) {
      faults.push(fault);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
      await queue;
      for (const session of sessions.values()) session.close();
      anchor.close();
      await chdb.drainPending();
    },
  };
}
