// npm run test:containers: the containers test bed, start to finish.
//   1. a Docker engine (started here as root if none runs) and Compose v2;
//   2. the images: local stand-ins and the shop's own (local-images.ts), or,
//      with CONTAINERS_IMAGES=official, whatever compose.yaml names (pulled);
//   3. node --test on the suites below (or the files given) with testcontainers' Ryuk off;
//   4. whatever the tests left behind is taken down, and a dockerd started
//      here is stopped: also when a step fails.
import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { ensureCompose, ensureEngine, stopEngine, type Engine } from './docker-engine.ts';
import { buildLocalImages } from './local-images.ts';

// The suites CI runs. `npm run test:containers -- <file>…` runs the files given instead; that is how the
// PostgreSQL scale scenario runs (test/containers/compose-scale.test.ts): it is kept out of CI's list for now
// because its first orders failed (inventory_unavailable) in 2 of 3 runs on a loaded two-core machine, cause
// not yet found (docs/scale.md).
const DEFAULT_SUITES = [
  'test/containers/compose-spiffe.test.ts',
  'test/containers/compose-static.test.ts',
  'test/containers/compose-migrate.test.ts',
];
const suites = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT_SUITES;
import { TEST_PROJECT_PREFIX } from '../../test/containers/support.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

function log(msg: string): void {
  process.stderr.write(`test:containers: ${msg}\n`);
}

async function sweepProjects(): Promise<void> {
  try {
    const { stdout } = await run('docker', ['compose', 'ls', '--all', '--format', 'json']);
    const projects = (JSON.parse(stdout || '[]') as { Name: string }[])
      .map((p) => p.Name)
      .filter((n) => n.startsWith(TEST_PROJECT_PREFIX));
    for (const p of projects) {
      log(`taking down leftover project ${p}`);
      await run('docker', ['compose', '-p', p, 'down', '--volumes', '--timeout', '5']).catch(() => undefined);
    }
  } catch {
    // the engine is gone already
  }
}

async function main(): Promise<number> {
  const t0 = Date.now();
  let engine: Engine | undefined;
  try {
    engine = await ensureEngine();
    await ensureCompose();
    const env: NodeJS.ProcessEnv = { ...process.env, TESTCONTAINERS_RYUK_DISABLED: 'true' };
    if (process.env.CONTAINERS_IMAGES !== 'official') {
      const t1 = Date.now();
      Object.assign(env, await buildLocalImages());
      log(`images ready in ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    }
    const code = await new Promise<number>((done) => {
      const p = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=600000', ...suites], {
        cwd: ROOT,
        env,
        stdio: 'inherit',
      });
      p.once('exit', (c, signal) => {
        done(c ?? (signal ? 1 : 0));
      });
    });
    return code;
  } catch (err) {
    log((err as Error).message);
    return 1;
  } finally {
    await sweepProjects();
    if (engine) await stopEngine(engine);
    log(`finished in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}

process.exitCode = await main();
