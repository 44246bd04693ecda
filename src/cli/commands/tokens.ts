import { join } from 'node:path';
import { apiDir } from '../../api/from-engine.js';
import { TokenStore } from '../../api/tokens.js';
import { UsageError } from '../../util/errors.js';
import { parse, parseInteger } from '../args.js';

export const TOKENS_HELP = `Usage: data-streamer tokens <action> --data-dir DIR --organisation ORG [options]

Application tokens of the management API (data-streamer serve). An organisation
exchanges one for an auth_token at POST /api/v1/authenticate (docs/api.md). Only a
salted hash is kept, in DIR/api/tokens.json: the secret is printed once, at creation.
Works while the server runs; it picks up the change on its next request.

Actions:
  create [--description D]   a new token; prints its id and secret (keep the secret)
  list                       the organisation's tokens: id, description, created_at
  revoke ID                  the token and every auth_token made from it stop working

Example:
  data-streamer tokens create --data-dir data/demo/engine --organisation 1001 --description "ci"`;

export async function tokensCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { 'data-dir': { type: 'string' }, organisation: { type: 'string' }, description: { type: 'string' } },
    'tokens',
  );
  if (values.help || positionals.length === 0) {
    console.log(TOKENS_HELP);
    return 0;
  }
  const [action, id] = positionals as [string, string | undefined];
  if (!values['data-dir']) throw new UsageError('tokens: --data-dir DIR is required');
  const org = parseInteger(values.organisation ?? '', '--organisation', 1, Number.MAX_SAFE_INTEGER);
  const store = new TokenStore(join(apiDir(values['data-dir']), 'tokens.json'));
  switch (action) {
    case 'create': {
      const { token, secret } = await store.create(org, values.description ?? '');
      console.log(JSON.stringify({ ...token, application_token: secret }, null, 2));
      console.error('The application_token is shown this once; only its hash is stored.');
      return 0;
    }
    case 'list':
      console.log(JSON.stringify(store.list(org), null, 2));
      return 0;
    case 'revoke':
      if (!id) throw new UsageError('tokens revoke: give the token id');
      if (!(await store.revoke(org, id)))
        throw new UsageError(`tokens revoke: organisation ${org} has no token ${id}`);
      console.log(`revoked ${id}`);
      return 0;
    default:
      throw new UsageError(`tokens: unknown action "${action}" (see data-streamer tokens --help)`);
  }
}
