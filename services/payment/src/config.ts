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

/** MAX_LATENCY_MS caps the processor's added latency, well below the stale in-progress window of the idempotency keys. */
export const MAX_LATENCY_MS = 30_000;

/**
 * PaymentConfig is the payment service's configuration, resolved once at
 * start and frozen (README.md#configuration): what every service reads
 * (ProcessConfig: HOST, OPS_PORT, LISTEN_REUSE_PORT, LOG_LEVEL,
 * IDENTITY_WAIT_SECONDS) and its own.
 */
export interface PaymentConfig extends ProcessConfig {
  /** trustDomain of this deployment; ORDER_ID defaults to its `/order`. */
  readonly trustDomain: string;
  /** port of the mTLS API. */
  readonly port: number;
  /** adminPort of the plaintext fault-injection server, always on 127.0.0.1. */
  readonly adminPort: number;
  /** dataDir holds the SQLite ledger (`payment.db`) when DATABASE_URL is unset. */
  readonly dataDir: string;
  /** database is where the ledger is: SQLite under dataDir, or PostgreSQL at DATABASE_URL (with its pool, timeout and TLS settings). */
  readonly database: DatabaseConfig;
  /** orderId is the only SPIFFE ID allowed to call the API. */
  readonly orderId: string;
  /** latencyMs is added to every processor call at start (changeable at run time). */
  readonly latencyMs: number;
  /** failureRate is the fraction of charges failing with PROCESSOR_ERROR at start (changeable at run time). */
  readonly failureRate: number;
}

/**
 * loadConfig reads the configuration from `env` once; a bad value throws a
 * ConfigError naming the variable and what it must be.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<PaymentConfig> {
  const e = new Env(env);
  const trustDomain = e.string('TRUST_DOMAIN', 'example.org');
  try {
    TrustDomain.parse(trustDomain);
  } catch (err) {
    throw new ConfigError('TRUST_DOMAIN', `must be a trust domain name such as example.org: ${message(err)}`);
  }
  const orderId = e.string('ORDER_ID', `spiffe://${trustDomain}/order`);
  try {
    SpiffeId.parse(orderId);
  } catch (err) {
    throw new ConfigError('ORDER_ID', `must be a SPIFFE ID such as spiffe://example.org/order: ${message(err)}`);
  }
  const dataDir = resolve(e.string('DATA_DIR', './.data/payment'));
  return Object.freeze({
    ...readProcessConfig(e, { opsPort: 9443 }),
    trustDomain,
    port: e.port('PORT', 8443),
    adminPort: e.port('ADMIN_PORT', 9543),
    dataDir,
    database: readDatabaseConfig(e, { dataDir, file: 'payment.db' }),
    orderId,
    latencyMs: e.int('PAYMENT_LATENCY_MS', 0, { min: 0, max: MAX_LATENCY_MS }),
    failureRate: e.number('PAYMENT_FAILURE_RATE', 0, { min: 0, max: 1 }),
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
