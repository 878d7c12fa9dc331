// Checks the Prometheus set-up of the shop with promtool: the compose
// configuration (deploy/prometheus/prometheus.yml, with the rule files it
// loads), then the alert rules' unit tests (deploy/prometheus/tests/).
// promtool comes from Debian's `prometheus` package, installed here with
// apt-get only when it is missing.
//
//   node scripts/prometheus/test-alerts.ts      (npm run test:alerts)
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const DIR = join(ROOT, 'deploy', 'prometheus');

function log(msg: string): void {
  process.stderr.write(`test:alerts: ${msg}\n`);
}

function hasPromtool(): boolean {
  return spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
}

if (!hasPromtool()) {
  log("promtool missing: installing Debian's prometheus package");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'prometheus'], { stdio: 'inherit', env });
  if (!hasPromtool()) throw new Error('promtool is still missing after installing prometheus');
}

const steps: string[][] = [
  ['check', 'config', join(DIR, 'prometheus.yml')],
  [
    'test',
    'rules',
    ...readdirSync(join(DIR, 'tests'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(DIR, 'tests', f)),
  ],
];
for (const args of steps) {
  log(`promtool ${args.join(' ')}`);
  const r = spawnSync('promtool', args, { stdio: 'inherit', cwd: DIR });
  if (r.status !== 0) {
    log(`promtool ${args[0] ?? ''} ${args[1] ?? ''} failed`);
    process.exit(1);
  }
}
log('ok');
