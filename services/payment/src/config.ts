import { resolve } from 'node:path';
import { SpiffeId, TrustDomain } from '@shop/auth';
import { ConfigError, Env } from '@shop/service-kit';

/** MAX_LATENCY_MS caps the processor's added latency, well below the stale in-progress window of the idempotency keys. */
export const MAX_LATENCY_MS = 30_000;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** PaymentConfig is the payment service's configuration, resolved once at start and frozen. */
export interface PaymentConfig {
  /** trustDomain of this deployment; ORDER_ID defaults to its `/order`. */
  readonly trustDomain: string;
  /** host the API and the ops port listen on. */
  readonly host: string;
  /** port of the mTLS API. */
  readonly port: number;
  /** opsPort of the plaintext health and metrics server. */
  readonly opsPort: number;
  /** reusePort: LISTEN_REUSE_PORT, a new instance may bind our ports before we drain (zero-downtime handover on one host). */
  readonly reusePort: boolean;
  /** adminPort of the plaintext fault-injection server, always on 127.0.0.1. */
  readonly adminPort: number;
  /** dataDir holds the SQLite ledger (`payment.db`). */
  readonly dataDir: string;
  /** orderId is the only SPIFFE ID allowed to call the API. */
  readonly orderId: string;
  /** latencyMs is added to every processor call at start (changeable at run time). */
  readonly latencyMs: number;
  /** failureRate is the fraction of charges failing with PROCESSOR_ERROR at start (changeable at run time). */
  readonly failureRate: number;
  /** logLevel of the pino logger. */
  readonly logLevel: (typeof LOG_LEVELS)[number];
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
  return Object.freeze({
    trustDomain,
    host: e.string('HOST', '127.0.0.1'),
    port: e.port('PORT', 8443),
    opsPort: e.port('OPS_PORT', 9443),
    reusePort: e.oneOf('LISTEN_REUSE_PORT', ['true', 'false'] as const, 'false') === 'true',
    adminPort: e.port('ADMIN_PORT', 9543),
    dataDir: resolve(e.string('DATA_DIR', './.data/payment')),
    orderId,
    latencyMs: e.int('PAYMENT_LATENCY_MS', 0, { min: 0, max: MAX_LATENCY_MS }),
    failureRate: e.number('PAYMENT_FAILURE_RATE', 0, { min: 0, max: 1 }),
    logLevel: e.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
