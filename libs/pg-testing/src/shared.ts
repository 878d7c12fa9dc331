import { randomBytes } from 'node:crypto';
import { startPostgres, type PostgresCluster } from './cluster.ts';

/** TEST_DATABASE_ENV picks the engine of the services' behaviour suites: `sqlite` (default) or `postgres`. */
export const TEST_DATABASE_ENV = 'SHOP_TEST_DATABASE';

/** testEngine reads SHOP_TEST_DATABASE: `postgres`, or `sqlite` when unset. */
export function testEngine(env: NodeJS.ProcessEnv = process.env): 'sqlite' | 'postgres' {
  const v = env[TEST_DATABASE_ENV];
  if (v === undefined || v === '' || v === 'sqlite') return 'sqlite';
  if (v === 'postgres') return 'postgres';
  throw new Error(`${TEST_DATABASE_ENV} must be sqlite or postgres, got ${JSON.stringify(v)}`);
}

let shared: Promise<PostgresCluster> | undefined;
const databases = new Map<string, Promise<string>>();

/**
 * sharedCluster returns this process's one test cluster, started on first
 * use and stopped when the process has nothing left to do (node --test runs
 * each file in its own process).
 */
export function sharedCluster(): Promise<PostgresCluster> {
  if (!shared) {
    shared = startPostgres();
    const stopping = shared;
    process.once('beforeExit', () => {
      void stopping.then((c) => c.stop());
    });
  }
  return shared;
}

/**
 * testDatabaseUrl returns the URL of a database of the shared cluster with
 * its own owner role, made on first use of `key`: the same key (e.g. a test's
 * data directory, reopened after a "restart") gives the same database.
 */
export function testDatabaseUrl(key: string): Promise<string> {
  let url = databases.get(key);
  if (!url) {
    url = (async () => {
      const cluster = await sharedCluster();
      const name = `t_${randomBytes(6).toString('hex')}`;
      const password = randomBytes(12).toString('hex');
      const admin = await cluster.admin();
      try {
        await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
        await admin.query(`CREATE DATABASE ${name} OWNER ${name}`);
        await admin.query(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC`);
      } finally {
        await admin.end();
      }
      return `postgres://${name}:${password}@${cluster.host}:${String(cluster.port)}/${name}`;
    })();
    databases.set(key, url);
  }
  return url;
}
