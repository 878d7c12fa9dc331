// Where the Unix sockets this project creates (the SPIRE server's API socket,
// each agent's Workload API socket) live. Never under the checkout: a Unix
// socket path is limited to sizeof(sun_path) bytes, 108 on Linux and 104 on
// macOS and the BSDs, NUL included, so a checkout in a deep folder made
// spire-agent fail to bind with only "exited during start-up" to show for it.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** SOCKET_DIR_ENV names the environment variable that sets the folder for the project's Unix sockets. */
export const SOCKET_DIR_ENV = 'SHOP_SOCKET_DIR';

/** UNIX_SOCKET_PATH_MAX_BYTES is the longest Unix socket path this platform binds: sun_path less its NUL. */
export const UNIX_SOCKET_PATH_MAX_BYTES = process.platform === 'linux' ? 107 : 103;

// The longest name a socket gets inside the folder: "agent-" + a node name
// (SPIRE tests use names up to ~20 characters) + ".sock", with room to spare.
const NAME_ROOM = 40;

/** SocketPathError is thrown when a socket path is over the limit, before anything tries to bind it. */
export class SocketPathError extends Error {
  /** code is stable: SHOP_ERR_SOCKET_PATH_TOO_LONG. */
  readonly code = 'SHOP_ERR_SOCKET_PATH_TOO_LONG';
  /** path is the socket path that is too long. */
  readonly path: string;

  constructor(path: string, what: string) {
    super(
      `${what}: the Unix socket path ${path} is ${String(Buffer.byteLength(path))} bytes, over the ${String(UNIX_SOCKET_PATH_MAX_BYTES)}-byte limit of Unix socket paths on ${process.platform}; set ${SOCKET_DIR_ENV} to a short folder (e.g. /tmp/shop)`,
    );
    this.name = 'SocketPathError';
    this.path = path;
  }
}

/** checkSocketPath throws SocketPathError naming the limit and `path` when `path` is too long to bind. */
export function checkSocketPath(path: string, what: string): void {
  if (Buffer.byteLength(path) > UNIX_SOCKET_PATH_MAX_BYTES) throw new SocketPathError(path, what);
}

/** SocketDirOptions say where to look for a short folder. */
export interface SocketDirOptions {
  /** env is where SHOP_SOCKET_DIR and XDG_RUNTIME_DIR are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** tmp is the temporary folder to fall back on. Default: os.tmpdir(). */
  tmp?: string;
}

/**
 * socketBaseDir picks the folder under which a run makes its socket folder:
 * `SHOP_SOCKET_DIR` when set (it must be absolute and short enough: it is
 * checked, never second-guessed), else the first of `XDG_RUNTIME_DIR`, the
 * temporary folder and /tmp that leaves room for a socket name.
 */
export function socketBaseDir(o: SocketDirOptions = {}): string {
  const env = o.env ?? process.env;
  const set = env[SOCKET_DIR_ENV];
  if (set !== undefined && set !== '') {
    if (!isAbsolute(set)) throw new Error(`${SOCKET_DIR_ENV} must be an absolute folder, got ${JSON.stringify(set)}`);
    checkSocketPath(join(set, 'shop-XXXXXX', 'x'.repeat(NAME_ROOM)), `${SOCKET_DIR_ENV}=${set}`);
    return set;
  }
  const candidates = [env.XDG_RUNTIME_DIR, o.tmp ?? tmpdir(), '/tmp'].filter(
    (d): d is string => d !== undefined && d !== '' && isAbsolute(d),
  );
  const fits = candidates.find(
    (d) => Buffer.byteLength(join(d, 'shop-XXXXXX', 'x'.repeat(NAME_ROOM))) <= UNIX_SOCKET_PATH_MAX_BYTES,
  );
  return fits ?? '/tmp';
}

/** agentSocketPath is the Workload API socket of `node`'s agent in `socketDir`; Spire and start.ts agree through it. */
export function agentSocketPath(socketDir: string, node: string): string {
  return join(socketDir, `agent-${node}.sock`);
}

/** makeSocketDir creates a fresh, private (0700) socket folder with a short unique name, e.g. /tmp/shop-a1B2c3. */
export function makeSocketDir(o: SocketDirOptions = {}): string {
  const base = socketBaseDir(o);
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, 'shop-'));
}
