// Makes Debian's chromium available for the console's browser tests
// (test/console*.test.ts), like scripts/containers/docker-engine.ts does for
// Docker: /usr/bin/chromium is used when present; else, as root, Debian's
// `chromium` package is installed with apt-get. Never a browser download from
// anywhere else: playwright-core drives this binary.
//
//   node scripts/console/get-chromium.ts     # prints the path of the binary
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** CHROMIUM_PATH is where Debian's chromium package puts the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** ensureChromium returns CHROMIUM_PATH, installing Debian's chromium first when it is missing (root only). */
export async function ensureChromium(): Promise<string> {
  if (await exists(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (process.getuid?.() !== 0)
    throw new Error(`${CHROMIUM_PATH} is missing and only root can install it: apt-get install chromium`);
  process.stderr.write("get-chromium: /usr/bin/chromium is missing: installing Debian's chromium (apt-get)\n");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): Promise<unknown> =>
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { env, maxBuffer: 64 << 20 });
  try {
    await install();
  } catch {
    await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 << 20 });
    await install();
  }
  if (!(await exists(CHROMIUM_PATH))) throw new Error(`apt-get installed chromium but ${CHROMIUM_PATH} is missing`);
  return CHROMIUM_PATH;
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  ensureChromium().then(
    (path) => {
      console.log(path);
    },
    (err: unknown) => {
      console.error(`get-chromium: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
