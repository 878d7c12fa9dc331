import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from '../errors.ts';

const LOCK_FILE = '.spiffe-auth.lock';
const POLL_MS = 100;
// Issuing a handful of certificates takes well under a second; a lock this
// old was left by a process that died, so it is taken over.
const STALE_MS = 60_000;

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function holderIsGone(pidText: string): boolean {
  const pid = Number(pidText.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return errnoOf(err) === 'ESRCH';
  }
}

/**
 * lockDir takes an exclusive lock on `dir` (a lock file holding our pid) so
 * that services started together, each running `dev-certs`, do not create two
 * CAs at once; it waits up to `timeoutMs`, and returns the release function.
 */
export async function lockDir(dir: string, timeoutMs = 30_000): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(`${process.pid}\n`);
      } finally {
        await fh.close();
      }
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') {
        throw new CliError(
          'AUTH_ERR_CLI_OUTPUT_UNWRITABLE',
          `cannot create lock file ${JSON.stringify(path)}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    const state = await lockState(path);
    if (state === 'released') continue;
    if (state === 'stale') {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new CliError(
        'AUTH_ERR_CLI_LOCKED',
        `${JSON.stringify(dir)} is locked by another spiffe-auth (lock file ${JSON.stringify(path)}); waited ${timeoutMs / 1000}s`,
      );
    }
    await sleep(POLL_MS);
  }
}

async function lockState(path: string): Promise<'held' | 'stale' | 'released'> {
  try {
    const st = await stat(path);
    if (Date.now() - st.mtimeMs > STALE_MS) return 'stale';
    const fh = await open(path, 'r');
    try {
      return holderIsGone(await fh.readFile('utf8')) ? 'stale' : 'held';
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return 'released';
    throw new CliError(
      'AUTH_ERR_CLI_OUTPUT_UNWRITABLE',
      `cannot read lock file ${JSON.stringify(path)}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
