import { resolve } from 'node:path';
import {
  Env,
  readDatabaseConfig,
  readProcessConfig,
  requireLoopbackUrl,
  type DatabaseConfig,
  type ProcessConfig,
} from '@shop/service-kit';

/**
 * OrderConfig is the order service's configuration, read once from the
 * environment and frozen (README.md#configuration): what every service reads
 * (ProcessConfig: HOST, OPS_PORT, LISTEN_REUSE_PORT, LOG_LEVEL,
 * IDENTITY_WAIT_SECONDS) and its own.
 */
export interface OrderConfig extends ProcessConfig {
  trustDomain: string;
  /** port of the public API (plain HTTP). */
  port: number;
  /** dataDir holds the SQLite database (`order.db`) when DATABASE_URL is unset. */
  dataDir: string;
  /** database is where orders are: SQLite in dataDir, or PostgreSQL at DATABASE_URL (with its pool, timeout and TLS settings). */
  database: DatabaseConfig;
  /** leaseMs is how long a replica's claim on an order lasts unless renewed; a replica that dies leaves its orders to the others after it (ORDER_LEASE_MS). */
  leaseMs: number;
  inventoryUrl: string;
  inventoryGrpcTarget: string;
  inventoryProtocol: 'grpc' | 'http';
  paymentUrl: string;
  inventoryId: string;
  paymentId: string;
  upstreamTimeoutMs: number;
  breakerResetMs: number;
  reconcileIntervalMs: number;
  /** pendingGraceMs is how long an order may sit in a stage before the reconciler takes it over. */
  pendingGraceMs: number;
  /** breakers "off" calls upstreams directly (retries and timeouts stay): for measuring what the breakers cost. */
  breakers: 'on' | 'off';
}

/**
 * loadConfig reads and validates the environment; a bad variable is named in
 * the error. With SHOP_TRANSPORT=sidecar the upstreams are the local
 * client-side sidecars: INVENTORY_URL and PAYMENT_URL are http: URLs and,
 * with INVENTORY_GRPC_TARGET, must be on loopback (SVC_ERR_SIDECAR_NOT_LOOPBACK).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<OrderConfig> {
  const e = new Env(env);
  const trustDomain = e.string('TRUST_DOMAIN', 'example.org');
  const dataDir = e.string('DATA_DIR', './.data/order');
  const processConfig = readProcessConfig(e, { opsPort: 9080 });
  const sidecar = processConfig.transport === 'sidecar';
  const scheme = sidecar ? ['http:'] : ['https:'];
  const upstreams = {
    inventoryUrl: e.url('INVENTORY_URL', sidecar ? 'http://127.0.0.1:8444' : 'https://127.0.0.1:8444', scheme),
    inventoryGrpcTarget: e.hostPort('INVENTORY_GRPC_TARGET', '127.0.0.1:50051'),
    paymentUrl: e.url('PAYMENT_URL', sidecar ? 'http://127.0.0.1:8443' : 'https://127.0.0.1:8443', scheme),
  };
  if (sidecar) {
    const what = 'the upstream is called in plaintext, through the client-side sidecar on this machine';
    requireLoopbackUrl('INVENTORY_URL', upstreams.inventoryUrl, what);
    requireLoopbackUrl('INVENTORY_GRPC_TARGET', upstreams.inventoryGrpcTarget, what);
    requireLoopbackUrl('PAYMENT_URL', upstreams.paymentUrl, what);
  }
  return Object.freeze({
    ...processConfig,
    trustDomain,
    port: e.port('PORT', 8080),
    dataDir,
    database: readDatabaseConfig(e, { dataDir: resolve(dataDir), file: 'order.db' }),
    leaseMs: e.int('ORDER_LEASE_MS', 15_000, { min: 100, max: 3_600_000 }),
    ...upstreams,
    inventoryProtocol: e.oneOf('INVENTORY_PROTOCOL', ['grpc', 'http'] as const, 'grpc'),
    inventoryId: e.string('INVENTORY_ID', `spiffe://${trustDomain}/inventory`),
    paymentId: e.string('PAYMENT_ID', `spiffe://${trustDomain}/payment`),
    upstreamTimeoutMs: e.int('UPSTREAM_TIMEOUT_MS', 1000, { min: 50, max: 60_000 }),
    breakerResetMs: e.int('BREAKER_RESET_MS', 3000, { min: 100, max: 300_000 }),
    reconcileIntervalMs: e.int('RECONCILE_INTERVAL_MS', 2000, { min: 50, max: 600_000 }),
    pendingGraceMs: e.int('PENDING_GRACE_MS', 3000, { min: 0, max: 3_600_000 }),
    breakers: e.oneOf('BREAKERS', ['on', 'off'] as const, 'on'),
  });
}
