// The order process on service-kit's runService: the store, the upstream
// clients behind their breakers, the public API and the reconciler.
import { authorizeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { grpcChannelCredentials, grpcClientInterceptor } from '@shop/auth/grpc';
import { authHooks, httpUrl, listen, runService } from '@shop/service-kit';
import { buildApp } from './app.ts';
import { createInventoryGrpcClientAdapter } from './clients/inventory-grpc.ts';
import { createInventoryHttpClient } from './clients/inventory-http.ts';
import { createPaymentHttpClient } from './clients/payment-http.ts';
import { loadConfig, type OrderConfig } from './config.ts';
import { OrderService } from './orders.ts';
import { OrderStore } from './store.ts';
import { Upstreams } from './upstreams.ts';

await runService<OrderConfig, OrderStore>({
  name: 'order',
  loadConfig,
  openStore: ({ config, source, log }) =>
    OrderStore.open(config.database, { leaseMs: config.leaseMs, open: { source, log } }),
  async start({ config, log, metrics, source, store }) {
    const hooks = authHooks(metrics);
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
      info: { api: httpUrl(app, config.host), inventory: config.inventoryProtocol },
    };
  },
});
