import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  DatabaseUnavailableError,
  TransactionScope,
  type Database,
  type DatabaseHealth,
  type Migration,
  type SqlValue,
} from './database.ts';
import { toSqlitePlaceholders } from './sql.ts';

// SQLITE_BUSY and SQLITE_LOCKED: another process held the write lock for the
// whole busy_timeout. https://www.sqlite.org/rescode.html
const BUSY_ERRCODES = new Set([5, 6]);

/**
 * Mutex is a FIFO async lock. Hand-written: it is a dozen lines, and the
 * SQLite engine needs exactly this (one connection, one holder at a time),
 * nothing a dependency would add.
 */
class Mutex {
  #tail: Promise<void> = Promise.resolve();

  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.#tail;
    this.#tail = previous.then(() => next);
    await previous;
    return release;
  }
}

/**
 * SqliteDatabase is the SQLite engine: one node:sqlite connection (WAL) to
 * a file under DATA_DIR. node:sqlite is synchronous, but a transaction's
 * `fn` awaits (other stores, the clock, …), so every statement and every
 * transaction takes an in-process mutex: a statement of another request can
 * never land inside someone else's open transaction, on the one connection
 * they share. Other processes on the same file queue on SQLite's write
 * lock (BEGIN IMMEDIATE, busy_timeout).
 */
export class SqliteDatabase implements Database {
  readonly engine = 'sqlite' as const;
  readonly #db: DatabaseSync;
  readonly #mutex = new Mutex();
  readonly #scope = new TransactionScope<true>();
  readonly #statements = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * open opens (creating if needed) the SQLite file, or ":memory:", and
   * brings its schema up to date; SQLite's `user_version` counts the
   * migrations that already ran.
   */
  static open(file: string, migrations: readonly Migration[]): SqliteDatabase {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new DatabaseSync(file);
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA foreign_keys = ON');
      db.exec('PRAGMA busy_timeout = 5000');
      const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
      for (let v = row.user_version; v < migrations.length; v++) {
        db.exec('BEGIN IMMEDIATE');
        try {
          db.exec(migrations[v] as Migration);
          db.exec(`PRAGMA user_version = ${String(v + 1)}`);
          db.exec('COMMIT');
        } catch (err) {
          db.exec('ROLLBACK');
          throw err;
        }
      }
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteDatabase(db);
  }

  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  health(): DatabaseHealth {
    return this.#db.isOpen ? { ok: true } : { ok: false, reason: 'the database is closed' };
  }

  all<R>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return this.#statement(sql, (s) => s.all(...params) as R[]);
  }

  get<R>(sql: string, params: readonly SqlValue[] = []): Promise<R | undefined> {
    return this.#statement(sql, (s) => s.get(...params) as R | undefined);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#statement(sql, (s) => Number(s.run(...params).changes));
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#scope.current) return fn();
    const release = await this.#mutex.lock();
    try {
      this.#exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await this.#scope.run(true, fn);
      } catch (err) {
        if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
      this.#exec('COMMIT');
      return result;
    } finally {
      release();
    }
  }

  close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    this.#statements.clear();
    return Promise.resolve();
  }

  async #statement<T>(sql: string, fn: (s: StatementSync) => T): Promise<T> {
    if (this.#scope.current) return this.#sync(sql, fn);
    const release = await this.#mutex.lock();
    try {
      return this.#sync(sql, fn);
    } finally {
      release();
    }
  }

  #sync<T>(sql: string, fn: (s: StatementSync) => T): T {
    return this.#guard(() => {
      let s = this.#statements.get(sql);
      if (!s) {
        s = this.#db.prepare(toSqlitePlaceholders(sql));
        this.#statements.set(sql, s);
      }
      return fn(s);
    });
  }

  #exec(sql: string): void {
    this.#guard(() => {
      this.#db.exec(sql);
    });
  }

  // A closed database, or a write lock held by another process for the
  // whole busy_timeout, is DATABASE_UNAVAILABLE (503, retry).
  #guard<T>(fn: () => T): T {
    if (!this.#db.isOpen)
      throw new DatabaseUnavailableError('the database is closed: the service is shutting down; retry');
    try {
      return fn();
    } catch (err) {
      if (BUSY_ERRCODES.has((err as { errcode?: number }).errcode ?? 0)) {
        throw new DatabaseUnavailableError('the database stayed locked by another writer; retry', { cause: err });
      }
      throw err;
    }
  }
}
