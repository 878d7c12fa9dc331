import { resolve } from 'node:path';
import { SpiffeId, TrustDomain } from '@shop/auth';
import {
  ConfigError,
  Env,
  readDatabaseConfig,
  readProcessConfig,
  type DatabaseConfig,
  type ProcessConfig,
} from '@shop/service-kit';

/**
 * InventoryConfig is the service's configuration, resolved once at start
 * (README.md#configuration): what every service reads (ProcessConfig: HOST,
 * OPS_PORT, LISTEN_REUSE_PORT, LOG_LEVEL, IDENTITY_WAIT_SECONDS) and its own.
 */
export interface InventoryConfig extends ProcessConfig {
  /** trustDomain is ours; any of its workloads may read stock. */
  trustDomain: string;
  /** port of the HTTP API (mTLS). */
  port: number;
  /** grpcPort of the gRPC API (mTLS). */
  grpcPort: number;
  /** dataDir holds the SQLite database (`inventory.db`) when DATABASE_URL is unset, made absolute. */
  dataDir: string;
  /** database is where the store is: SQLite in dataDir, or PostgreSQL at DATABASE_URL (with its pool, timeout and TLS settings). */
  database: DatabaseConfig;
  reservationTtlSeconds: number;
  /** orderId is the SPIFFE ID allowed to reserve, release and commit. */
  orderId: string;
  /** partnerStockReaders are SPIFFE IDs of other trust domains that may also read stock, and nothing else. */
  partnerStockReaders: readonly string[];
  /** seedFile, when set, replaces the built-in catalogue on first start. */
  seedFile: string | undefined;
}

/**
 * loadConfig reads the configuration from `env` (default: process.env) and
 * freezes it; a bad value throws a ConfigError naming the variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<InventoryConfig> {
  const e = new Env(env);
  const trustDomain = parseWith(
    'TRUST_DOMAIN',
    e.string('TRUST_DOMAIN', 'example.org'),
    (v) => TrustDomain.parse(v).name,
  );
  const orderId = parseWith('ORDER_ID', e.string('ORDER_ID', `spiffe://${trustDomain}/order`), (v) =>
    SpiffeId.parse(v).toString(),
  );
  const partnerStockReaders = parseWith(
    'PARTNER_STOCK_READERS',
    e.string('PARTNER_STOCK_READERS', ''),
    parseWorkloadIds,
  );
  const dataDir = resolve(e.string('DATA_DIR', './.data/inventory'));
  return Object.freeze({
    ...readProcessConfig(e, { opsPort: 9444 }),
    trustDomain,
    port: e.port('PORT', 8444),
    grpcPort: e.port('GRPC_PORT', 50051),
    dataDir,
    database: readDatabaseConfig(e, { dataDir, file: 'inventory.db' }),
    reservationTtlSeconds: e.int('RESERVATION_TTL_SECONDS', 300, { min: 1, max: 86_400 }),
    orderId,
    partnerStockReaders,
    seedFile: e.optional('SEED_FILE'),
  });
}

// A comma-separated list of workload IDs; blanks around commas and empty
// items are ignored, duplicates kept once.
function parseWorkloadIds(raw: string): readonly string[] {
  const ids = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => {
      const id = SpiffeId.parse(item);
      // A trust domain's own ID is carried by no SVID, so it would match nobody.
      if (id.isRoot) throw new Error(`${JSON.stringify(item)} must name a workload, not a whole trust domain`);
      return id.toString();
    });
  return Object.freeze([...new Set(ids)]);
}

function parseWith<T>(variable: string, raw: string, parse: (raw: string) => T): T {
  try {
    return parse(raw);
  } catch (err) {
    throw new ConfigError(variable, (err as Error).message);
  }
}
