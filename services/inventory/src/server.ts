// The inventory process on service-kit's runService: the store, the HTTP and
// gRPC APIs over mTLS, and the reservation sweeper.
import { databaseWhere, httpUrl, listen, runService } from '@shop/service-kit';
import { buildApp } from './app.ts';
import { loadConfig, type InventoryConfig } from './config.ts';
import { startGrpcServer } from './grpc.ts';
import { DEFAULT_CATALOGUE, loadSeedFile } from './seed.ts';
import { StockService } from './stock.ts';
import { InventoryStore } from './store.ts';

await runService<InventoryConfig, InventoryStore>({
  name: 'inventory',
  loadConfig,
  openStore: ({ config, source, log }) =>
    InventoryStore.open({
      database: config.database,
      seed: config.seedFile ? loadSeedFile(config.seedFile) : DEFAULT_CATALOGUE,
      open: { source, log },
    }),
  async start({ config, log, metrics, source, store }) {
    const stock = new StockService(store, { reservationTtlSeconds: config.reservationTtlSeconds });
    const sweepMs = Math.min(30_000, Math.max(1000, (config.reservationTtlSeconds * 1000) / 4));
    stock.startSweeper(sweepMs, (count, err) => {
      if (err) log.error({ err }, 'sweeping expired reservations failed');
      else if (count > 0) log.info({ count }, 'expired reservations swept');
    });
    const deps = {
      ...(source ? { source } : { transport: 'sidecar' as const }),
      stock,
      metrics,
      orderId: config.orderId,
      partnerStockReaders: config.partnerStockReaders,
      log,
    };
    const app = await buildApp(deps);
    await listen(app, { host: config.host, port: config.port, reusePort: config.reusePort });
    const grpc = await startGrpcServer({
      ...deps,
      host: config.host,
      port: config.grpcPort,
      reusePort: config.reusePort,
    });
    return {
      // Stop taking requests first and let in-flight ones finish; runService then closes the store.
      steps: [
        { name: 'drain HTTP API', run: () => app.close() },
        { name: 'drain gRPC API', run: () => grpc.close() },
        {
          name: 'stop sweeper',
          run: () => stock.close(),
        },
      ],
      info: {
        http: httpUrl(app, config.host, source ? 'https' : 'http'),
        grpc: `${config.host}:${String(grpc.port)}`,
        database: databaseWhere(config.database),
        orderId: config.orderId,
      },
    };
  },
});
