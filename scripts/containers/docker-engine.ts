// Makes a Docker engine and the Compose v2 CLI plugin available for the
// containers test bed, on this kind of machine where neither runs by default:
//   - a running engine is used as it is;
//   - else, as root, Debian's docker.io is installed if dockerd is missing, and
//     dockerd is started here; stopEngine() stops exactly that process;
//   - `docker compose` is used if it answers; else the plugin is built from the
//     github.com/docker/compose Go module at a pinned version into the Docker
//     CLI plugins folder.
//
//   node scripts/containers/docker-engine.ts   # make both available, leave dockerd running
import { execFile, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { chmod, cp, mkdir, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** COMPOSE_VERSION is the Compose v2 release built when no plugin is installed. */
export const COMPOSE_VERSION = 'v2.40.3';
const COMPOSE_MODULE = 'github.com/docker/compose/v2';

function log(msg: string): void {
  process.stderr.write(`docker-engine: ${msg}\n`);
}

async function answers(cmd: string, args: string[], timeout = 15_000): Promise<string | undefined> {
  try {
    const { stdout } = await run(cmd, args, { timeout });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

async function onPath(cmd: string): Promise<boolean> {
  return (await answers('sh', ['-c', `command -v ${cmd}`])) !== undefined;
}

/** Engine is the Docker engine the test bed uses. */
export interface Engine {
  version: string;
  /** startedHere is true when this process started dockerd (and must stop it). */
  startedHere: boolean;
  pid?: number;
}

async function serverVersion(): Promise<string | undefined> {
  return answers('docker', ['version', '--format', '{{.Server.Version}}'], 10_000);
}

async function installDockerIo(): Promise<void> {
  log("dockerd is not installed: installing Debian's docker.io (apt-get)");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], { env, maxBuffer: 64 << 20 });
  } catch {
    await run('apt-get', ['update'], { env, maxBuffer: 64 << 20 });
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], { env, maxBuffer: 64 << 20 });
  }
}

/** ensureEngine returns a running engine, starting (and if needed installing) dockerd when root. */
export async function ensureEngine(): Promise<Engine> {
  const running = await serverVersion();
  if (running) {
    log(`using the running Docker engine ${running}`);
    return { version: running, startedHere: false };
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'no Docker engine answers on DOCKER_HOST or /var/run/docker.sock, and only root can start one here: ' +
        'start Docker (or run as root, which installs and starts dockerd)',
    );
  }
  if (!(await onPath('dockerd'))) await installDockerIo();
  if (!(await onPath('docker'))) throw new Error('docker.io is installed but the docker client is not on PATH');
  const logFile = join(tmpdir(), 'spiffe-shop-dockerd.log');
  const out = openSync(logFile, 'a');
  // Detached into its own process group so a Ctrl-C of the test run does not
  // kill it half-way; stopEngine() ends it by its pid.
  const proc = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  proc.unref();
  const pid = proc.pid;
  if (pid === undefined) throw new Error('dockerd did not start');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const v = await serverVersion();
    if (v) {
      log(`started dockerd ${v} (pid ${pid}, log ${logFile})`);
      return { version: v, startedHere: true, pid };
    }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  throw new Error(`dockerd did not answer within 60 s; see ${logFile}`);
}

/** stopEngine stops dockerd if ensureEngine started it, and waits for it to exit. */
export async function stopEngine(engine: Engine): Promise<void> {
  if (!engine.startedHere || engine.pid === undefined) return;
  const pid = engine.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      log(`stopped dockerd (pid ${pid})`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`dockerd (pid ${pid}) did not stop within 30 s; killing it`);
  process.kill(pid, 'SIGKILL');
}

function pluginsDir(): string {
  return process.getuid?.() === 0 ? '/usr/local/lib/docker/cli-plugins' : join(homedir(), '.docker', 'cli-plugins');
}

/** ensureCompose returns the version of the Compose v2 plugin, building it from its Go module if none answers. */
export async function ensureCompose(): Promise<string> {
  const have = await answers('docker', ['compose', 'version', '--short']);
  if (have) {
    log(`using docker compose ${have}`);
    return have;
  }
  if (!(await onPath('go'))) {
    throw new Error('docker compose is not installed and there is no Go toolchain to build it (put go on PATH)');
  }
  log(`docker compose is not installed: building ${COMPOSE_MODULE}@${COMPOSE_VERSION} (about 2 minutes)`);
  const { stdout } = await run('go', ['mod', 'download', '-json', `${COMPOSE_MODULE}@${COMPOSE_VERSION}`], {
    maxBuffer: 1 << 20,
    env: { ...process.env, GOFLAGS: '-mod=mod' },
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download failed: ${info.Error ?? 'no module directory'}`);
  const src = join(tmpdir(), `spiffe-shop-compose-${COMPOSE_VERSION}`);
  await rm(src, { recursive: true, force: true });
  await cp(info.Dir, src, { recursive: true });
  await run('chmod', ['-R', 'u+w', src]);
  const dir = pluginsDir();
  await mkdir(dir, { recursive: true });
  const target = join(dir, 'docker-compose');
  try {
    await run(
      'go',
      [
        'build',
        '-trimpath',
        '-ldflags',
        `-s -w -X ${COMPOSE_MODULE}/internal.Version=${COMPOSE_VERSION}`,
        '-o',
        target,
        './cmd',
      ],
      { cwd: src, env: { ...process.env, CGO_ENABLED: '0' }, maxBuffer: 16 << 20 },
    );
  } finally {
    await rm(src, { recursive: true, force: true });
  }
  await chmod(target, 0o755);
  const built = await answers('docker', ['compose', 'version', '--short']);
  if (!built) throw new Error(`built ${target} but "docker compose version" does not answer`);
  log(`installed docker compose ${built} into ${dir}`);
  return built;
}

if (import.meta.main) {
  try {
    // --compose-only (npm run compose:get): build the plugin and stop; .ci/run does it beside the suites, long
    // before test:containers needs the engine.
    if (process.argv.includes('--compose-only')) {
      await ensureCompose();
      process.exit(0);
    }
    const engine = await ensureEngine();
    await ensureCompose();
    if (engine.startedHere)
      log(`dockerd keeps running (pid ${String(engine.pid)}); stop it with: kill ${String(engine.pid)}`);
  } catch (err) {
    log((err as Error).message);
    process.exit(1);
  }
}
