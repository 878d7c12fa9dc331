import { randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { link, lstat, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AuthError } from '@shop/auth/x509';
import { CliError, isExpectedError } from '../errors.ts';

// Certificates, keys and bundles are a few KiB; refusing anything much larger
// keeps a mistaken path (a log file, /dev/zero) from being read into memory.
const MAX_INPUT_BYTES = 4 * 1024 * 1024;

/** KEY_FILE_MODE is the mode of every private key the CLI writes. */
export const KEY_FILE_MODE = 0o600;
/** PUBLIC_FILE_MODE is the mode of certificates, bundles and metadata the CLI writes. */
export const PUBLIC_FILE_MODE = 0o644;

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function reason(err: unknown): string {
  switch (errnoOf(err)) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'ENAMETOOLONG':
      return 'the path or one of its names is too long for the file system (a name may have 255 bytes)';
    default:
      return (err as Error).message;
  }
}

/** isMissing tells whether `err` says a file does not exist. */
export function isMissing(err: unknown): boolean {
  return errnoOf(err) === 'ENOENT';
}

/**
 * readInputFile reads a small file named by the user; `what` names it in
 * errors ("certificate file"). Besides regular files it reads pipes, as
 * `<(kubectl get secret ...)` gives, and "-" for stdin, up to the size limit.
 */
export async function readInputFile(path: string, what: string): Promise<Buffer> {
  const unreadable = (problem: string, cause?: unknown): AuthError =>
    new AuthError('AUTH_ERR_FILE_UNREADABLE', `cannot read ${what} ${JSON.stringify(path)}: ${problem}`, { cause });
  const tooLarge = `it is larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB`;
  if (path === '-') {
    const data = await readBounded(process.stdin);
    if (data === undefined) throw unreadable(tooLarge);
    return data;
  }
  let fh;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer before we know what it is.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    throw unreadable(reason(cause), cause);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw unreadable('it is a directory');
    if (st.isFile()) {
      if (st.size > MAX_INPUT_BYTES) throw unreadable(tooLarge);
      return await fh.readFile();
    }
    if (!st.isFIFO() && !st.isCharacterDevice()) throw unreadable('it is not a file or a pipe');
  } catch (cause) {
    if (isExpectedError(cause)) throw cause;
    throw unreadable(reason(cause), cause);
  } finally {
    await fh.close();
  }
  let data: Buffer | undefined;
  try {
    data = await readBounded(createReadStream(path));
  } catch (cause) {
    throw unreadable(reason(cause), cause);
  }
  if (data === undefined) throw unreadable(tooLarge);
  return data;
}

// Reads a stream to its end, or returns undefined (and stops reading) once it exceeds MAX_INPUT_BYTES.
async function readBounded(stream: NodeJS.ReadableStream & { destroy?: () => void }): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > MAX_INPUT_BYTES) {
      stream.destroy?.();
      return undefined;
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** fileExists tells whether something exists at `path` (a dangling symlink counts). */
export async function fileExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    // ENOTDIR: a parent is a file; ENAMETOOLONG: the path cannot be named.
    // Either way nothing can exist here, and creating the directory will say why.
    if (isMissing(err) || errnoOf(err) === 'ENOTDIR' || errnoOf(err) === 'ENAMETOOLONG') return false;
    throw new AuthError('AUTH_ERR_FILE_UNREADABLE', `cannot check ${JSON.stringify(path)}: ${reason(err)}`, {
      cause: err,
    });
  }
}

function unwritable(path: string, err: unknown): CliError {
  return new CliError('AUTH_ERR_CLI_OUTPUT_UNWRITABLE', `cannot write ${JSON.stringify(path)}: ${reason(err)}`, {
    cause: err,
  });
}

/** ensureDir creates `dir` (and its parents) unless it exists, and fails clearly if it is not a directory. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new CliError(
      'AUTH_ERR_CLI_OUTPUT_UNWRITABLE',
      `cannot use ${JSON.stringify(dir)} as output directory: ${errnoOf(err) === 'EEXIST' ? 'it is not a directory' : reason(err)}`,
      { cause: err },
    );
  }
}

/** OutputFile is one file to write: where, what, and with which mode. */
export interface OutputFile {
  path: string;
  data: string;
  mode: number;
}

/** refuseExisting fails with AUTH_ERR_CLI_OUTPUT_EXISTS, before anything is written, if any of `paths` exists. */
export async function refuseExisting(paths: readonly string[]): Promise<void> {
  const existing: string[] = [];
  for (const p of paths) if (await fileExists(p)) existing.push(p);
  if (existing.length > 0) {
    throw new CliError(
      'AUTH_ERR_CLI_OUTPUT_EXISTS',
      `${existing.map((p) => JSON.stringify(p)).join(', ')} already exist${existing.length === 1 ? 's' : ''}; pass --force to replace`,
    );
  }
}

/**
 * writeFileAtomic writes `file` to a temporary file in the same directory,
 * flushes it and renames it into place, so a reader (or a crash) sees the old
 * file or the new one, never half of one. Without `overwrite` it links instead
 * of renaming, which fails rather than replace a file that appeared meanwhile.
 */
export async function writeFileAtomic(file: OutputFile, overwrite: boolean): Promise<void> {
  const dir = dirname(file.path);
  const tmp = join(dir, `.${basename(file.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', file.mode);
    try {
      // open() applies the umask; chmod makes key files 0600 whatever it is.
      await fh.chmod(file.mode);
      await fh.writeFile(file.data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw unwritable(file.path, err);
  }
  try {
    if (overwrite) {
      await rename(tmp, file.path);
    } else {
      await linkOrRename(tmp, file.path);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    if (errnoOf(err) === 'EEXIST') {
      throw new CliError(
        'AUTH_ERR_CLI_OUTPUT_EXISTS',
        `${JSON.stringify(file.path)} already exists; pass --force to replace`,
        { cause: err },
      );
    }
    throw unwritable(file.path, err);
  }
  await syncDir(dir);
}

// Some file systems (FAT, some network mounts) have no hard links; there the
// no-clobber guarantee falls back to check-then-rename.
async function linkOrRename(tmp: string, dest: string): Promise<void> {
  try {
    await link(tmp, dest);
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw err;
    if (await fileExists(dest)) throw Object.assign(new Error(`${dest} exists`), { code: 'EEXIST' });
    await rename(tmp, dest);
    return;
  }
  await unlink(tmp);
}

/** writeFilesAtomic writes each file atomically, after checking (without `overwrite`) that none exists yet. */
export async function writeFilesAtomic(files: readonly OutputFile[], overwrite: boolean): Promise<void> {
  if (!overwrite) await refuseExisting(files.map((f) => f.path));
  for (const f of files) await writeFileAtomic(f, overwrite);
}

// Makes the renames durable; best effort, as some file systems refuse to open a directory for fsync.
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // ignored: the data itself was already flushed
  }
}
