import { join } from 'node:path';
import { testDatabaseUrl, testEngine } from '@shop/pg-testing';
import { Env } from '../../src/config.ts';
import { readDatabaseConfig, type DatabaseConfig } from '../../src/db/database-config.ts';

/**
 * testDatabaseConfig is the database a service test opens for data
 * directory `dir`: SQLite `<dir>/<file>` by default; with
 * SHOP_TEST_DATABASE=postgres, a PostgreSQL database of this process's test
 * cluster, the same one each time `dir` is given (a reopened store finds
 * its data, as with SQLite).
 */
export async function testDatabaseConfig(dir: string, file: string): Promise<DatabaseConfig> {
  if (testEngine() === 'sqlite') return { engine: 'sqlite', file: join(dir, file) };
  const url = await testDatabaseUrl(join(dir, file));
  return readDatabaseConfig(new Env({ DATABASE_URL: url, DATABASE_CONNECT_WAIT_SECONDS: '10' }), {
    dataDir: dir,
    file,
  });
}
