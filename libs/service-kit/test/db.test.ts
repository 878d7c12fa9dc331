// The database layer on both engines: the same tests, once on SQLite, once on a throwaway PostgreSQL.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { Env } from '../src/config.ts';
import { readDatabaseConfig, type DatabaseConfig } from '../src/db/database-config.ts';
import { DatabaseUnavailableError, isUniqueViolation, type Migration } from '../src/db/database.ts';
import { openDatabase } from '../src/db/open-database.ts';
import { toPostgresDdl, toSqlitePlaceholders } from '../src/db/sql.ts';

const v1: Migration = 'CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT NOT NULL, n INTEGER) STRICT';
const v2: Migration = 'ALTER TABLE t ADD COLUMN m INTEGER NOT NULL DEFAULT 0';

let dir: string;
let cluster: PostgresCluster;
let fresh: () => Promise<DatabaseConfig>;
let counter = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kit-db-'));
  cluster = await startPostgres({ roles: [{ name: 'kit' }] });
});
after(async () => {
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
});

const engines: { name: string; config: () => Promise<DatabaseConfig> }[] = [
  {
    name: 'sqlite',
    config: () => Promise.resolve({ engine: 'sqlite', file: join(dir, `db-${String(++counter)}.db`) }),
  },
  {
    name: 'postgres',
    config: async () => {
      // A fresh schema per test: drop what the last test made.
      const admin = await cluster.admin('kit');
      await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION kit');
      await admin.end();
      return readDatabaseConfig(new Env({ DATABASE_URL: cluster.url('kit') }), { dataDir: dir, file: 'x' });
    },
  },
];

for (const engine of engines) {
  describe(`database layer on ${engine.name}`, () => {
    before(() => {
      fresh = engine.config;
    });

    test('migrates once, in order; a reopened database keeps data and version', async () => {
      const config = await fresh();
      const db = await openDatabase(config, [v1]);
      await db.run('INSERT INTO t (id, v, n) VALUES ($1, $2, $3)', ['a', 'kept', 1_700_000_000_000]);
      await db.close();
      const again = await openDatabase(config, [v1, v2]);
      assert.deepEqual(
        { ...(await again.get<object>('SELECT v, n, m FROM t')) },
        { v: 'kept', n: 1_700_000_000_000, m: 0 },
      );
      await again.close();
    });

    test('a failing transaction leaves nothing behind; a passing one commits', async () => {
      const db = await openDatabase(await fresh(), [v1]);
      await db.transaction(() => db.run('INSERT INTO t (id, v) VALUES ($1, $2)', ['1', 'ok']));
      await assert.rejects(
        db.transaction(async () => {
          await db.run('INSERT INTO t (id, v) VALUES ($1, $2)', ['2', 'half']);
          await db.run('INSERT INTO t (id, v) VALUES ($1, NULL)', ['3']);
        }),
      );
      assert.deepEqual(
        (await db.all<{ v: string }>('SELECT v FROM t ORDER BY id')).map((r) => r.v),
        ['ok'],
      );
      await db.close();
    });

    test('a value used twice in one statement, counts and sums come back as numbers', async () => {
      const db = await openDatabase(await fresh(), [v1]);
      await db.run('INSERT INTO t (id, v, n) VALUES ($1, $1, $2)', ['x', 5]);
      await db.run('INSERT INTO t (id, v, n) VALUES ($1, $1, $2)', ['y', 7]);
      const row = await db.get<{ c: number; s: number }>('SELECT count(*) AS c, coalesce(sum(n), 0) AS s FROM t');
      assert.deepEqual({ ...row }, { c: 2, s: 12 });
      assert.equal(await db.run("UPDATE t SET v = 'z' WHERE n > $1", [6]), 1);
      await db.close();
    });

    test('a duplicate key is a unique violation on both engines (positive control: a new key inserts)', async () => {
      const db = await openDatabase(await fresh(), [v1]);
      await db.run('INSERT INTO t (id, v) VALUES ($1, $2)', ['k', 'first']);
      await db.run('INSERT INTO t (id, v) VALUES ($1, $2)', ['k2', 'second']);
      const err = await db.run('INSERT INTO t (id, v) VALUES ($1, $2)', ['k', 'again']).catch((e: unknown) => e);
      assert.equal(isUniqueViolation(err), true);
      await db.close();
    });

    test('transactions of concurrent callers never interleave (read-modify-write loses nothing)', async () => {
      const db = await openDatabase(await fresh(), [v1]);
      await db.run("INSERT INTO t (id, v, n) VALUES ('c', 'counter', 0)");
      await Promise.all(
        Array.from({ length: 20 }, () =>
          db.transaction(async () => {
            // Lock first (a no-op write), then read, wait, write: another caller in between would lose an increment.
            await db.run("UPDATE t SET n = n WHERE id = 'c'");
            const row = await db.get<{ n: number }>("SELECT n FROM t WHERE id = 'c'");
            await new Promise((r) => setTimeout(r, 1));
            await db.run("UPDATE t SET n = $1 WHERE id = 'c'", [(row?.n ?? 0) + 1]);
          }),
        ),
      );
      assert.equal((await db.get<{ n: number }>("SELECT n FROM t WHERE id = 'c'"))?.n, 20);
      await db.close();
    });

    test('a closed database answers DatabaseUnavailableError (503 DATABASE_UNAVAILABLE)', async () => {
      const db = await openDatabase(await fresh(), [v1]);
      assert.deepEqual(db.health(), { ok: true });
      await db.close();
      assert.equal(db.isOpen, false);
      assert.equal(db.health().ok, false);
      const err = await db.get('SELECT 1 AS one').catch((e: unknown) => e);
      assert.ok(err instanceof DatabaseUnavailableError);
      assert.equal(err.statusCode, 503);
      assert.equal(err.code, 'DATABASE_UNAVAILABLE');
      assert.equal(err.headers['retry-after'], '1');
    });

    test('a failing migration rolls back and is retried on the next open', async () => {
      const config = await fresh();
      await assert.rejects(openDatabase(config, [v1, 'CREATE TABLE u (x TEXT); SELECT no_such_function()']));
      const db = await openDatabase(config, [v1, 'CREATE TABLE u (x TEXT)']);
      await db.run("INSERT INTO u (x) VALUES ('made')");
      await db.close();
    });
  });
}

test('SQLite keeps its schema version in user_version, so data directories made before this layer open unchanged', async () => {
  const file = join(dir, 'legacy.db');
  const db = await openDatabase({ engine: 'sqlite', file }, [v1, v2]);
  await db.close();
  const raw = new DatabaseSync(file);
  assert.equal((raw.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 2);
  assert.equal((raw.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
  raw.close();
});

test('PostgreSQL: replicas starting together migrate once (advisory lock, schema_migrations)', async () => {
  const config = await engines[1]?.config();
  assert.ok(config);
  const dbs = await Promise.all([1, 2, 3].map(() => openDatabase(config, [v1, v2])));
  const versions = await dbs[0]?.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  assert.deepEqual(
    versions?.map((r) => r.version),
    [1, 2],
  );
  await Promise.all(dbs.map((d) => d.close()));
});

test('one SQL text for both engines: placeholders and DDL rewritten outside string literals only', () => {
  assert.equal(toSqlitePlaceholders("SELECT $1, '$2', $2"), "SELECT ?1, '$2', ?2");
  assert.equal(
    toPostgresDdl("CREATE TABLE a (n INTEGER, s TEXT DEFAULT 'INTEGER') STRICT;"),
    "CREATE TABLE a (\n  rowid BIGINT GENERATED ALWAYS AS IDENTITY,n BIGINT, s TEXT DEFAULT 'INTEGER');",
  );
});

test('regression: a pool that stays busy answers 503 but is not a lost database (health stays ok)', async () => {
  const base = await engines[1]?.config();
  assert.ok(base?.engine === 'postgres');
  const db = await openDatabase({ ...base, poolMax: 1 }, [v1]);
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const holding = db.transaction(async () => {
    await db.get('SELECT 1 AS one');
    await held;
  });
  try {
    const err = await db.get('SELECT 1 AS one').catch((e: unknown) => e);
    assert.ok(err instanceof DatabaseUnavailableError, String(err));
    assert.match(err.message, /DATABASE_POOL_MAX/);
    assert.deepEqual(db.health(), { ok: true });
  } finally {
    release();
    await holding;
  }
  // Positive control: with the connection free again, the same query answers.
  assert.deepEqual({ ...(await db.get<object>('SELECT 1 AS one')) }, { one: 1 });
  await db.close();
});
