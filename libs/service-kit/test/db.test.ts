import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDatabase, transaction, type Migration } from '../src/db.ts';

describe('openDatabase', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kit-db-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const v1: Migration = (db) => {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  };
  const v2: Migration = (db) => {
    db.exec('ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0');
  };

  test('migrates once, in order, and a reopened file keeps data and version', () => {
    const file = join(dir, 'a', 'store.db');
    const db = openDatabase(file, [v1]);
    db.prepare('INSERT INTO t (v) VALUES (?)').run('kept');
    db.close();
    const again = openDatabase(file, [v1, v2]);
    assert.deepEqual({ ...(again.prepare('SELECT v, n FROM t').get() as object) }, { v: 'kept', n: 0 });
    assert.equal((again.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 2);
    assert.equal((again.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    again.close();
  });

  test('a failing transaction leaves nothing behind; a passing one commits', () => {
    const db = openDatabase(join(dir, 'b.db'), [v1]);
    transaction(db, () => db.prepare('INSERT INTO t (v) VALUES (?)').run('ok'));
    assert.throws(() => {
      transaction(db, () => {
        db.prepare('INSERT INTO t (v) VALUES (?)').run('half');
        db.prepare('INSERT INTO t (v) VALUES (NULL)').run();
      });
    });
    assert.deepEqual(
      db
        .prepare('SELECT v FROM t')
        .all()
        .map((r) => (r as { v: string }).v),
      ['ok'],
    );
    db.close();
  });

  test('a failing migration rolls back and is retried on the next open', () => {
    const file = join(dir, 'c.db');
    const broken: Migration = (db) => {
      db.exec('CREATE TABLE u (x)');
      throw new Error('boom');
    };
    assert.throws(() => openDatabase(file, [v1, broken]), /boom/);
    const db = openDatabase(file, [
      v1,
      (d) => {
        d.exec('CREATE TABLE u (x)');
      },
    ]);
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 2);
    db.close();
  });
});
