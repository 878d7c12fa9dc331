// compose.postgres.yaml's database, without Docker: the scripts of its
// postgres service (scripts/containers/postgres: shop-entrypoint.sh, the
// stand-in image's docker-entrypoint.sh, init-shop.sh, pg_hba.conf,
// pg_ident.conf) run on this machine's Debian PostgreSQL 15, as the
// container runs them. A service's certificate logs it in to its own
// database and nowhere else; plaintext and other certificates are refused;
// a restart keeps the data and does not initialise again.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createDevCerts, freePort, ROOT } from '../scripts/shop.ts';

const run = promisify(execFile);
const SCRIPTS = join(ROOT, 'scripts', 'containers', 'postgres');
const BIN = '/usr/lib/postgresql/15/bin';

let dir: string;
let port: number;
let server: ChildProcess | undefined;

/** startServer runs shop-entrypoint.sh as compose's postgres service would, on a loopback port; resolves once it is ready. */
async function startServer(logName: string): Promise<string> {
  const log = join(dir, logName);
  const out = openSync(log, 'a');
  server = spawn(
    'sh',
    [
      join(SCRIPTS, 'shop-entrypoint.sh'),
      'postgres',
      '-c',
      `port=${port}`,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${join(dir, 'sock')}`,
    ],
    {
      env: {
        ...process.env,
        PATH: `${SCRIPTS}:${BIN}:${process.env.PATH ?? ''}`,
        PGDATA: join(dir, 'data'),
        INITDB_DIR: join(dir, 'initdb.d'),
        SHOP_DIR: SCRIPTS,
        TLS_OUT: join(dir, 'tls'),
        PG_TLS_DIR: join(dir, 'certs'),
        PG_CLIENT_CA_FILES: join(dir, 'certs', 'ca.crt.pem'),
        // The init scripts' psql finds the temporary server here (in the container: the defaults).
        PGHOST: join(dir, 'sock'),
        PGPORT: String(port),
        POSTGRES_HOST_AUTH_METHOD: 'trust',
      },
      stdio: ['ignore', out, out],
    },
  );
  closeSync(out); // the child has its own copy
  for (const until = Date.now() + 60_000; Date.now() < until;) {
    if (server.exitCode !== null) break;
    try {
      await run(join(BIN, 'pg_isready'), ['-h', join(dir, 'sock'), '-p', String(port), '-U', 'postgres']);
      // Ready on the socket is also what the temporary init server says: wait for TCP too.
      await run(join(BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']);
      return await readFile(log, 'utf8');
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`postgres did not start:\n${await readFile(log, 'utf8')}`);
}

async function stopServer(): Promise<void> {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = once(server, 'exit');
  server.kill('SIGINT'); // the image's STOPSIGNAL: a fast shutdown
  const timer = setTimeout(() => server?.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** psql connects over TCP as `role` to `database` presenting `cert`'s certificate (or none), and returns the output or the refusal. */
async function psql(
  cert: string | undefined,
  role: string,
  database: string,
  sslmode = 'verify-full',
): Promise<string> {
  const c = join(dir, 'certs');
  const conn = [
    'host=localhost',
    `port=${port}`,
    `user=${role}`,
    `dbname=${database}`,
    `sslmode=${sslmode}`,
    `sslrootcert=${join(c, 'ca.crt.pem')}`,
    ...(cert ? [`sslcert=${join(c, `${cert}.crt.pem`)}`, `sslkey=${join(c, `${cert}.key.pem`)}`] : []),
  ].join(' ');
  try {
    const { stdout } = await run('psql', [conn, '-tAc', "SELECT current_user || '@' || current_database()"], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
    });
    return stdout.trim();
  } catch (err) {
    return `refused: ${(err as { stderr?: string }).stderr?.trim() ?? String(err)}`;
  }
}

before(async () => {
  dir = await mkdtemp('/tmp/pgc-');
  // The server runs as postgres: it must reach its folders under ours.
  await chmod(dir, 0o755);
  port = await freePort();
  await createDevCerts(join(dir, 'certs'), true, ['order', 'payment', 'inventory', 'postgres']);
  await mkdir(join(dir, 'sock'), { mode: 0o777 });
  await chmod(join(dir, 'sock'), 0o777);
  await mkdir(join(dir, 'initdb.d'));
  // As compose mounts it: /docker-entrypoint-initdb.d/10-shop.sh.
  await copyFile(join(SCRIPTS, 'init-shop.sh'), join(dir, 'initdb.d', '10-shop.sh'));
});

after(async () => {
  await stopServer();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  server?.kill('SIGKILL');
});

describe("compose.postgres.yaml's postgres scripts on this machine's PostgreSQL 15", () => {
  test('each certificate logs in to its own database only; no plaintext, no password, no borrowed role', async () => {
    const log = await startServer('first.log');
    assert.match(log, /running .*10-shop\.sh/, 'the init script ran on the empty data folder');
    // Positive controls first: every service reaches its own database with its own certificate.
    for (const s of ['order', 'payment', 'inventory'])
      assert.equal(await psql(s, s, s), `${s}@${s}`, `${s} logs in to ${s}`);
    // Another service's certificate for payment's role: the CN does not map to it.
    assert.match(await psql('order', 'payment', 'payment'), /certificate authentication failed for user "payment"/);
    // Its own role, payment's database: CONNECT is not granted.
    assert.match(await psql('order', 'order', 'payment'), /permission denied for database "payment"/);
    // No certificate, or no TLS at all.
    assert.match(
      await psql(undefined, 'payment', 'payment'),
      /refused: .*(certificate|connection requires a valid client certificate)/i,
    );
    assert.match(await psql('payment', 'payment', 'payment', 'disable'), /no encryption/);
    // The superuser never over TCP, whatever the certificate.
    assert.match(await psql('payment', 'postgres', 'postgres'), /refused/);
  });

  test('a restart keeps the data and runs no init script again', async () => {
    await stopServer();
    const log = await startServer('second.log');
    assert.doesNotMatch(log, /10-shop\.sh/);
    assert.equal(await psql('payment', 'payment', 'payment'), 'payment@payment');
  });
});
