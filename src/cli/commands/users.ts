import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { apiDir } from '../../api/from-engine.js';
import { UserStore } from '../../api/users.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';

export const USERS_HELP = `Usage: data-streamer users <action> --data-dir DIR --organisation ORG [--username U]

Users of the management API (data-streamer serve): they log in at
POST /api/v1/authenticate with {"username", "password"} and get an auth_token and a
refresh_token (docs/api.md). Passwords are read from standard input (the first line),
never from the command line, and only a salted hash is kept, in DIR/api/users.json.

Actions:
  add --username U      a new user (usernames are unique across organisations)
  passwd --username U   a new password; the user's refresh tokens end
  list                  the organisation's users
  remove --username U   the user, its refresh tokens and its auth_tokens end at once

Example:
  echo 'a long passphrase' | data-streamer users add --data-dir data/demo/engine --organisation 1001 --username ops@example.com`;

async function password(): Promise<string> {
  if (process.stdin.isTTY) console.error('password (then Enter, Ctrl+D):');
  const first = (await text(process.stdin)).split(/\r?\n/)[0] ?? '';
  if (first === '') throw new UsageError('users: give the password on standard input');
  return first;
}

export async function usersCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { 'data-dir': { type: 'string' }, organisation: { type: 'string' }, username: { type: 'string' } },
    'users',
  );
  if (values.help || positionals.length === 0) {
    console.log(USERS_HELP);
    return 0;
  }
  const [action] = positionals as [string];
  if (!values['data-dir']) throw new UsageError('users: --data-dir DIR is required');
  const org = parseInteger(values.organisation ?? '', '--organisation', 1, Number.MAX_SAFE_INTEGER);
  const store = new UserStore(join(apiDir(values['data-dir']), 'users.json'));
  const username = () => {
    if (!values.username) throw new UsageError(`users ${action}: --username U is required`);
    return values.username;
  };
  switch (action) {
    case 'add':
      console.log(JSON.stringify(await store.add(org, username(), await password()), null, 2));
      return 0;
    case 'passwd':
      if (!(await store.setPassword(org, username(), await password())))
        throw new UsageError(`users passwd: organisation ${org} has no user ${values.username}`);
      console.log(`new password for ${values.username}`);
      return 0;
    case 'list':
      console.log(JSON.stringify(store.list(org), null, 2));
      return 0;
    case 'remove':
      if (!(await store.remove(org, username())))
        throw new UsageError(`users remove: organisation ${org} has no user ${values.username}`);
      console.log(`removed ${values.username}`);
      return 0;
    default:
      throw new UsageError(`users: unknown action "${action}" (see data-streamer users --help)`);
  }
}
