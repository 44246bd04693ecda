// Gives package-lock.json an entry for every platform build of chDB's native library.
// The registry this project installs from serves only the linux-x64 build, so `npm install`
// leaves the others out, and `npm ci` then refuses the lockfile as out of sync. With these
// entries (version, os, cpu; no integrity, since the registry has no tarball to hash)
// `npm ci` accepts the lockfile and skips the builds of other platforms, as it always
// does. Run it after `npm install` changes the lockfile: node .ci/lockfile-platforms.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const PLATFORMS = {
  'darwin-arm64': { cpu: ['arm64'], os: ['darwin'] },
  'darwin-x64': { cpu: ['x64'], os: ['darwin'] },
  'linux-arm64-gnu': { cpu: ['arm64'], libc: ['glibc'], os: ['linux'] },
  'linux-x64-gnu': { cpu: ['x64'], libc: ['glibc'], os: ['linux'] },
};

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const chdb = lock.packages['node_modules/chdb'];
let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
  const path = `node_modules/${name}`;
  const platform = PLATFORMS[name.replace('@chdb/lib-', '')];
  if (lock.packages[path] || !platform) continue;
  // In npm's own field order, so that a later `npm install` leaves the entry as it is.
  const { cpu, libc, os } = platform;
  lock.packages[path] = {
    version,
    cpu,
    ...(libc ? { libc } : {}),
    license: 'Apache-2.0',
    optional: true,
    os,
  };
  added++;
}
const [root, ...rest] = Object.keys(lock.packages);
const sorted = { [root]: lock.packages[root] };
for (const key of rest.sort((a, b) => a.localeCompare(b, 'en'))) sorted[key] = lock.packages[key];
lock.packages = sorted;
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform entr${added === 1 ? 'y' : 'ies'} added`);
