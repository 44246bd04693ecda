/**
 * A real single-node Apache Kafka broker for tests: KRaft mode (broker and controller in
 * one JVM), a plain Java process on 127.0.0.1, no Docker. Its jars come from Maven Central
 * through test/support/kafka/pom.xml and are cached outside the repo, so only the first run
 * on a machine resolves them.
 *
 * What changed from the recipe in shared/reference/test-endpoints.md (never run before):
 * - Kafka 4.1.1. kafkajs 2.2.4 negotiates versions Kafka 4 still serves for everything the
 *   Kafka log uses (produce with an idempotent producer, fetch, list offsets, create and
 *   describe topics, offset commit and fetch, find coordinator); checked by
 *   test/log-kafka.test.ts. No need to fall back to 3.9.
 * - The slf4j binding is `log4j-slf4j-impl` (slf4j 1.x), not `log4j-slf4j2-impl`: Kafka 4.1
 *   itself depends on slf4j-api 1.7.36, and Maven keeps that version, so the slf4j2 binding
 *   is never found and the broker logs nothing.
 * - The pom pins maven-dependency-plugin (Maven 3.8's default, 2.8, is from 2014).
 * - The cluster id is made here (16 random bytes, base64url, like `StorageTool random-uuid`)
 *   instead of a JVM run of its own: one JVM start less.
 * - Free ports instead of 9092/9093, a log4j2 config that writes WARN and the startup line
 *   to the broker's log file, small internal topics (1 partition), and JVM options for a
 *   quick start (-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto).
 * - The JVM runs under a small bash watchdog that kills it when the test process goes away,
 *   even by SIGKILL (its stdin closes), so that no broker outlives its test run.
 *
 * Set DATA_STREAMER_KAFKA_BROKERS=host:port,... to run the tests against a broker of your
 * own instead (e.g. the docker-compose one); nothing is started then.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { freePort } from './sink-harness.js';

const POM = join(dirname(fileURLToPath(import.meta.url)), 'kafka', 'pom.xml');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const JVM_OPTIONS = ['-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto'];

export interface KafkaBroker {
  /** Bootstrap servers for kafkajs, e.g. ['127.0.0.1:40123']. */
  readonly brokers: string[];
  /** Milliseconds from the call to a broker that answers metadata, jar resolution included. */
  readonly startMs: number;
  /** Milliseconds spent resolving jars (0 when the cache had them). */
  readonly resolveMs: number;
  /** The broker's directory (config, data, broker.log); undefined for an external broker. */
  readonly dir: string | undefined;
  /** The last lines of the broker's log, for failure messages. */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after 10 s; removes the directory. */
  stop(): Promise<void>;
}

/** Starts a fresh broker with an empty log; rejects saying what to install or run when it cannot. */
export async function startKafkaBroker(): Promise<KafkaBroker> {
  const started = Date.now();
  const external = process.env.DATA_STREAMER_KAFKA_BROKERS;
  if (external) {
    const brokers = external.split(',').map((b) => b.trim());
    await waitForMetadata(brokers, Date.now() + START_TIMEOUT_MS, () => undefined);
    return {
      brokers,
      startMs: Date.now() - started,
      resolveMs: 0,
      dir: undefined,
      logTail: () => '',
      stop: async () => undefined,
    };
  }
  await requireTool('java', ['-version'], 'Java 17 or later: apt-get install -y openjdk-17-jre-headless');
  const resolving = Date.now();
  const { dir: jars, resolved } = await kafkaJars();
  const resolveMs = resolved ? Date.now() - resolving : 0;
  // A port taken between freePort() and the broker's bind: try again with others.
  for (let attempt = 1; ; attempt++) {
    try {
      const broker = await launch(jars);
      return { ...broker, startMs: Date.now() - started, resolveMs };
    } catch (error) {
      if (attempt === 3 || !(error instanceof PortTaken)) throw error;
    }
  }
}

class PortTaken extends Error {}

async function launch(jars: string): Promise<Omit<KafkaBroker, 'startMs' | 'resolveMs'>> {
  const dir = mkdtempSync(join(tmpdir(), 'ds-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const logFile = join(dir, 'broker.log');
  writeFileSync(join(dir, 'server.properties'), serverProperties(dir, port, controllerPort));
  writeFileSync(join(dir, 'log4j2.properties'), LOG4J2);
  const classpath = ['-cp', `${jars}/*`];
  const logging = [`-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`];
  const tail = (lines = 40) =>
    existsSync(logFile) ? readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '';

  await run(
    'java',
    [
      ...JVM_OPTIONS,
      ...logging,
      ...classpath,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId(),
      '-c',
      join(dir, 'server.properties'),
    ],
    'formatting the Kafka log directory failed',
  );

  const out = openSync(logFile, 'a');
  // bash runs the broker and waits on its stdin: a line means stop (SIGTERM), end of file
  // means the test process is gone (SIGKILL). Exits with the broker's status.
  const watchdog =
    // (A background job's stdin is /dev/null, so the reader gets the pipe as fd 3.)
    'exec 3<&0; "$@" 3<&- & broker=$!; echo "$broker"; ' +
    '( if read -r _ <&3; then kill -TERM "$broker"; else kill -KILL "$broker"; fi ) & reader=$!; ' +
    'wait "$broker"; status=$?; kill "$reader" 2>/dev/null; exit "$status"';
  const child = spawn(
    'bash',
    [
      '-c',
      watchdog,
      'kafka-broker',
      'java',
      ...JVM_OPTIONS,
      ...logging,
      ...classpath,
      'kafka.Kafka',
      join(dir, 'server.properties'),
    ],
    { stdio: ['pipe', 'pipe', out] },
  );
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = `exited with ${code ?? signal}`;
      resolve();
    }),
  );
  const javaPid = await firstLine(child);

  const stop = async () => {
    if (!exited) {
      child.stdin?.end('stop\n');
      const timer = setTimeout(() => {
        if (javaPid) process.kill(javaPid, 'SIGKILL');
      }, STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const brokers = [`127.0.0.1:${port}`];
  try {
    await waitForMetadata(brokers, Date.now() + START_TIMEOUT_MS, () => exited);
  } catch (error) {
    const log = tail();
    await stop();
    if (/Address already in use/.test(log)) throw new PortTaken(log);
    throw new Error(
      `The Kafka test broker did not start (${(error as Error).message}). Its log ends with:\n${log}`,
    );
  }
  return { brokers, dir, logTail: tail, stop };
}

function serverProperties(dir: string, port: number, controllerPort: number): string {
  return `${[
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
  ].join('\n')}\n`;
}

/** WARN and up, plus the broker's "started" line, to the console (which goes to broker.log). */
const LOG4J2 = `${[
  'appender.console.type=Console',
  'appender.console.name=console',
  'appender.console.layout.type=PatternLayout',
  'appender.console.layout.pattern=[%d] %p %m (%c)%n',
  'rootLogger.level=WARN',
  'rootLogger.appenderRef.console.ref=console',
  'logger.server.name=kafka.server.KafkaRaftServer',
  'logger.server.level=INFO',
].join('\n')}\n`;

/** What `kafka-storage random-uuid` prints: 16 random bytes in base64url, not starting with '-'. */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Polls until a kafkajs admin gets the cluster's metadata, or `exited()` says the JVM died. */
async function waitForMetadata(
  brokers: string[],
  deadline: number,
  exited: () => string | undefined,
): Promise<void> {
  const [host, port] = (brokers[0] as string).split(':');
  let last = 'no answer';
  while (Date.now() < deadline) {
    const dead = exited();
    if (dead) throw new Error(`the broker ${dead}`);
    if (await accepts(host as string, Number(port))) {
      const admin = new Kafka({
        clientId: 'test-broker-probe',
        brokers,
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
      }).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length > 0) return;
      } catch (error) {
        last = (error as Error).message;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    } else last = `nothing listens on ${brokers[0]}`;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no metadata from ${brokers.join(',')} within ${START_TIMEOUT_MS} ms: ${last}`);
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function firstLine(child: ChildProcess): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(Number(text.split('\n')[0]) || undefined);
    });
    child.once('exit', () => resolve(undefined));
  });
}

const execFileAsync = promisify(execFile);

async function requireTool(command: string, args: string[], install: string): Promise<void> {
  try {
    await execFileAsync(command, args);
  } catch (error) {
    throw new Error(
      `The Kafka test broker needs ${install} (\`${command} ${args.join(' ')}\` failed: ${(error as Error).message})`,
    );
  }
}

async function run(command: string, args: string[], what: string): Promise<void> {
  try {
    await execFileAsync(command, args, { maxBuffer: 16 * 2 ** 20 });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${what}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`.trimEnd());
  }
}

/**
 * The directory of the broker's jars: `${XDG_CACHE_HOME:-~/.cache}/data-streamer/kafka-<version>-<pom hash>`,
 * resolved by Maven the first time. One process resolves (a lock directory holds its pid;
 * a lock whose process is gone is taken over), into a temporary directory renamed into
 * place when complete, so a reader never sees half a classpath.
 */
async function kafkaJars(): Promise<{ dir: string; resolved: boolean }> {
  const pom = await readFile(POM, 'utf8');
  const version = /<kafka\.version>([^<]+)</.exec(pom)?.[1] ?? 'unknown';
  const hash = createHash('sha256').update(pom).digest('hex').slice(0, 12);
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'data-streamer');
  const dir = join(cache, `kafka-${version}-${hash}`);
  if (existsSync(dir)) return { dir, resolved: false };
  await mkdir(cache, { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 10 * 60_000;
  while (!(await takeLock(lock))) {
    if (existsSync(dir)) return { dir, resolved: false };
    if (Date.now() > deadline)
      throw new Error(`gave up waiting for ${lock} (another resolution of the Kafka jars)`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  try {
    if (existsSync(dir)) return { dir, resolved: false };
    await requireTool('mvn', ['-v'], 'Maven to fetch the Kafka jars: apt-get install -y maven');
    const partial = `${dir}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    await run(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        POM,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${partial}`,
      ],
      `Maven could not fetch the Kafka broker's jars from Maven Central (try \`mvn -f ${POM} dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=${dir}\` by hand)`,
    );
    await rename(partial, dir);
    return { dir, resolved: true };
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** mkdir is atomic: whoever creates the lock directory holds it. A dead holder's lock is removed. */
async function takeLock(lock: string): Promise<boolean> {
  try {
    await mkdir(lock);
    await writeFile(join(lock, 'pid'), String(process.pid));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const holder = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''));
  if (holder && !alive(holder)) await rm(lock, { recursive: true, force: true });
  // A lock without a pid file is being created, or its creator died at once: give it a minute.
  else if (!holder && Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs > 60_000)
    await rm(lock, { recursive: true, force: true });
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The broker's addresses, or a failure (never a skip) saying why it did not start and how to fix it. */
export function kafkaBrokersOrFail(broker: KafkaBroker | undefined, failure: Error | undefined): string[] {
  if (!broker)
    throw new Error(
      `No Kafka broker for this test: ${failure?.message ?? 'not started'}\n` +
        'The tests start one themselves from Maven Central jars: they need Java 17+ (apt-get install -y openjdk-17-jre-headless) ' +
        'and Maven (apt-get install -y maven), or DATA_STREAMER_KAFKA_BROKERS=host:port naming a running broker.',
    );
  return broker.brokers;
}
