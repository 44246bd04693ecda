// Proves `npm install` kept every version the committed lockfile pins. The only change it
// may make is to add optional platform builds the registry has started to carry.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const committed = JSON.parse(execFileSync('git', ['show', 'HEAD:package-lock.json'], { encoding: 'utf8' }));
const installed = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const problems = [];
for (const [path, pinned] of Object.entries(committed.packages)) {
  const now = installed.packages[path];
  if (!now) problems.push(`${path || 'root'}: removed`);
  else if (now.version !== pinned.version || now.integrity !== pinned.integrity)
    problems.push(`${path}: ${pinned.version} -> ${now.version}`);
}
for (const [path, now] of Object.entries(installed.packages))
  if (!committed.packages[path] && !now.optional) problems.push(`${path}: added ${now.version}`);
if (problems.length > 0) {
  console.error(
    `package-lock.json is out of date (run npm install and commit it):\n  ${problems.join('\n  ')}`,
  );
  process.exit(1);
}
