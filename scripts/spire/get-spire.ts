// Makes spire-server and spire-agent of the pinned SPIRE release available and
// prints the directory that holds them. In this order:
//   1. SPIRE_BIN_DIR, or binaries on PATH, of the pinned minor version;
//   2. a build from the github.com/spiffe/spire Go module with the local Go
//      toolchain, cached outside the repository (built once per machine);
//   3. the official release tarball, for machines that can reach it.
// Idempotent; says what it did; a clear error when nothing works.
//
//   node scripts/spire/get-spire.ts          # prints the bin dir on the last line
import { execFile } from 'node:child_process';
import { access, chmod, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { CATALOG_FILES, SPIRE_PLUGINS, trimCatalog } from './spire-catalog.ts';

const run = promisify(execFile);

/** SPIRE_VERSION is the pinned release. */
export const SPIRE_VERSION = '1.15.2';
/**
 * SPIRE_BUILD names this project's SPIRE build (its cache folder and the
 * local images' tag): the release with only the plugins in spire-catalog.ts
 * compiled in. A name of its own, so a full build cached under the release's
 * version is never taken for it, and the reverse.
 */
export const SPIRE_BUILD = `${SPIRE_VERSION}-shop`;
const MODULE = 'github.com/spiffe/spire';
const BINARIES = ['spire-server', 'spire-agent'] as const;

function log(msg: string): void {
  process.stderr.write(`get-spire: ${msg}\n`);
}

/** cacheDir is where builds and downloads are kept, outside the repository. */
export function cacheDir(): string {
  const base =
    process.env.SPIRE_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spiffe-shop', 'spire');
  return join(base, `v${SPIRE_BUILD}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function versionOf(bin: string): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(bin, ['--version'], { timeout: 10_000 });
    return /(\d+\.\d+\.\d+)/.exec(stdout + stderr)?.[1];
  } catch {
    return undefined;
  }
}

async function usableDir(dir: string, what: string): Promise<boolean> {
  const minor = SPIRE_VERSION.split('.').slice(0, 2).join('.');
  for (const b of BINARIES) {
    const v = await versionOf(join(dir, b));
    if (v === undefined) return false;
    if (!v.startsWith(`${minor}.`)) {
      log(`${what}: ${b} is ${v}, not ${minor}.x; skipping it`);
      return false;
    }
  }
  return true;
}

async function onPath(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && (await exists(join(dir, 'spire-server'))) && (await exists(join(dir, 'spire-agent')))) return dir;
  }
  return undefined;
}

/**
 * trimPlugins edits the module copy in `src` so that only the plugins listed
 * in spire-catalog.ts are compiled in. It refuses a catalog folder holding a
 * file it does not know (a SPIRE upgrade that moved plugins around).
 */
async function trimPlugins(src: string): Promise<void> {
  for (const side of ['server', 'agent'] as const) {
    const folder = `pkg/${side}/catalog`;
    for (const name of await readdir(join(src, folder))) {
      if (!name.endsWith('.go') || name.endsWith('_test.go')) continue;
      const file = `${folder}/${name}`;
      const entry = CATALOG_FILES[file];
      if (entry === undefined) {
        throw new Error(
          `${file} is not in scripts/spire/spire-catalog.ts: check which plugins it lists and add it there`,
        );
      }
      if (entry === 'untouched') continue;
      const keep = (SPIRE_PLUGINS[entry.side] as Record<string, readonly string[]>)[entry.type];
      if (keep === undefined) throw new Error(`spire-catalog.ts lists no ${entry.side} ${entry.type} plugins`);
      const path = join(src, file);
      await writeFile(path, trimCatalog(await readFile(path, 'utf8'), keep));
    }
  }
}

async function buildFromModule(out: string): Promise<void> {
  const { stdout: goVersion } = await run('go', ['env', 'GOVERSION']);
  log(
    `building SPIRE v${SPIRE_VERSION} (the plugins in spire-catalog.ts) from the ${MODULE} Go module with ${goVersion.trim()} (a few minutes, once per machine)`,
  );
  const { stdout } = await run('go', ['mod', 'download', '-json', `${MODULE}@v${SPIRE_VERSION}`], {
    maxBuffer: 1 << 20,
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download failed: ${info.Error ?? 'no module directory'}`);
  const src = join(cacheDir(), 'src');
  await rm(src, { recursive: true, force: true });
  await cp(info.Dir, src, { recursive: true });
  await run('chmod', ['-R', 'u+w', src]);
  await trimPlugins(src);
  await mkdir(out, { recursive: true });
  // cgo stays on: SPIRE's sqlite datastore (go-sqlite3) needs it. Linked
  // statically, as SPIRE's own release and images are, so the same binaries
  // run on the host and in `FROM scratch` images (scripts/containers). The
  // netgo/osusergo tags keep name and user look-ups in Go, since a static
  // glibc cannot load NSS modules.
  await run(
    'go',
    [
      'build',
      '-trimpath',
      '-tags',
      'netgo,osusergo',
      '-ldflags',
      '-s -w -linkmode external -extldflags "-static"',
      '-o',
      `${out}/`,
      './cmd/spire-server',
      './cmd/spire-agent',
    ],
    {
      cwd: src,
      env: { ...process.env, CGO_ENABLED: '1' },
      maxBuffer: 16 << 20,
    },
  );
  await rm(src, { recursive: true, force: true });
}

async function downloadRelease(out: string): Promise<void> {
  const url = `https://github.com/spiffe/spire/releases/download/v${SPIRE_VERSION}/spire-${SPIRE_VERSION}-linux-amd64-musl.tar.gz`;
  log(`downloading ${url}`);
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  if (!res.ok) throw new Error(`download failed: HTTP ${res.status}`);
  const tgz = join(cacheDir(), 'spire.tar.gz');
  await mkdir(out, { recursive: true });
  await writeFile(tgz, Buffer.from(await res.arrayBuffer()));
  await run('tar', ['-xzf', tgz, '-C', cacheDir(), '--strip-components=2', `spire-${SPIRE_VERSION}/bin`]);
  for (const b of BINARIES) await chmod(join(cacheDir(), b), 0o755);
  for (const b of BINARIES) await cp(join(cacheDir(), b), join(out, b));
}

/** getSpire returns a directory holding spire-server and spire-agent, building or downloading them if needed. */
export async function getSpire(): Promise<string> {
  const fromEnv = process.env.SPIRE_BIN_DIR;
  if (fromEnv && (await usableDir(fromEnv, 'SPIRE_BIN_DIR'))) {
    log(`using SPIRE_BIN_DIR=${fromEnv}`);
    return fromEnv;
  }
  const path = await onPath();
  if (path && (await usableDir(path, 'PATH'))) {
    log(`using the binaries on PATH in ${path}`);
    return path;
  }
  const out = join(cacheDir(), 'bin');
  if (await usableDir(out, 'cache')) {
    log(`using the cached build in ${out}`);
    return out;
  }
  const problems: string[] = [];
  try {
    const t0 = Date.now();
    await buildFromModule(out);
    if (await usableDir(out, 'build')) {
      log(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s into ${out}`);
      return out;
    }
    problems.push('the build produced no working binaries');
  } catch (err) {
    problems.push(`building from the Go module failed: ${(err as Error).message.split('\n').slice(-3).join(' ')}`);
  }
  try {
    await downloadRelease(out);
    if (await usableDir(out, 'download')) return out;
    problems.push('the downloaded binaries do not run');
  } catch (err) {
    problems.push(`downloading the release failed: ${(err as Error).message}`);
  }
  throw new Error(
    `no SPIRE ${SPIRE_VERSION} available:\n  - ${problems.join('\n  - ')}\n` +
      `Set SPIRE_BIN_DIR to a directory with spire-server and spire-agent ${SPIRE_VERSION}, or install Go ≥ 1.26 with access to a Go module proxy.`,
  );
}

if (import.meta.main) {
  try {
    console.log(await getSpire());
  } catch (err) {
    log((err as Error).message);
    process.exit(1);
  }
}
