import { join, resolve } from 'node:path';
import { SpiffeId, TrustDomain } from '@shop/auth';
import { ConfigError, Env } from '@shop/service-kit';

/** InventoryConfig is the service's configuration, resolved once at start (README.md#configuration). */
export interface InventoryConfig {
  /** trustDomain is ours; any of its workloads may read stock. */
  trustDomain: string;
  host: string;
  /** port of the HTTP API (mTLS). */
  port: number;
  /** grpcPort of the gRPC API (mTLS). */
  grpcPort: number;
  /** opsPort serves health and metrics, plaintext. */
  opsPort: number;
  /** dataDir holds the SQLite database, made absolute. */
  dataDir: string;
  /** databaseFile is `inventory.db` in dataDir. */
  databaseFile: string;
  reservationTtlSeconds: number;
  /** orderId is the SPIFFE ID allowed to reserve, release and commit. */
  orderId: string;
  /** seedFile, when set, replaces the built-in catalogue on first start. */
  seedFile: string | undefined;
  logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

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
  const dataDir = resolve(e.string('DATA_DIR', './.data/inventory'));
  return Object.freeze({
    trustDomain,
    host: e.string('HOST', '127.0.0.1'),
    port: e.port('PORT', 8444),
    grpcPort: e.port('GRPC_PORT', 50051),
    opsPort: e.port('OPS_PORT', 9444),
    dataDir,
    databaseFile: join(dataDir, 'inventory.db'),
    reservationTtlSeconds: e.int('RESERVATION_TTL_SECONDS', 300, { min: 1, max: 86_400 }),
    orderId,
    seedFile: e.optional('SEED_FILE'),
    logLevel: e.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
  });
}

function parseWith<T>(variable: string, raw: string, parse: (raw: string) => T): T {
  try {
    return parse(raw);
  } catch (err) {
    throw new ConfigError(variable, (err as Error).message);
  }
}
