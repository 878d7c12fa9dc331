// One throwaway PostgreSQL for the shop harness (`npm start -- --db
// postgres`, the scale suite, the bench): @shop/pg-testing's cluster with
// TLS, a server certificate from the shop's development CA, and one role and
// one database per service. Each service logs in with its own certificate
// (Postgres `cert` authentication; the certificate's subject CN, which
// `spiffe-auth dev-certs` sets to the service name, is mapped to the role
// of the same name by pg_ident.conf), so no service can open another's
// database.
import { join } from 'node:path';
import type { ServiceName } from './shop.ts';

const SERVICES: readonly ServiceName[] = ['order', 'payment', 'inventory'];

/** PG_SERVER_NAME is the name in the Postgres server certificate (a DNS SAN of dev-certs' "postgres" certificate). */
export const PG_SERVER_NAME = 'localhost';

/** PgClient is the slice of a `pg` client the harness uses (rows as the driver gives them: BIGINT as a string). */
export interface PgClient {
  query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

/** ShopPostgres is the shop's running database server. */
export interface ShopPostgres {
  /** port the server listens on (127.0.0.1). */
  readonly port: number;
  /** env is what each service needs to use its own database. */
  env(name: ServiceName): Record<string, string>;
  /** admin is a superuser client on a service's database (for checks straight on the data); end() it when done. */
  admin(name: ServiceName): Promise<PgClient>;
  /** stop stops the server and removes its files; idempotent. */
  stop(): Promise<void>;
}

interface PgTesting {
  findPostgresBin(): string;
  startPostgres(o: {
    roles: { name: string }[];
    tls: { certPem: string; keyPem: string; clientCaPem: string };
    clientAuth: 'cert';
    identMap: Record<string, string>;
    maxConnections?: number;
  }): Promise<{
    port: number;
    admin(database?: string): Promise<PgClient>;
    stop(): Promise<void>;
  }>;
}

/** PG_TESTING is the workspace that runs throwaway clusters (libs/pg-testing). */
const PG_TESTING = '@shop/pg-testing';

async function pgTesting(): Promise<PgTesting> {
  try {
    return (await import(PG_TESTING)) as PgTesting;
  } catch (err) {
    throw new Error(
      `${PG_TESTING} (libs/pg-testing, the database layer of issue 13) is missing: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** postgresMissing says why no PostgreSQL can run here (no pg-testing, no server binaries), or undefined when one can. */
export async function postgresMissing(): Promise<string | undefined> {
  try {
    (await pgTesting()).findPostgresBin();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * startShopPostgres starts the server. `certsDir` must hold dev-certs' CA and
 * a "postgres" certificate (createDevCerts with the postgres service); the
 * services' own certificates are their database logins.
 */
export async function startShopPostgres(o: {
  certsDir: string;
  /** poolMax is each service's DATABASE_POOL_MAX (the server allows enough for all replicas). */
  poolMax?: number;
  /** replicas is the largest replica count of any service, to size max_connections. */
  replicas?: number;
}): Promise<ShopPostgres> {
  const lib = await pgTesting();
  const { readFile } = await import('node:fs/promises');
  const read = (f: string): Promise<string> => readFile(join(o.certsDir, f), 'utf8');
  const poolMax = o.poolMax ?? 10;
  const cluster = await lib.startPostgres({
    roles: SERVICES.map((name) => ({ name })),
    tls: {
      certPem: await read('postgres.crt.pem'),
      keyPem: await read('postgres.key.pem'),
      clientCaPem: await read('ca.crt.pem'),
    },
    clientAuth: 'cert',
    identMap: Object.fromEntries(SERVICES.map((s) => [s, s])),
    // Every replica's pool, plus room for the checks and a restarted replica.
    maxConnections: Math.max(100, SERVICES.length * (o.replicas ?? 1) * poolMax * 2 + 20),
  });
  return {
    port: cluster.port,
    env: (name) => ({
      DATABASE_URL: `postgres://${name}@${PG_SERVER_NAME}:${String(cluster.port)}/${name}`,
      DATABASE_AUTH: 'identity',
      DATABASE_CA_FILE: join(o.certsDir, 'ca.crt.pem'),
      DATABASE_POOL_MAX: String(poolMax),
    }),
    admin: (name) => cluster.admin(name),
    stop: () => cluster.stop(),
  };
}
