import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** POSTGRES_ROOT is where Debian's postgresql packages put each major version (`<root>/<major>/bin`). */
export const POSTGRES_ROOT = '/usr/lib/postgresql';

/** POSTGRES_BIN_ENV names a bin directory to use instead of the newest one under POSTGRES_ROOT. */
export const POSTGRES_BIN_ENV = 'PG_TESTING_BIN_DIR';

/**
 * findPostgresBin returns the directory holding `initdb` and `pg_ctl`:
 * PG_TESTING_BIN_DIR when set, else the newest major version under
 * /usr/lib/postgresql (Debian's layout). Throws, saying what to install,
 * when there is none.
 */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = env[POSTGRES_BIN_ENV];
  const candidates =
    wanted !== undefined && wanted !== ''
      ? [wanted]
      : existsSync(POSTGRES_ROOT)
        ? readdirSync(POSTGRES_ROOT)
            .filter((v) => /^\d+$/.test(v))
            .sort((a, b) => Number(b) - Number(a))
            .map((v) => join(POSTGRES_ROOT, v, 'bin'))
        : [];
  const found = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (found === undefined) {
    throw new Error(
      `no PostgreSQL server binaries (initdb, pg_ctl) in ${wanted ?? `${POSTGRES_ROOT}/<version>/bin`}: ` +
        'install them with `apt-get install postgresql` (Debian/Ubuntu), or set PG_TESTING_BIN_DIR to their directory',
    );
  }
  return found;
}

/** ServerUser is the OS account the server runs as: ourselves, or `postgres` when we are root (initdb refuses root). */
export interface ServerUser {
  /** name of the account, or undefined when it is the current user. */
  name: string | undefined;
  uid: number;
  gid: number;
}

/** SERVER_USER is the account used when the tests run as root. */
export const SERVER_USER = 'postgres';

/**
 * serverUser returns who runs the server. As root it is the `postgres`
 * account (Debian's package creates it); when it is missing it is created as
 * a system account, with a line on stderr saying so.
 */
export function serverUser(): ServerUser {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { name: undefined, uid, gid: process.getgid?.() ?? 0 };
  let ids = lookup(SERVER_USER);
  if (ids === undefined) {
    process.stderr.write(
      `pg-testing: initdb refuses to run as root and there is no "${SERVER_USER}" account; creating it as a system account\n`,
    );
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      SERVER_USER,
    ]);
    ids = lookup(SERVER_USER);
    if (ids === undefined) throw new Error(`pg-testing: could not create the "${SERVER_USER}" account`);
  }
  return { name: SERVER_USER, ...ids };
}

function lookup(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}
