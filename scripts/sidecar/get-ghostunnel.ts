// Makes the pinned ghostunnel (a SPIFFE-aware TLS proxy, used by the bench as
// the sidecar @shop/auth is measured against) available and prints its path.
// In this order:
//   1. GHOSTUNNEL_BIN, if it is the pinned version;
//   2. the cached build outside the repository;
//   3. a build from the github.com/ghostunnel/ghostunnel Go module with the
//      local Go toolchain and a C compiler (cgo), cached for the next run.
// Idempotent; says what it did; a clear error when nothing works.
//
//   node scripts/sidecar/get-ghostunnel.ts     # prints the binary's path on the last line
import { execFile } from 'node:child_process';
import { access, cp, mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** GHOSTUNNEL_VERSION is the pinned release. */
export const GHOSTUNNEL_VERSION = '1.8.4';
const MODULE = 'github.com/ghostunnel/ghostunnel';

function log(msg: string): void {
  process.stderr.write(`get-ghostunnel: ${msg}\n`);
}

/** ghostunnelCacheDir is where the build is kept, outside the repository. */
export function ghostunnelCacheDir(): string {
  const base =
    process.env.GHOSTUNNEL_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spiffe-shop', 'ghostunnel');
  return join(base, `v${GHOSTUNNEL_VERSION}`);
}

/** cachedGhostunnel is the path the build is cached at (it may not exist yet). */
export function cachedGhostunnel(): string {
  return join(ghostunnelCacheDir(), 'ghostunnel');
}

async function versionOf(bin: string): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(bin, ['--version'], { timeout: 10_000 });
    return /(\d+\.\d+\.\d+)/.exec(stdout + stderr)?.[1];
  } catch {
    return undefined;
  }
}

async function usable(bin: string, what: string): Promise<boolean> {
  try {
    await access(bin);
  } catch {
    return false;
  }
  const v = await versionOf(bin);
  if (v === GHOSTUNNEL_VERSION) return true;
  log(`${what}: ${bin} reports ${v ?? 'no version'}, not ${GHOSTUNNEL_VERSION}; skipping it`);
  return false;
}

async function build(out: string): Promise<void> {
  const { stdout: goVersion } = await run('go', ['env', 'GOVERSION']);
  log(
    `building ghostunnel v${GHOSTUNNEL_VERSION} from the ${MODULE} Go module with ${goVersion.trim()} (once per machine)`,
  );
  const { stdout } = await run('go', ['mod', 'download', '-json', `${MODULE}@v${GHOSTUNNEL_VERSION}`], {
    maxBuffer: 1 << 20,
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download failed: ${info.Error ?? 'no module directory'}`);
  const src = join(ghostunnelCacheDir(), 'src');
  await rm(src, { recursive: true, force: true });
  await cp(info.Dir, src, { recursive: true });
  await run('chmod', ['-R', 'u+w', src]);
  // A module zip keeps vendor/modules.txt but not the vendored packages, so
  // the dependencies come from the module proxy like any other module's.
  await rm(join(src, 'vendor'), { recursive: true, force: true });
  const tmp = `${out}.partial`;
  // cgo stays on: with CGO_ENABLED=0, v1.8.4 does not compile (its
  // no-PKCS#11 stub, certloader/pkcs11_disabled.go, lacks the logger argument
  // tls.go passes). The version is stamped the way ghostunnel's Makefile does.
  await run(
    'go',
    ['build', '-mod=mod', '-trimpath', '-ldflags', `-s -w -X main.version=${GHOSTUNNEL_VERSION}`, '-o', tmp, '.'],
    { cwd: src, env: { ...process.env, CGO_ENABLED: '1' }, maxBuffer: 16 << 20 },
  );
  await rename(tmp, out);
  await rm(src, { recursive: true, force: true });
}

/** getGhostunnel returns the path of a ghostunnel of the pinned version, building it if needed. */
export async function getGhostunnel(): Promise<string> {
  const fromEnv = process.env.GHOSTUNNEL_BIN;
  if (fromEnv && (await usable(fromEnv, 'GHOSTUNNEL_BIN'))) {
    log(`using GHOSTUNNEL_BIN=${fromEnv}`);
    return fromEnv;
  }
  const out = cachedGhostunnel();
  if (await usable(out, 'cache')) {
    log(`using the cached build ${out}`);
    return out;
  }
  await mkdir(ghostunnelCacheDir(), { recursive: true });
  const t0 = Date.now();
  try {
    await build(out);
  } catch (err) {
    throw new Error(
      `no ghostunnel ${GHOSTUNNEL_VERSION} available: building from the Go module failed: ${(err as Error).message.split('\n').slice(-3).join(' ')}\n` +
        `Set GHOSTUNNEL_BIN to a ghostunnel ${GHOSTUNNEL_VERSION} binary, or install Go with access to a Go module proxy.`,
      { cause: err },
    );
  }
  if (!(await usable(out, 'build'))) throw new Error(`the build of ghostunnel ${GHOSTUNNEL_VERSION} does not run`);
  log(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s into ${out}`);
  return out;
}

if (import.meta.main) {
  try {
    console.log(await getGhostunnel());
  } catch (err) {
    log((err as Error).message);
    process.exit(1);
  }
}
