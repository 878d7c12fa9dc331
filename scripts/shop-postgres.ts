// One throwaway PostgreSQL for the shop harness (`npm start -- --db
// postgres`, the scale suite, the bench): @shop/pg-testing's cluster with
// TLS, a server certificate from the shop's development CA (or, with
// --spiffe, from SPIRE: startShopPostgresOnSpire), and one role and one
// database per service. Each service logs in with its own certificate
// (Postgres `cert` authentication; the certificate's subject CN, which
// `spiffe-auth dev-certs` sets to the service name, is mapped to the role
// of the same name by pg_ident.conf), so no service can open another's
// database.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
    reloadTls(tls: { certPem?: string; keyPem?: string; clientCaPem?: string }): Promise<void>;
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

/** SpireForPostgres is what the SPIFFE-mode database needs of the SPIRE server: its bundle, and a certificate for itself. */
export interface SpireForPostgres {
  readonly trustDomain: string;
  /** bundlePem is the server's current X.509 bundle (every CA in force, PEM). */
  bundlePem(): Promise<string>;
  /** cli runs a spire-server command against the server's API socket (here `x509 mint`). */
  cli(args: string[]): Promise<string>;
}

/** SpiffeShopPostgres is the shop's database under SPIRE, which follows SPIRE's CA. */
export interface SpiffeShopPostgres extends ShopPostgres {
  /** bundleFile is the CA bundle the services verify the server with (DATABASE_CA_FILE), rewritten on every change. */
  readonly bundleFile: string;
  /** refresh checks SPIRE's bundle and the server's certificate now (the poller does it every pollMs); true when something was reloaded. */
  refresh(): Promise<boolean>;
  /** reloads counts the TLS reloads since start (a new bundle or a renewed server certificate). */
  readonly reloads: number;
}

/** POSTGRES_SPIFFE_PATH is the path of the database server's own SPIFFE ID in the shop's trust domain. */
export const POSTGRES_SPIFFE_PATH = '/postgres';

/**
 * startShopPostgresOnSpire starts the database of `npm start -- --spiffe --db
 * postgres`: its client CA (`ssl_ca_file`) is SPIRE's trust bundle, and its
 * own certificate an X509-SVID minted by SPIRE for spiffe://<td>/postgres
 * with the DNS name the services connect to. The services log in with their
 * X509-SVIDs from their agents (DATABASE_AUTH=identity); SPIRE puts an
 * entry's first DNS name, the service name in spire/entries.json, into the
 * SVID's subject CN, which pg_ident.conf maps to the role of that name.
 * Every `pollMs` the bundle is fetched again: a change (a CA prepared,
 * activated or removed) is written to the server's ssl_ca_file and to
 * `bundleFile`, and PostgreSQL reloads (`pg_ctl reload`, open connections
 * kept). The server's certificate is minted again at half its lifetime.
 */
export async function startShopPostgresOnSpire(o: {
  spire: SpireForPostgres;
  /** poolMax is each service's DATABASE_POOL_MAX. */
  poolMax?: number;
  /** replicas is the largest replica count of any service, to size max_connections. */
  replicas?: number;
  /** pollMs is how often SPIRE's bundle is checked. Default: 5000. */
  pollMs?: number;
  /** serverTtlSeconds is the lifetime of the server's minted certificate. Default: 3600. */
  serverTtlSeconds?: number;
}): Promise<SpiffeShopPostgres> {
  const lib = await pgTesting();
  const poolMax = o.poolMax ?? 10;
  const ttl = o.serverTtlSeconds ?? 3600;
  // Short, private, outside any checkout: the minted key lives here briefly.
  const dir = await mkdtemp('/tmp/shop-pg-spiffe-');
  const bundleFile = join(dir, 'bundle.pem');
  const mint = async (): Promise<{ certPem: string; keyPem: string; renewAt: number }> => {
    const out = join(dir, 'mint');
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { mode: 0o700 });
    const id = `spiffe://${o.spire.trustDomain}${POSTGRES_SPIFFE_PATH}`;
    await o.spire.cli([
      'x509',
      'mint',
      '-spiffeID',
      id,
      '-dns',
      PG_SERVER_NAME,
      '-ttl',
      `${String(ttl)}s`,
      '-write',
      out,
    ]);
    const certPem = await readFile(join(out, 'svid.pem'), 'utf8');
    const keyPem = await readFile(join(out, 'key.pem'), 'utf8');
    await rm(out, { recursive: true, force: true });
    return { certPem, keyPem, renewAt: Date.now() + (ttl * 1000) / 2 };
  };
  // PostgreSQL reads a CA file only with one certificate per PEM block, each on its own lines.
  const normal = (pem: string): string => `${pem.trim()}\n`;
  let bundle = normal(await o.spire.bundlePem());
  let server = await mint();
  await writeFile(bundleFile, bundle);
  let cluster: Awaited<ReturnType<PgTesting['startPostgres']>>;
  try {
    cluster = await lib.startPostgres({
      roles: SERVICES.map((name) => ({ name })),
      tls: { certPem: server.certPem, keyPem: server.keyPem, clientCaPem: bundle },
      clientAuth: 'cert',
      identMap: Object.fromEntries(SERVICES.map((s) => [s, s])),
      maxConnections: Math.max(100, SERVICES.length * (o.replicas ?? 1) * poolMax * 2 + 20),
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let reloads = 0;
  let stopped = false;
  let running: Promise<boolean> | undefined;
  const check = async (): Promise<boolean> => {
    const now = normal(await o.spire.bundlePem());
    const tls: { certPem?: string; keyPem?: string; clientCaPem?: string } = {};
    if (now !== bundle) tls.clientCaPem = now;
    let renewed: typeof server | undefined;
    if (Date.now() >= server.renewAt) {
      renewed = await mint();
      tls.certPem = renewed.certPem;
      tls.keyPem = renewed.keyPem;
    }
    if (Object.keys(tls).length === 0) return false;
    // The services' file first: a server certificate from a new CA must already verify.
    if (tls.clientCaPem !== undefined) await writeFile(bundleFile, now);
    await cluster.reloadTls(tls);
    bundle = now;
    if (renewed) server = renewed;
    reloads++;
    return true;
  };
  const refresh = (): Promise<boolean> => {
    // One check at a time: the poller and a caller share the one in flight.
    running ??= check().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped)
      refresh().catch((err: unknown) => {
        process.stderr.write(
          `shop-postgres: following SPIRE's bundle failed (will retry): ${(err as Error).message}\n`,
        );
      });
  }, o.pollMs ?? 5000);
  timer.unref();
  return {
    port: cluster.port,
    bundleFile,
    get reloads() {
      return reloads;
    },
    refresh,
    env: (name) => ({
      DATABASE_URL: `postgres://${name}@${PG_SERVER_NAME}:${String(cluster.port)}/${name}`,
      DATABASE_AUTH: 'identity',
      DATABASE_CA_FILE: bundleFile,
      DATABASE_POOL_MAX: String(poolMax),
    }),
    admin: (name) => cluster.admin(name),
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
