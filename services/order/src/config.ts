import { Env } from '@shop/service-kit';

/** OrderConfig is the order service's configuration, read once from the environment. */
export interface OrderConfig {
  trustDomain: string;
  host: string;
  port: number;
  opsPort: number;
  /** reusePort: LISTEN_REUSE_PORT, a new instance may bind our ports before we drain (zero-downtime handover on one host). */
  reusePort: boolean;
  dataDir: string;
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

/** readConfig reads and validates the environment; a bad variable is named in the error. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Readonly<OrderConfig> {
  const e = new Env(env);
  const trustDomain = e.string('TRUST_DOMAIN', 'example.org');
  return Object.freeze({
    trustDomain,
    host: e.string('HOST', '127.0.0.1'),
    port: e.port('PORT', 8080),
    opsPort: e.port('OPS_PORT', 9080),
    reusePort: e.oneOf('LISTEN_REUSE_PORT', ['true', 'false'] as const, 'false') === 'true',
    dataDir: e.string('DATA_DIR', './.data/order'),
    inventoryUrl: e.url('INVENTORY_URL', 'https://127.0.0.1:8444'),
    inventoryGrpcTarget: e.hostPort('INVENTORY_GRPC_TARGET', '127.0.0.1:50051'),
    inventoryProtocol: e.oneOf('INVENTORY_PROTOCOL', ['grpc', 'http'] as const, 'grpc'),
    paymentUrl: e.url('PAYMENT_URL', 'https://127.0.0.1:8443'),
    inventoryId: e.string('INVENTORY_ID', `spiffe://${trustDomain}/inventory`),
    paymentId: e.string('PAYMENT_ID', `spiffe://${trustDomain}/payment`),
    upstreamTimeoutMs: e.int('UPSTREAM_TIMEOUT_MS', 1000, { min: 50, max: 60_000 }),
    breakerResetMs: e.int('BREAKER_RESET_MS', 3000, { min: 100, max: 300_000 }),
    reconcileIntervalMs: e.int('RECONCILE_INTERVAL_MS', 2000, { min: 50, max: 600_000 }),
    pendingGraceMs: e.int('PENDING_GRACE_MS', 3000, { min: 0, max: 3_600_000 }),
    breakers: e.oneOf('BREAKERS', ['on', 'off'] as const, 'on'),
  });
}
