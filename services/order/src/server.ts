// The order service process: identity, store, upstream clients with
// breakers, the public API, the reconciler, the ops port, and a graceful stop.
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { authorizeId, createIdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { grpcChannelCredentials } from '@shop/auth/grpc';
import {
  authHooks,
  createServiceMetrics,
  loggerOptions,
  observeIdentity,
  onSignals,
  startOpsServer,
  identityCheck,
  listen,
  StartupGate,
  waitForIdentity,
  type ReadinessCheck,
} from '@shop/service-kit';
import { buildApp } from './app.ts';
import { createInventoryGrpcClientAdapter } from './clients/inventory-grpc.ts';
import { createInventoryHttpClient } from './clients/inventory-http.ts';
import { createPaymentHttpClient } from './clients/payment-http.ts';
import { readConfig } from './config.ts';
import { OrderService } from './orders.ts';
import { OrderStore } from './store.ts';
import { Upstreams } from './upstreams.ts';

const log = pino(loggerOptions('order'));

async function main(): Promise<void> {
  const config = readConfig();
  const metrics = createServiceMetrics('order');
  const source = await createIdentitySource({
    wait: false,
    log: (line) => {
      log.info(line);
    },
  });
  observeIdentity(source, metrics, log);
  // Ops port first: until the identity arrives, /health/ready says why not.
  const startup = new StartupGate();
  const checks: Record<string, ReadinessCheck> = { identity: identityCheck(source), started: startup.check };
  const ops = await startOpsServer({
    reusePort: config.reusePort,
    host: config.host,
    port: config.opsPort,
    metrics,
    checks,
  });
  log.info(
    { ops: `http://${config.host}:${String((ops.server.address() as AddressInfo).port)}` },
    'ops port open; waiting for the identity',
  );
  await waitForIdentity(source, { log });
  const hooks = authHooks(metrics);
  const store = new OrderStore(config.dataDir);
  checks.store = () => store.isOpen;

  const inventory =
    config.inventoryProtocol === 'grpc'
      ? createInventoryGrpcClientAdapter(
          config.inventoryGrpcTarget,
          grpcChannelCredentials(source, authorizeId(config.inventoryId), { onHandshakeError: hooks.onHandshakeError }),
          config.upstreamTimeoutMs,
        )
      : createInventoryHttpClient(
          config.inventoryUrl,
          createMtlsDispatcher({
            source,
            authorize: authorizeId(config.inventoryId),
            onHandshakeError: hooks.onHandshakeError,
          }),
          config.upstreamTimeoutMs,
        );
  const payment = createPaymentHttpClient(
    config.paymentUrl,
    createMtlsDispatcher({
      source,
      authorize: authorizeId(config.paymentId),
      onHandshakeError: hooks.onHandshakeError,
    }),
    config.upstreamTimeoutMs,
  );
  const upstreams = new Upstreams(inventory, payment, {
    timeoutMs: config.upstreamTimeoutMs,
    resetTimeoutMs: config.breakerResetMs,
    metrics,
    log,
    breakers: config.breakers === 'on',
  });
  const orders = new OrderService(store, upstreams, log, metrics);
  const app = await buildApp({ orders, metrics, logger: loggerOptions('order') });
  await listen(app, { host: config.host, port: config.port, reusePort: config.reusePort });

  let reconciling = false;
  const reconciler = setInterval(() => {
    if (reconciling) return;
    reconciling = true;
    void orders
      .reconcileOnce(config.pendingGraceMs)
      .catch((err: unknown) => {
        log.error({ err }, 'reconciler failed');
      })
      .finally(() => {
        reconciling = false;
      });
  }, config.reconcileIntervalMs);

  startup.open();
  log.info(
    {
      api: `http://${config.host}:${config.port}`,
      ops: `http://${config.host}:${config.opsPort}`,
      inventory: config.inventoryProtocol,
    },
    'order service ready',
  );

  onSignals(
    [
      {
        name: 'stop reconciler',
        run: () => {
          clearInterval(reconciler);
          return Promise.resolve();
        },
      },
      { name: 'drain API', run: () => app.close() },
      { name: 'close upstreams', run: () => upstreams.close() },
      { name: 'close ops port', run: () => ops.close() },
      {
        name: 'close store',
        run: () => {
          store.close();
          return Promise.resolve();
        },
      },
      { name: 'close identity source', run: () => source.close() },
    ],
    log,
  );
}

main().catch((err: unknown) => {
  log.fatal(
    { err: { code: (err as { code?: string }).code, message: (err as Error).message } },
    'order service failed to start',
  );
  process.exit(1);
});
