import { resolve } from 'node:path';
import type { Env } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { TRANSPORT_ENV, TRANSPORTS } from '../transport.ts';

/** DATABASE_AUTH_MODES are the values of DATABASE_AUTH. */
export const DATABASE_AUTH_MODES = ['none', 'password', 'identity'] as const;

/** DatabaseAuth is how a service proves who it is to PostgreSQL. */
export type DatabaseAuth = (typeof DATABASE_AUTH_MODES)[number];

/** DatabaseConfig is where a service keeps its state: a SQLite file under DATA_DIR, or PostgreSQL at DATABASE_URL. */
export type DatabaseConfig = SqliteConfig | PostgresConfig;

/** SqliteConfig is the default engine: one SQLite file. */
export interface SqliteConfig {
  readonly engine: 'sqlite';
  /** file is the SQLite database file under DATA_DIR. */
  readonly file: string;
}

/** PostgresConfig is PostgreSQL at DATABASE_URL with its pool, timeouts and TLS. */
export interface PostgresConfig {
  readonly engine: 'postgres';
  /** url is DATABASE_URL (postgres:// or postgresql://); its password, if any, is used as given. */
  readonly url: string;
  /** redactedUrl is `url` without its password, for logs and errors. */
  readonly redactedUrl: string;
  /** poolMax is the most connections the pool opens (DATABASE_POOL_MAX). */
  readonly poolMax: number;
  /** statementTimeoutMs bounds every statement (DATABASE_STATEMENT_TIMEOUT_MS); 0 is no bound. */
  readonly statementTimeoutMs: number;
  /** connectWaitSeconds bounds the wait for the database at start (DATABASE_CONNECT_WAIT_SECONDS). */
  readonly connectWaitSeconds: number;
  /** caFile verifies the server (DATABASE_CA_FILE): TLS with verify-full; unset means no TLS unless the URL's sslmode asks. */
  readonly caFile: string | undefined;
  /** auth is DATABASE_AUTH: `identity` (client certificate = our identity), `password` (DATABASE_PASSWORD_FILE), `none`. */
  readonly auth: DatabaseAuth;
  /** passwordFile holds the password when `auth` is `password` (DATABASE_PASSWORD_FILE). */
  readonly passwordFile: string | undefined;
}

/**
 * readDatabaseConfig reads DATABASE_URL and the variables that go with it:
 * unset keeps SQLite at `<DATA_DIR>/<file>`; `postgres://…` selects
 * PostgreSQL with DATABASE_POOL_MAX, DATABASE_STATEMENT_TIMEOUT_MS,
 * DATABASE_CONNECT_WAIT_SECONDS, DATABASE_CA_FILE, DATABASE_AUTH and
 * DATABASE_PASSWORD_FILE. Each bad value is a ConfigError naming its variable;
 * DATABASE_AUTH=identity is refused with SHOP_TRANSPORT=sidecar (no identity in the process).
 */
export function readDatabaseConfig(env: Env, sqlite: { dataDir: string; file: string }): DatabaseConfig {
  const raw = env.optional('DATABASE_URL');
  if (raw === undefined) return { engine: 'sqlite', file: resolve(sqlite.dataDir, sqlite.file) };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError('DATABASE_URL', 'must be a URL such as postgres://payment@db.example.org:5432/payment');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ConfigError('DATABASE_URL', `must use postgres: or postgresql:, got ${JSON.stringify(u.protocol)}`);
  }
  if (u.hostname === '') throw new ConfigError('DATABASE_URL', 'must name a host, as in postgres://user@host:5432/db');
  if (u.pathname.replace(/^\//, '') === '') {
    throw new ConfigError('DATABASE_URL', 'must name a database, as in postgres://user@host:5432/db');
  }
  const redacted = new URL(u.href);
  if (redacted.password !== '') redacted.password = '***';
  const auth = env.oneOf('DATABASE_AUTH', DATABASE_AUTH_MODES, u.password !== '' ? 'password' : 'none');
  const passwordFile = env.optional('DATABASE_PASSWORD_FILE');
  if (auth === 'password' && passwordFile === undefined && u.password === '') {
    throw new ConfigError(
      'DATABASE_PASSWORD_FILE',
      'must name the file holding the password when DATABASE_AUTH=password',
    );
  }
  if (auth !== 'password' && passwordFile !== undefined) {
    throw new ConfigError('DATABASE_PASSWORD_FILE', `is only read when DATABASE_AUTH=password (it is ${auth})`);
  }
  if (auth === 'identity' && env.oneOf(TRANSPORT_ENV, TRANSPORTS, 'mtls') === 'sidecar') {
    throw new ConfigError(
      'DATABASE_AUTH',
      `must not be identity when ${TRANSPORT_ENV}=sidecar: the process holds no certificate to log in with (the sidecar does); use password`,
    );
  }
  const caFile = env.optional('DATABASE_CA_FILE');
  if (auth === 'identity' && caFile === undefined) {
    throw new ConfigError(
      'DATABASE_CA_FILE',
      'must name the CA bundle that verifies the database server when DATABASE_AUTH=identity (a client certificate goes only over TLS)',
    );
  }
  return {
    engine: 'postgres',
    url: raw,
    redactedUrl: redacted.href,
    poolMax: env.int('DATABASE_POOL_MAX', 10, { min: 1, max: 1000 }),
    statementTimeoutMs: env.int('DATABASE_STATEMENT_TIMEOUT_MS', 5000, { min: 0, max: 3_600_000 }),
    connectWaitSeconds: env.int('DATABASE_CONNECT_WAIT_SECONDS', 30, { min: 0, max: 3600 }),
    caFile: caFile === undefined ? undefined : resolve(caFile),
    auth,
    passwordFile: passwordFile === undefined ? undefined : resolve(passwordFile),
  };
}

/** databaseWhere names the database of `config` for a log line: the SQLite file, or the URL without its password. */
export function databaseWhere(config: DatabaseConfig): string {
  return config.engine === 'sqlite' ? config.file : config.redactedUrl;
}
