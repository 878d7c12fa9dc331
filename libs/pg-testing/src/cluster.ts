import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findPostgresBin, serverUser, type ServerUser } from './postgres-bin.ts';

const run = promisify(execFile);

/** RoleSpec is one service's role and database: the role owns the database, and only it may connect (CONNECT is revoked from PUBLIC). */
export interface RoleSpec {
  /** name of the role. */
  name: string;
  /** database owned by the role. Default: the role's name. */
  database?: string;
  /** password of the role (password authentication). Default: a random one. */
  password?: string;
}

/** TlsOptions turn on TLS (and only TLS) for TCP clients. */
export interface TlsOptions {
  /** certPem is the server's certificate chain (PEM), leaf first. */
  certPem: string;
  /** keyPem is the server's private key (PEM). */
  keyPem: string;
  /** clientCaPem is the CA bundle client certificates are verified against (`ssl_ca_file`); required for `cert` authentication. */
  clientCaPem?: string;
}

/** ClusterOptions configure startPostgres. */
export interface ClusterOptions {
  /** roles to create, each with its own database. Default: none. */
  roles?: readonly RoleSpec[];
  /** tls makes TCP clients use TLS (`hostssl` only). Default: plaintext TCP. */
  tls?: TlsOptions;
  /**
   * clientAuth is how TCP clients authenticate: `password` (scram-sha-256),
   * or `cert` (TLS client certificate, its subject CN mapped to a role by
   * `identMap`; needs `tls` with `clientCaPem`). Default: `password`.
   */
  clientAuth?: 'password' | 'cert';
  /** identMap maps a client certificate's subject CN to the role it may log in as (pg_ident.conf map `shop`). Default: none. */
  identMap?: Readonly<Record<string, string>>;
  /** maxConnections of the server. Default: 200. */
  maxConnections?: number;
}

/** PostgresCluster is a running throwaway cluster. */
export interface PostgresCluster {
  /** host is the loopback address the server listens on for TCP. */
  readonly host: string;
  /** port is the TCP port (picked free at start; kept across restarts). */
  readonly port: number;
  /** socketDir holds the unix socket the superuser connects through. */
  readonly socketDir: string;
  /** dataDir is the cluster's data directory. */
  readonly dataDir: string;
  /** url is a postgres:// URL for `role` (its password included under password auth) to `database` (default: the role's). */
  url(role: string, database?: string): string;
  /** admin returns a connected client of the superuser over the unix socket; end() it when done. */
  admin(database?: string): Promise<pg.Client>;
  /** log returns what the server logged so far. */
  log(): string;
  /**
   * reloadTls replaces the server's TLS files given (certificate and key,
   * client CA bundle) and has the server reload them (`pg_ctl reload`): new
   * connections use them, open ones are kept. Needs a cluster started with
   * `tls` (and `clientCaPem` to replace that).
   */
  reloadTls(tls: Partial<TlsOptions>): Promise<void>;
  /** halt stops the server (fast shutdown) but keeps its data, to simulate a lost database; `resume()` starts it again on the same port. */
  halt(): Promise<void>;
  /** resume starts a halted server again. */
  resume(): Promise<void>;
  /** stop stops the server and removes its directory; idempotent. */
  stop(): Promise<void>;
}

/** freePort returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

// Clusters not yet stopped; the 'exit' safety net kills their postmasters.
const running = new Set<{ dir: string; dataDir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGQUIT is PostgreSQL's immediate shutdown.
  process.on('exit', () => {
    for (const c of running) {
      const pid = postmasterPid(c.dataDir);
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          // already gone
        }
      }
      rmSync(c.dir, { recursive: true, force: true });
    }
  });
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * startPostgres starts a throwaway PostgreSQL cluster: initdb in a fresh
 * directory under /tmp (short, for the unix socket's 108-byte limit), the
 * server on a free 127.0.0.1 port, run as the `postgres` account when we
 * are root, the roles and their databases created. Call `stop()` when done
 * (a process 'exit' hook kills what is left). Fails with the server's log
 * when it does not start.
 */
export async function startPostgres(o: ClusterOptions = {}): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  const user = serverUser();
  const clientAuth = o.clientAuth ?? 'password';
  if (clientAuth === 'cert' && o.tls?.clientCaPem === undefined) {
    throw new Error(
      'pg-testing: clientAuth "cert" needs tls.clientCaPem, the CA client certificates are verified against',
    );
  }
  const dir = mkdtempSync('/tmp/pgt-');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const handle = { dir, dataDir };
  running.add(handle);
  installExitHook();
  const asServer = async (file: string, args: string[]): Promise<string> => {
    const cmd = user.name === undefined ? [file, ...args] : ['-u', user.name, '--', file, ...args];
    const { stdout } = await run(user.name === undefined ? (cmd.shift() as string) : 'runuser', cmd, {
      env: { ...process.env, LC_ALL: 'C' },
    });
    return stdout;
  };
  let port = await freePort();
  const roles = (o.roles ?? []).map((r) => ({
    name: r.name,
    database: r.database ?? r.name,
    password: r.password ?? `pw-${Math.random().toString(36).slice(2)}`,
  }));

  const start = async (): Promise<void> => {
    try {
      await asServer(join(bin, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
    } catch (err) {
      throw new Error(`pg-testing: the server did not start: ${(err as Error).message}\n${readLog()}`, { cause: err });
    }
  };
  const readLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      if (postmasterPid(dataDir) !== undefined) {
        await asServer(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      }
    } catch {
      // already down
    } finally {
      running.delete(handle);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o700);
    await asServer(join(bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=reject',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    const conf = [
      `port = ${String(port)}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = ${quoteLiteral(dir)}`,
      `max_connections = ${String(o.maxConnections ?? 200)}`,
      // A test cluster: durability is not the point, speed is.
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      `log_connections = on`,
    ];
    if (o.tls) {
      writeServerFile(join(dataDir, 'server.crt'), o.tls.certPem, user);
      writeServerFile(join(dataDir, 'server.key'), o.tls.keyPem, user);
      conf.push('ssl = on', `ssl_cert_file = 'server.crt'`, `ssl_key_file = 'server.key'`);
      if (o.tls.clientCaPem !== undefined) {
        writeServerFile(join(dataDir, 'client-ca.crt'), o.tls.clientCaPem, user);
        conf.push(`ssl_ca_file = 'client-ca.crt'`);
      }
    }
    await appendFile(join(dataDir, 'postgresql.conf'), `\n# pg-testing\n${conf.join('\n')}\n`);
    // The superuser only through the unix socket; TCP clients by the chosen method, over TLS when it is on.
    const tcp = o.tls ? 'hostssl' : 'host';
    const method = clientAuth === 'cert' ? 'cert map=shop' : 'scram-sha-256';
    const hba = [
      'local all postgres trust',
      `${tcp} all postgres 127.0.0.1/32 reject`,
      `${tcp} all all 127.0.0.1/32 ${method}`,
      ...(o.tls ? ['hostnossl all all 127.0.0.1/32 reject'] : []),
    ];
    writeServerFile(join(dataDir, 'pg_hba.conf'), `${hba.join('\n')}\n`, user);
    const ident = Object.entries(o.identMap ?? {}).map(([cn, role]) => `shop ${quoteIdentMapValue(cn)} ${role}`);
    writeServerFile(join(dataDir, 'pg_ident.conf'), `${ident.join('\n')}\n`, user);
    // The free port may be taken by another test's cluster between freePort() and the bind: try another.
    for (let attempt = 1; ; attempt++) {
      try {
        await start();
        break;
      } catch (err) {
        if (attempt >= 3 || !/already in use/i.test(readLog())) throw err;
        port = await freePort();
        await appendFile(join(dataDir, 'postgresql.conf'), `port = ${String(port)}\n`);
      }
    }

    const admin = await adminClient(dir, port, 'postgres');
    try {
      for (const r of roles) {
        await admin.query(`CREATE ROLE ${quoteIdent(r.name)} LOGIN PASSWORD ${quoteLiteral(r.password)}`);
        await admin.query(`CREATE DATABASE ${quoteIdent(r.database)} OWNER ${quoteIdent(r.name)}`);
        await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(r.database)} FROM PUBLIC`);
      }
    } finally {
      await admin.end();
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    socketDir: dir,
    dataDir,
    url(role, database) {
      const r = roles.find((x) => x.name === role);
      const db = database ?? r?.database ?? role;
      const auth =
        clientAuth === 'password' && r !== undefined
          ? `${encodeURIComponent(r.name)}:${encodeURIComponent(r.password)}`
          : encodeURIComponent(role);
      return `postgres://${auth}@127.0.0.1:${String(port)}/${encodeURIComponent(db)}`;
    },
    admin: (database = 'postgres') => adminClient(dir, port, database),
    log: readLog,
    async reloadTls(tls) {
      if (!o.tls) throw new Error('pg-testing: reloadTls needs a cluster started with tls');
      if ((tls.certPem === undefined) !== (tls.keyPem === undefined))
        throw new Error('pg-testing: reloadTls takes certPem and keyPem together');
      if (tls.clientCaPem !== undefined && o.tls.clientCaPem === undefined)
        throw new Error('pg-testing: reloadTls cannot add a client CA to a cluster started without one');
      if (tls.certPem !== undefined) writeServerFile(join(dataDir, 'server.crt'), tls.certPem, user);
      if (tls.keyPem !== undefined) writeServerFile(join(dataDir, 'server.key'), tls.keyPem, user);
      if (tls.clientCaPem !== undefined) writeServerFile(join(dataDir, 'client-ca.crt'), tls.clientCaPem, user);
      // pg_ctl reload only signals the postmaster: wait until a new backend
      // sees a newer configuration load time, so the caller's next
      // connection gets the new files.
      const loadTime = async (): Promise<number> => {
        const c = await adminClient(dir, port, 'postgres');
        try {
          const { rows } = await c.query<{ t: Date }>('SELECT pg_conf_load_time() AS t');
          return (rows[0] as { t: Date }).t.getTime();
        } finally {
          await c.end();
        }
      };
      const before = await loadTime();
      const logBefore = readLog().length;
      await asServer(join(bin, 'pg_ctl'), ['-D', dataDir, 'reload']);
      for (let waited = 0; (await loadTime()) <= before; waited += 50) {
        if (waited > 10_000) throw new Error(`pg-testing: the server did not reload within 10 s\n${readLog()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // A file PostgreSQL cannot load leaves the old TLS settings in force, with only a log line to say so.
      const logged = readLog().slice(logBefore);
      if (logged.includes('SSL configuration was not reloaded'))
        throw new Error(`pg-testing: the server kept its old TLS files:\n${logged}`);
    },
    async halt() {
      await asServer(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    },
    resume: start,
    stop,
  };
}

// pg_ident.conf values with spaces or dots are safe double-quoted.
function quoteIdentMapValue(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

function writeServerFile(file: string, content: string, user: ServerUser): void {
  writeFileSync(file, content, { mode: 0o600 });
  chownSync(file, user.uid, user.gid);
}

async function adminClient(socketDir: string, port: number, database: string): Promise<pg.Client> {
  const client = new pg.Client({ host: socketDir, port, user: 'postgres', database });
  await client.connect();
  return client;
}
