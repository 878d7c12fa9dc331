// The payment process on service-kit's runService: the ledger, the mTLS API
// and the loopback admin port.
import { databaseWhere, httpUrl, listen, runService } from '@shop/service-kit';
import { ADMIN_HOST, buildAdminApp } from './admin.ts';
import { buildApp } from './app.ts';
import { loadConfig, type PaymentConfig } from './config.ts';
import { PaymentService } from './payments.ts';
import { CardProcessor } from './processor.ts';
import { PaymentStore } from './store.ts';

await runService<PaymentConfig, PaymentStore>({
  name: 'payment',
  loadConfig,
  openStore: ({ config, source, log }) => PaymentStore.open(config.database, { source, log }),
  async start({ config, log, metrics, source, store }) {
    const processor = new CardProcessor({ faults: { latencyMs: config.latencyMs, failureRate: config.failureRate } });
    const payments = new PaymentService(store, processor);
    const app = await buildApp({
      ...(source ? { source } : { transport: 'sidecar' as const }),
      config,
      payments,
      metrics,
      log,
    });
    log.info(
      { database: databaseWhere(config.database), allow: config.orderId, faults: processor.faults },
      'payment ledger open',
    );
    await listen(app, { host: config.host, port: config.port, reusePort: config.reusePort });
    const admin = buildAdminApp(processor, metrics, log);
    await listen(admin, { host: ADMIN_HOST, port: config.adminPort, reusePort: config.reusePort });
    return {
      steps: [
        { name: 'drain API', run: () => app.close() },
        { name: 'stop admin server', run: () => admin.close() },
      ],
      info: { api: httpUrl(app, config.host, source ? 'https' : 'http'), admin: httpUrl(admin, ADMIN_HOST) },
    };
  },
});
