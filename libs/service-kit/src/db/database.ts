// The database every store talks to: one small async interface, two engines
// (sqlite-database.ts: node:sqlite under DATA_DIR, the default;
// postgres-database.ts: node-postgres when DATABASE_URL is set).
//
// SQL is written once, for both engines:
// - placeholders are PostgreSQL's `$1, $2, …` (a value may be used twice);
//   the SQLite engine rewrites them to SQLite's numbered `?1, ?2, …`;
// - migrations are portable DDL. The two departures are rewritten on
//   PostgreSQL (see sql.ts): `STRICT` (SQLite's type checking, which
//   PostgreSQL always does) is dropped, and `INTEGER` becomes `BIGINT`
//   (SQLite's INTEGER is 64-bit, PostgreSQL's 32-bit; times are in ms);
// - the version of a schema is SQLite's own `user_version` (as before this
//   layer existed, so existing data directories keep working) and, on
//   PostgreSQL, a `schema_migrations` table written under an advisory lock
//   so replicas starting together migrate once.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ServiceError } from '../errors.ts';

/** SqlValue is what a placeholder takes and a column gives back. */
export type SqlValue = string | number | null;

/** DatabaseEngine names an engine. */
export type DatabaseEngine = 'sqlite' | 'postgres';

/** Migration is one schema step: portable SQL (one or more statements), run once, in order, in a transaction. */
export type Migration = string;

/** Queryable runs SQL with `$n` placeholders; inside `transaction()`, on the transaction's connection. */
export interface Queryable {
  /** all returns every row. */
  all<R>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
  /** get returns the first row, or undefined. */
  get<R>(sql: string, params?: readonly SqlValue[]): Promise<R | undefined>;
  /** run executes a statement and returns how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/** DatabaseHealth says whether the database answered its last query or probe, and why not. */
export interface DatabaseHealth {
  ok: boolean;
  reason?: string;
}

/**
 * Database is an open store database. `transaction(fn)` runs `fn` atomically;
 * every query made while `fn` runs (through this object, in its async
 * context) uses the transaction's connection, so a store's methods need no
 * transaction argument.
 */
export interface Database extends Queryable {
  readonly engine: DatabaseEngine;
  /** isOpen is true until close(). */
  readonly isOpen: boolean;
  /** transaction runs `fn` in a transaction (joins the current one when nested); rolled back if it throws. */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** health is the readiness of the database: open and answering. */
  health(): DatabaseHealth;
  /** close closes the database (ends the pool); idempotent. */
  close(): Promise<void>;
}

/** DATABASE_UNAVAILABLE is the code a request answers with (503, Retry-After) while the database cannot be reached. */
export const DATABASE_UNAVAILABLE = 'DATABASE_UNAVAILABLE';

/**
 * DatabaseUnavailableError is answered 503 DATABASE_UNAVAILABLE with
 * Retry-After: the database is closed, lost or not answering in time.
 */
export class DatabaseUnavailableError extends ServiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(503, DATABASE_UNAVAILABLE, message, { cause: options.cause, headers: { 'retry-after': '1' } });
    this.name = 'DatabaseUnavailableError';
  }
}

/** DatabaseStartError says that the database named by DATABASE_URL could not be reached at start, within the wait. */
export class DatabaseStartError extends Error {
  readonly code = 'SVC_ERR_DATABASE_UNREACHABLE';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'DatabaseStartError';
  }
}

/**
 * isUniqueViolation says whether `err` is a unique or primary key
 * violation, on either engine (SQLite's SQLITE_CONSTRAINT_UNIQUE and
 * _PRIMARYKEY, PostgreSQL's 23505).
 */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errcode?: unknown } | null;
  return e?.code === '23505' || e?.errcode === 2067 || e?.errcode === 1555;
}

/**
 * TransactionScope tracks, per async context, the transaction an engine's
 * queries must join (its connection, or just a marker for SQLite's one
 * connection).
 */
export class TransactionScope<C> {
  readonly #storage = new AsyncLocalStorage<C>();

  /** current is the transaction of this async context, if any. */
  get current(): C | undefined {
    return this.#storage.getStore();
  }

  /** run runs `fn` with `tx` as the current transaction. */
  run<T>(tx: C, fn: () => Promise<T>): Promise<T> {
    return this.#storage.run(tx, fn);
  }
}
