// The order process on service-kit's runService: the store, the upstream
// clients behind their breakers, the public API and the reconciler.
import * as grpc from '@grpc/grpc-js';
import { Agent } from 'undici';
import { authorizeId, type IdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { grpcChannelCredentials, grpcClientInterceptor } from '@shop/auth/grpc';
import { authHooks, httpUrl, listen, runService } from '@shop/service-kit';
import { buildApp } from './app.ts';
import { createInventoryGrpcClientAdapter } from './clients/inventory-grpc.ts';
import { createInventoryHttpClient } from './clients/inventory-http.ts';
import { createPaymentHttpClient } from './clients/payment-http.ts';
import type { InventoryClient, PaymentClient } from './clients/types.ts';
import { loadConfig, type OrderConfig } from './config.ts';
import { OrderService } from './orders.ts';
import { OrderStore } from './store.ts';
import { Upstreams } from './upstreams.ts';

/** Clients are order's two upstream clients, before the breakers. */
interface Clients {
  inventory: InventoryClient;
  payment: PaymentClient;
}

// mTLS in-process: each client verifies its upstream's SPIFFE ID.
function mtlsClients(config: OrderConfig, source: IdentitySource, hooks: ReturnType<typeof authHooks>): Clients {
  const inventoryCredentials = grpcChannelCredentials(source, authorizeId(config.inventoryId), {
    onHandshakeError: hooks.onHandshakeError,
  });
  const inventory =
    config.inventoryProtocol === 'grpc'
      ? createInventoryGrpcClientAdapter(
          config.inventoryGrpcTarget,
          inventoryCredentials,
          config.upstreamTimeoutMs,
          // A client span per call, and the trace context in its metadata.
          { interceptors: [grpcClientInterceptor(inventoryCredentials)] },
        )
      : createInventoryHttpClient(
          config.inventoryUrl,
          createMtlsDispatcher({
            source,
            authorize: authorizeId(config.inventoryId),
            onHandshakeError: hooks.onHandshakeError,
            onHandshake: hooks.onHandshake,
          }),
          config.upstreamTimeoutMs,
        );
  const payment = createPaymentHttpClient(
    config.paymentUrl,
    createMtlsDispatcher({
      source,
      authorize: authorizeId(config.paymentId),
      onHandshakeError: hooks.onHandshakeError,
      onHandshake: hooks.onHandshake,
    }),
    config.upstreamTimeoutMs,
  );
  return { inventory, payment };
}

// SHOP_TRANSPORT=sidecar: plaintext to the client-side sidecars on loopback
// (config.ts checked that), which verify INVENTORY_ID and PAYMENT_ID.
function sidecarClients(config: OrderConfig): Clients {
  const inventory =
    config.inventoryProtocol === 'grpc'
      ? createInventoryGrpcClientAdapter(
          config.inventoryGrpcTarget,
          grpc.credentials.createInsecure(),
          config.upstreamTimeoutMs,
        )
      : createInventoryHttpClient(config.inventoryUrl, new Agent(), config.upstreamTimeoutMs);
  const payment = createPaymentHttpClient(config.paymentUrl, new Agent(), config.upstreamTimeoutMs);
  return { inventory, payment };
}

await runService<OrderConfig, OrderStore>({
  name: 'order',
  loadConfig,
  openStore: ({ config, source, log }) =>
    OrderStore.open(config.database, { leaseMs: config.leaseMs, open: { source, log } }),
  async start({ config, log, metrics, source, store }) {
    const { inventory, payment } = source ? mtlsClients(config, source, authHooks(metrics)) : sidecarClients(config);
    const upstreams = new Upstreams(inventory, payment, {
      timeoutMs: config.upstreamTimeoutMs,
      resetTimeoutMs: config.breakerResetMs,
      metrics,
      log,
      breakers: config.breakers === 'on',
    });
    const orders = new OrderService(store, upstreams, log, metrics);
    const app = await buildApp({ orders, metrics, log });
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

    return {
      steps: [
        {
          name: 'stop reconciler',
          run: () => {
            clearInterval(reconciler);
            return Promise.resolve();
          },
        },
        { name: 'drain API', run: () => app.close() },
        { name: 'close upstreams', run: () => upstreams.close() },
      ],
      info: {
        api: httpUrl(app, config.host),
        inventory: config.inventoryProtocol,
        upstreams:
          config.inventoryProtocol === 'grpc'
            ? [config.inventoryGrpcTarget, config.paymentUrl]
            : [config.inventoryUrl, config.paymentUrl],
      },
    };
  },
});
