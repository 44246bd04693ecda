#!/usr/bin/env -S node --max-semi-space-size=32
import { DataStreamerError, UsageError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import { captureCommand } from './commands/capture.js';
import { demoCommand } from './commands/demo.js';
import { diffCommand } from './commands/diff.js';
import { inspectCommand } from './commands/inspect.js';
import { kafkaCommand } from './commands/kafka.js';
import { queryCommand } from './commands/query.js';
import { receiveCommand } from './commands/receive.js';
import { referenceCommand } from './commands/reference.js';
import { replayCommand } from './commands/replay.js';
import { runCommand } from './commands/run.js';
import { serveCommand, tokensCommand } from './commands/serve.js';
import { simulateCommand } from './commands/simulate.js';
import { streamsCommand } from './commands/streams.js';
import { usersCommand } from './commands/users.js';

const HELP = `data-streamer ${VERSION}: stream processing for cellular IoT connectivity data

Usage: data-streamer <command> [options]

Commands:
  demo        generate a fleet and simulate a day of its traffic (what npm start runs)
  simulate    run the core simulator and write a capture file
  inspect     verify a capture file and summarise what it holds
  replay      run a capture through the embedded engine and summarise the result
  capture     write the raw records of an engine's log (a time range) to a capture file
  diff        compare two data dirs' outputs record by record (missing, extra, changed fields)
  query       run SQL against the engine's ClickHouse store
  reference   generate or validate reference data (operators, tariffs, fleet)
  streams     data streams: deliver usage records and events to webhook, S3, Kinesis, Pub/Sub, Event Hubs
  kafka       the engine's Kafka topics (distributed mode): init creates them, topics lists them
  run         one engine replica of the distributed mode (Kafka, ClickHouse server): docs/distributed.md
  receive     a local webhook receiver that prints what a data stream delivers
  serve       the management API (data streams, application tokens, metrics) over an engine data dir
  tokens      application tokens of an organisation for the API: create, list, revoke
  users       users (username and password) of an organisation for the API: add, passwd, list, remove

Run data-streamer <command> --help for a command's options.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  demo: demoCommand,
  simulate: simulateCommand,
  inspect: inspectCommand,
  replay: replayCommand,
  capture: captureCommand,
  diff: diffCommand,
  query: queryCommand,
  reference: referenceCommand,
  streams: streamsCommand,
  kafka: kafkaCommand,
  run: runCommand,
  receive: receiveCommand,
  serve: serveCommand,
  tokens: tokensCommand,
  users: usersCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(VERSION);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command)
    throw new UsageError(`unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
  return command(rest);
}

// A reader that went away (`simulate --out - | head`) is a normal end, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof DataStreamerError) {
      console.error(`data-streamer: ${error.message}`);
      process.exitCode = error instanceof UsageError ? 2 : 1;
      return;
    }
    // Unexpected: say what happened first; the stack follows for the bug report.
    console.error(`data-streamer: internal error: ${(error as Error)?.message ?? String(error)}`);
    if (process.env.DEBUG) console.error((error as Error)?.stack);
    else console.error('(set DEBUG=1 for the stack trace)');
    process.exitCode = 70;
  },
);
