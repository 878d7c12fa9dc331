// The payment process: identity, ledger, mTLS API, ops and admin ports, graceful shutdown.
import { createIdentitySource } from '@shop/auth';
import {
  createLogger,
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
import { ADMIN_HOST, buildAdminApp } from './admin.ts';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { CardProcessor } from './processor.ts';
import { PaymentStore } from './store.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const metrics = createServiceMetrics('payment');
  // The fastify logger exists only once the app is built, and the app needs the identity first.
  const log = createLogger('payment', config.logLevel);
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
  log.info({ ops: ops.addresses() }, 'ops port open; waiting for the identity');
  await waitForIdentity(source, { log });
  const store = PaymentStore.open(config.dataDir);
  checks.store = () => store.isOpen;
  const processor = new CardProcessor({ faults: { latencyMs: config.latencyMs, failureRate: config.failureRate } });

  const app = await buildApp({ config, source, store, processor, metrics });
  app.log.info({ dataDir: config.dataDir, allow: config.orderId, faults: processor.faults }, 'payment ledger open');

  await listen(app, { host: config.host, port: config.port, reusePort: config.reusePort });
  const admin = buildAdminApp(processor, metrics, loggerOptions('payment', config.logLevel));
  await listen(admin, { host: ADMIN_HOST, port: config.adminPort, reusePort: config.reusePort });
  startup.open();
  app.log.info(
    { api: app.addresses(), ops: ops.addresses(), admin: admin.addresses() },
    'payment listening (API over mTLS; ops and admin plaintext)',
  );

  onSignals(
    [
      { name: 'stop API and drain in-flight requests', run: () => app.close() },
      { name: 'stop admin server', run: () => admin.close() },
      {
        name: 'close ledger',
        run: () => {
          store.close();
          return Promise.resolve();
        },
      },
      { name: 'close identity source', run: () => source.close() },
      { name: 'stop ops server', run: () => ops.close() },
    ],
    app.log,
  );
}

main().catch((err: unknown) => {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  const what = err instanceof Error ? err.message : String(err);
  process.stderr.write(`payment: failed to start: ${typeof code === 'string' ? `${code}: ` : ''}${what}\n`);
  process.exit(1);
});
