import type { IdentitySource } from '@shop/auth';
import type { Logger } from '../metrics.ts';
import type { DatabaseConfig } from './database-config.ts';
import type { Database, Migration } from './database.ts';
import { PostgresDatabase } from './postgres-database.ts';
import { SqliteDatabase } from './sqlite-database.ts';

/** OpenDatabaseOptions are what the engines need beside the config and the migrations. */
export interface OpenDatabaseOptions {
  /** source is the service's identity: its X.509-SVID is the client certificate when DATABASE_AUTH=identity. */
  source?: Pick<IdentitySource, 'getX509Svid'>;
  /** log gets the database's lost/back lines. Default: none. */
  log?: Pick<Logger, 'info' | 'warn'>;
  /** probeIntervalMs of the PostgreSQL health probe. Default: 1000. */
  probeIntervalMs?: number;
}

/**
 * openDatabase opens the database `config` names and brings its schema up
 * to date: SQLite (the default) or PostgreSQL (DATABASE_URL), the same
 * migrations for both.
 */
export async function openDatabase(
  config: DatabaseConfig,
  migrations: readonly Migration[],
  o: OpenDatabaseOptions = {},
): Promise<Database> {
  if (config.engine === 'sqlite') return SqliteDatabase.open(config.file, migrations);
  const { source } = o;
  return PostgresDatabase.open({
    config,
    migrations,
    ...(source
      ? {
          clientCertificate: () => {
            const svid = source.getX509Svid();
            return { certPem: svid.certChainPem(), keyPem: svid.privateKeyPem() };
          },
        }
      : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.probeIntervalMs !== undefined ? { probeIntervalMs: o.probeIntervalMs } : {}),
  });
}
