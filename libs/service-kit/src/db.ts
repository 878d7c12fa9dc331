import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** Migration is one schema step; steps run in order, each once, inside a transaction. */
export type Migration = (db: DatabaseSync) => void;

/**
 * openDatabase opens (creating if needed) a SQLite file in WAL mode and
 * brings its schema up to date. The schema version is SQLite's own
 * `user_version`, so a restarted service knows what has already run.
 */
export function openDatabase(file: string, migrations: readonly Migration[]): DatabaseSync {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA busy_timeout = 5000');
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  for (let v = row.user_version; v < migrations.length; v++) {
    transaction(db, () => {
      (migrations[v] as Migration)(db);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    });
  }
  return db;
}

/**
 * transaction runs `fn` in an IMMEDIATE transaction (the write lock is taken
 * up front, so concurrent writers queue instead of failing mid-way) and rolls
 * back on any error: nothing half-written survives.
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
