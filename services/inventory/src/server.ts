// The inventory process: identity, store, HTTP and gRPC APIs over mTLS, the
// ops port, and an orderly shutdown on SIGINT/SIGTERM.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createIdentitySource, type IdentitySource } from '@shop/auth';
import {
  createServiceMetrics,
  loggerOptions,
  observeIdentity,
  onSignals,
  runSteps,
  startOpsServer,
  type ShutdownStep,
  identityCheck,
  listen,
  StartupGate,
  waitForIdentity,
  type ReadinessCheck,
} from '@shop/service-kit';
import { buildApp } from './app.ts';
import { loadConfig, type InventoryConfig } from './config.ts';
import { startGrpcServer, type InventoryGrpcServer } from './grpc.ts';
import { DEFAULT_CATALOGUE, loadSeedFile } from './seed.ts';
import { InventoryStore } from './store.ts';

let config: Readonly<InventoryConfig>;
try {
  config = loadConfig();
} catch (err) {
  process.stderr.write(`inventory: ${(err as Error).message}\n`);
  process.exit(1);
}

const log = pino(loggerOptions('inventory', config.logLevel));
const metrics = createServiceMetrics('inventory');
const running: {
  source?: IdentitySource;
  store?: InventoryStore;
  app?: FastifyInstance;
  grpc?: InventoryGrpcServer;
  ops?: FastifyInstance;
} = {};

// Stop taking requests first, let in-flight ones finish, then close what
// they used; the ops port goes last so probes see the drain.
const steps: ShutdownStep[] = [
  { name: 'http', run: async () => running.app?.close() },
  { name: 'grpc', run: async () => running.grpc?.close() },
  {
    name: 'store',
    run: () => {
      running.store?.close();
      return Promise.resolve();
    },
  },
  { name: 'identity', run: async () => running.source?.close() },
  { name: 'ops', run: async () => running.ops?.close() },
];
const shutdown = onSignals(steps, log);

try {
  const seed = config.seedFile ? loadSeedFile(config.seedFile) : DEFAULT_CATALOGUE;
  const source = await createIdentitySource({
    wait: false,
    log: (message) => {
      log.info({ identity: message }, 'identity source chosen');
    },
  });
  running.source = source;
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
  running.ops = ops;
  const bound = (server: FastifyInstance): number => (server.server.address() as AddressInfo).port;
  log.info({ ops: `http://${config.host}:${bound(ops)}` }, 'ops port open; waiting for the identity');
  await waitForIdentity(source, { log });

  const store = InventoryStore.open({
    file: config.databaseFile,
    reservationTtlSeconds: config.reservationTtlSeconds,
    seed,
  });
  running.store = store;
  checks.store = () => store.isOpen;
  // Expired reservations stop counting the moment they expire; the sweep
  // only makes their status say so.
  const sweepMs = Math.min(30_000, Math.max(1000, (config.reservationTtlSeconds * 1000) / 4));
  store.startSweeper(sweepMs, (count, err) => {
    if (err) log.error({ err }, 'sweeping expired reservations failed');
    else if (count > 0) log.info({ count }, 'expired reservations swept');
  });

  const deps = {
    store,
    source,
    metrics,
    orderId: config.orderId,
    partnerStockReaders: config.partnerStockReaders,
    log,
  };
  const app = await buildApp(deps);
  running.app = app;
  await listen(app, { host: config.host, port: config.port, reusePort: config.reusePort });
  const grpc = await startGrpcServer({
    ...deps,
    host: config.host,
    port: config.grpcPort,
    reusePort: config.reusePort,
  });
  running.grpc = grpc;
  startup.open();
  log.info(
    {
      spiffeId: source.getX509Svid().id.toString(),
      http: `https://${config.host}:${bound(app)}`,
      grpc: `${config.host}:${grpc.port}`,
      ops: `http://${config.host}:${bound(ops)}`,
      database: config.databaseFile,
      orderId: config.orderId,
    },
    'inventory started',
  );
} catch (err) {
  // A signal during start-up closed what the start was waiting on; its handler exits.
  if (!shutdown.stopping) {
    const e = err as Error & { code?: string };
    log.fatal({ err: { code: e.code, message: e.message } }, 'inventory failed to start');
    await runSteps(steps, log);
    process.exit(1);
  }
}
