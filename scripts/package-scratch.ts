// What it takes to try @shop/auth the way someone outside this repository
// does: its tarball from `npm pack`, a scratch project in a temporary folder
// that installs it from there (its dependencies from the npm registry), and a
// Node binary of a given version from the npm `node` package. Node binaries
// and npm's download cache are kept under ~/.cache/spiffe-shop, so only the
// first run downloads them.
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** ROOT is the repository's root folder. */
export const ROOT = join(import.meta.dirname, '..');

/** CACHE_DIR holds the Node binaries and npm's download cache between runs. */
export const CACHE_DIR = join(homedir(), '.cache', 'spiffe-shop');

/** NODE_22 is the Node 22 LTS version the package is tried on (the npm `node` package of that version). */
export const NODE_22 = '22.23.3';

/** Ran is what a finished child process printed. */
export interface Ran {
  stdout: string;
  stderr: string;
}

/**
 * outsideEnv is the environment of a process outside the workspace: none of
 * npm's `npm_*` variables of the run that started us (which would point npm
 * back at the workspace), and no NODE_OPTIONS of the test runner.
 */
export function outsideEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** run runs `file` with `args` and resolves to its output, or rejects with an error that shows stderr. */
export function run(
  file: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; signal?: AbortSignal },
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? outsideEnv(),
        timeout: options.timeoutMs ?? 300_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (err, stdout, stderr) => {
        if (err)
          reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * nodeBinary returns the path of Node `version` from the npm `node` package,
 * installing it under CACHE_DIR/node-<version> when it is not there yet.
 */
export async function nodeBinary(version: string): Promise<string> {
  const prefix = join(CACHE_DIR, `node-${version}`);
  const bin = join(prefix, 'node_modules', 'node', 'bin', 'node');
  if (await exists(bin)) return bin;
  await mkdir(prefix, { recursive: true });
  // The `node` package fetches its platform's binary in an install script, which npm runs only when allowed.
  await writeFile(join(prefix, 'package.json'), JSON.stringify({ private: true, allowScripts: { node: true } }));
  await run('npm', ['install', '--prefix', prefix, `node@${version}`, ...npmFlags()], { cwd: prefix });
  if (!(await exists(bin))) throw new Error(`npm installed node@${version} but ${bin} is missing`);
  return bin;
}

/** npmFlags are the flags of every npm install here: the shared download cache, no audit, no funding notes. */
export function npmFlags(): string[] {
  return ['--cache', join(CACHE_DIR, 'npm'), '--prefer-offline', '--no-audit', '--no-fund'];
}

/** Packed is the tarball of @shop/auth and what `npm pack --json` said about it. */
export interface Packed {
  tarball: string;
  files: string[];
  unpackedSize: number;
  size: number;
}

/** packAuth runs `npm pack -w libs/auth` into `dest` (which builds dist/ by the prepack script). */
export async function packAuth(dest: string): Promise<Packed> {
  const { stdout } = await run('npm', ['pack', '-w', 'libs/auth', '--pack-destination', dest, '--json'], {
    cwd: ROOT,
    // npm, and the build it starts, run as they do for a user in this repository.
    env: outsideEnv(),
  });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
    unpackedSize: number;
    size: number;
  }[];
  if (!info) throw new Error(`npm pack printed no result: ${stdout}`);
  return {
    tarball: join(dest, info.filename),
    files: info.files.map((f) => f.path),
    unpackedSize: info.unpackedSize,
    size: info.size,
  };
}

/**
 * installScratch makes `dir` a project that depends on the tarball and on
 * `deps` (name → version range) and installs them with npm.
 */
export async function installScratch(dir: string, tarball: string, deps: Record<string, string> = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const manifest = {
    name: 'scratch',
    private: true,
    type: 'module',
    dependencies: { '@shop/auth': `file:${tarball}`, ...deps },
  };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await run('npm', ['install', ...npmFlags()], { cwd: dir });
}

/** duBytes returns the bytes of every file under `dir` (apparent sizes, as `du -sb`). */
export async function duBytes(dir: string): Promise<number> {
  const { stat } = await import('node:fs/promises');
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** readJson reads and parses a JSON file. */
export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}
