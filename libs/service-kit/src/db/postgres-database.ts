import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { Logger } from '../metrics.ts';
import type { PostgresConfig } from './database-config.ts';
import {
  DatabaseStartError,
  DatabaseUnavailableError,
  TransactionScope,
  type Database,
  type DatabaseHealth,
  type Migration,
  type SqlValue,
} from './database.ts';
import { toPostgresDdl } from './sql.ts';

/** ClientCertificate is the certificate chain and key a connection presents (DATABASE_AUTH=identity). */
export interface ClientCertificate {
  certPem: string;
  keyPem: string;
}

/** PostgresOpenOptions configure PostgresDatabase.open. */
export interface PostgresOpenOptions {
  config: PostgresConfig;
  migrations: readonly Migration[];
  /**
   * clientCertificate returns the certificate to present, asked at every new
   * connection, so a rotated identity is used from the next one on.
   * Required when `config.auth` is `identity`.
   */
  clientCertificate?: () => ClientCertificate;
  /** probeIntervalMs is how often the health probe asks the database. Default: 1000. */
  probeIntervalMs?: number;
  /** log gets a line when the database is lost and when it is back. Default: none. */
  log?: Pick<Logger, 'info' | 'warn'>;
}

// A migration's advisory lock key: any constant, the same in every replica.
const MIGRATION_LOCK = 727_001;

// Errors that mean "the database cannot be reached or is going away", as
// opposed to a wrong query: node's socket errors, pg's own connection
// errors, and SQLSTATE class 08 (connection exception), 57P01–57P03
// (shutdown, crash, starting up) and 53300 (too many connections).
// https://www.postgresql.org/docs/15/errcodes-appendix.html
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
const PG_CONNECTION_MESSAGES = [
  /connection terminated/i,
  /not queryable/i,
  /connection error/i,
  /Client was closed/i,
  /Cannot use a pool after calling end/i,
];

/** isConnectionError says whether `err` means the database is unreachable (not that a query is wrong). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (SOCKET_CODES.has(code) || SQLSTATES.has(code) || code.startsWith('08')) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return PG_CONNECTION_MESSAGES.some((re) => re.test(message));
}

// pg-pool's error when every connection stayed busy for connectionTimeoutMillis:
// the database is up but we are over DATABASE_POOL_MAX, so 503 without "lost".
function isPoolBusy(err: unknown): boolean {
  return err instanceof Error && /timeout exceeded when trying to connect/i.test(err.message);
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return `${code}${typeof e?.message === 'string' ? e.message : String(err)}`;
}

/**
 * poolConfig turns a PostgresConfig into node-postgres pool options. The
 * URL is taken apart here (not handed over as a connection string) so its
 * `sslmode` cannot replace the TLS options: with DATABASE_CA_FILE, or any
 * sslmode but `disable`/`prefer`/`allow`, the connection is TLS with
 * verify-full (chain to the CA, name of the host).
 */
export function poolConfig(c: PostgresConfig, clientCertificate?: () => ClientCertificate): pg.PoolConfig {
  const u = new URL(c.url);
  const sslmode = u.searchParams.get('sslmode');
  const tls = c.caFile !== undefined || (sslmode !== null && !['disable', 'prefer', 'allow'].includes(sslmode));
  let ssl: ConnectionOptions | undefined;
  if (tls) {
    ssl = { rejectUnauthorized: true };
    if (c.caFile !== undefined) {
      const caFile = c.caFile;
      // Read once now (a missing file fails at start), then again for each
      // new connection, like the client certificate below: a CA bundle
      // rewritten in place (SPIRE's bundle after a CA rotation) is followed.
      readFileSync(caFile, 'utf8');
      Object.defineProperty(ssl, 'ca', {
        enumerable: true,
        configurable: true,
        get: () => readFileSync(caFile, 'utf8'),
      });
    }
    if (c.auth === 'identity') {
      if (!clientCertificate)
        throw new Error('DATABASE_AUTH=identity needs the service identity as client certificate');
      // Getters: node-postgres copies `ssl` into tls.connect() for each new
      // connection, so each one presents the identity current at that time.
      // Configurable, because node-postgres hides `key` (enumerable: false).
      Object.defineProperties(ssl, {
        cert: { enumerable: true, configurable: true, get: () => clientCertificate().certPem },
        key: { enumerable: true, configurable: true, get: () => clientCertificate().keyPem },
      });
    }
  }
  const password =
    c.auth === 'password' && c.passwordFile !== undefined
      ? readFileSync(c.passwordFile, 'utf8').replace(/\r?\n$/, '')
      : u.password !== ''
        ? decodeURIComponent(u.password)
        : undefined;
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port === '' ? 5432 : Number(u.port),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    user: u.username === '' ? undefined : decodeURIComponent(u.username),
    ...(password !== undefined ? { password } : {}),
    ...(ssl ? { ssl } : { ssl: false }),
    max: c.poolMax,
    ...(c.statementTimeoutMs > 0 ? { statement_timeout: c.statementTimeoutMs } : {}),
    // A lost database must fail a request quickly (503), not hold it.
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    application_name: u.searchParams.get('application_name') ?? 'spiffe-shop',
    types: { getTypeParser: typeParser },
  };
}

// BIGINT (20) and NUMERIC (1700, what SUM gives) as JS numbers: stores hold
// counts, cents and ms times, all far below 2^53, and SQLite gives numbers too.
function typeParser(
  oid: Parameters<typeof pg.types.getTypeParser>[0],
  format?: 'text' | 'binary',
): (value: string) => unknown {
  if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return (value: string) => Number(value);
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

/**
 * PostgresDatabase is the PostgreSQL engine: a node-postgres pool. A
 * transaction holds one pooled connection; the queries made inside it (in
 * its async context) run on that connection. A probe asks the database
 * every second, so `health()` reports a lost database even when no request
 * comes, and reports it back once it answers again (the pool reconnects by
 * itself). While it is lost, every query fails with DatabaseUnavailableError
 * (503 DATABASE_UNAVAILABLE, Retry-After).
 */
export class PostgresDatabase implements Database {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #scope = new TransactionScope<pg.PoolClient>();
  readonly #where: string;
  readonly #log: Pick<Logger, 'info' | 'warn'> | undefined;
  #open = true;
  #health: DatabaseHealth = { ok: true };
  #probe: NodeJS.Timeout | undefined;

  private constructor(pool: pg.Pool, where: string, log: Pick<Logger, 'info' | 'warn'> | undefined) {
    this.#pool = pool;
    this.#where = where;
    this.#log = log;
    // An idle connection that breaks must not crash the process: the pool drops it.
    pool.on('error', (err) => {
      this.#lost(err);
    });
  }

  /**
   * open connects to DATABASE_URL, waiting up to `connectWaitSeconds` for a
   * database that is not up yet (DatabaseStartError, SVC_ERR_DATABASE_UNREACHABLE,
   * naming DATABASE_URL, when it stays away or refuses us), and runs the
   * pending migrations under an advisory lock.
   */
  static async open(o: PostgresOpenOptions): Promise<PostgresDatabase> {
    const { config } = o;
    const pool = new pg.Pool(poolConfig(config, o.clientCertificate));
    const db = new PostgresDatabase(pool, config.redactedUrl, o.log);
    try {
      await db.#waitForServer(config.connectWaitSeconds);
      await db.#migrate(o.migrations);
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof DatabaseStartError) throw err;
      throw new DatabaseStartError(`DATABASE_URL ${config.redactedUrl}: ${describe(err)}`, { cause: err });
    }
    const interval = o.probeIntervalMs ?? 1000;
    db.#probe = setInterval(() => {
      void db.#check();
    }, interval);
    db.#probe.unref();
    return db;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  health(): DatabaseHealth {
    if (!this.#open) return { ok: false, reason: 'the database is closed' };
    return this.#health;
  }

  async all<R>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return (await this.#query(sql, params)).rows as R[];
  }

  async get<R>(sql: string, params: readonly SqlValue[] = []): Promise<R | undefined> {
    return (await this.#query(sql, params)).rows[0] as R | undefined;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.#query(sql, params)).rowCount ?? 0;
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#scope.current) return fn();
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      await this.#guard(() => client.query('BEGIN'));
      let result: T;
      try {
        result = await this.#scope.run(client, fn);
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr as Error;
        });
        throw err;
      }
      await this.#guard(() => client.query('COMMIT'));
      return result;
    } catch (err) {
      if (isConnectionError(err)) broken = err as Error;
      throw err;
    } finally {
      // A connection that failed is destroyed rather than handed out again.
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    clearInterval(this.#probe);
    await this.#pool.end();
  }

  async #query(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    const tx = this.#scope.current;
    if (tx) return this.#guard(() => tx.query(sql, params as SqlValue[]));
    if (!this.#open) throw new DatabaseUnavailableError('the database is closed: the service is shutting down; retry');
    return this.#guard(() => this.#pool.query(sql, params as SqlValue[]));
  }

  async #connect(): Promise<pg.PoolClient> {
    if (!this.#open) throw new DatabaseUnavailableError('the database is closed: the service is shutting down; retry');
    return this.#guard(() => this.#pool.connect());
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.#back();
      return result;
    } catch (err) {
      if (isConnectionError(err)) {
        this.#lost(err);
        throw new DatabaseUnavailableError(`the database cannot be reached (${describe(err)}); retry`, { cause: err });
      }
      if (isPoolBusy(err)) {
        throw new DatabaseUnavailableError('every database connection (DATABASE_POOL_MAX) stayed busy for 5 s; retry', {
          cause: err,
        });
      }
      if ((err as { code?: unknown }).code === '57014') {
        throw new DatabaseUnavailableError('the database did not answer within DATABASE_STATEMENT_TIMEOUT_MS; retry', {
          cause: err,
        });
      }
      throw err;
    }
  }

  #lost(err: unknown): void {
    if (!this.#open) return;
    const reason = `the database at ${this.#where} cannot be reached: ${describe(err)}`;
    if (this.#health.ok)
      this.#log?.warn({ database: this.#where, reason }, 'database lost; not ready until it is back');
    this.#health = { ok: false, reason };
  }

  #back(): void {
    if (this.#health.ok) return;
    this.#health = { ok: true };
    this.#log?.info({ database: this.#where }, 'database back; ready');
  }

  async #check(): Promise<void> {
    if (!this.#open) return;
    try {
      await this.#guard(() => this.#pool.query('SELECT 1'));
    } catch (err) {
      if (!isConnectionError(err) && !(err instanceof DatabaseUnavailableError)) this.#lost(err);
    }
  }

  async #waitForServer(waitSeconds: number): Promise<void> {
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      try {
        await this.#pool.query('SELECT 1');
        return;
      } catch (err) {
        // Only "not reachable" is worth waiting for; a refused login or certificate will not change.
        if (!isConnectionError(err) || Date.now() >= deadline) {
          throw new DatabaseStartError(
            `DATABASE_URL ${this.#where}: ${isConnectionError(err) ? `not reachable within ${String(waitSeconds)} s (DATABASE_CONNECT_WAIT_SECONDS)` : 'connection refused'}: ${describe(err)}`,
            { cause: err },
          );
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async #migrate(migrations: readonly Migration[]): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      // Replicas starting together: one migrates, the others wait here and then find nothing to do.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
      );
      const row = (await client.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')).rows[0] as {
        v: number;
      };
      for (let v = row.v; v < migrations.length; v++) {
        await client.query(toPostgresDdl(migrations[v] as Migration));
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}
