// The start-up and shutdown order of every shop service, written once:
// ops port (not ready) → identity → store → the service's listeners → ready;
// on SIGINT/SIGTERM the service's own steps (drain its listeners, …), then
// the store, the identity, and the ops port last, so probes see the drain.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { createIdentitySource, type IdentitySource } from '@shop/auth';
import type { ProcessConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { createServiceMetrics, observeIdentity, type ServiceMetrics } from './metrics.ts';
import { IdentityHistory } from './identity-view.ts';
import { identityCheck, startOpsServer, type ReadinessCheck } from './ops-server.ts';
import { onSignals, runSteps, type ShutdownStep } from './shutdown.ts';
import { StartupGate, waitForIdentity } from './startup.ts';
import { startTracing, type Tracing } from './tracing.ts';
import { SIDECAR_AUTHORIZATION, sidecarIdentityView } from './transport.ts';

/**
 * ServiceStore is what runService needs of a service's store: the `store`
 * readiness check (`health()` where the store has it — its database open and
 * answering — else `isOpen`) and how to close it.
 */
export interface ServiceStore {
  readonly isOpen: boolean;
  health?(): { ok: boolean; reason?: string };
  close(): void | Promise<void>;
}

/** ServiceContext is what a service's parts are built from: its config, logger, metrics, a ready identity and its open store. */
export interface ServiceContext<C extends ProcessConfig, S extends ServiceStore> {
  config: C;
  /** log is the process's one logger; give it to fastify as `loggerInstance`. */
  log: PinoLogger;
  metrics: ServiceMetrics;
  /**
   * source has its first identity; undefined exactly when
   * `config.transport` is "sidecar" (the process holds no identity).
   */
  source: IdentitySource | undefined;
  store: S;
}

/** StartedService is what a service's `start` reports. */
export interface StartedService {
  /**
   * steps stop what `start` started, in order (e.g. stop a timer, drain the
   * API, close upstream clients); runService then closes the store, the
   * identity and the ops port.
   */
  steps: ShutdownStep[];
  /** info goes on the "<name> started" log line (e.g. the listeners' addresses). */
  info: Record<string, unknown>;
}

/** ServiceParts are what a service hands runService. */
export interface ServiceParts<C extends ProcessConfig, S extends ServiceStore> {
  /** name of the service: the `service` of every log line and metric, and the start of its start-up log lines. */
  name: string;
  /** loadConfig reads the environment once; a ConfigError stops the process with exit code 1 naming the variable. */
  loadConfig: () => C;
  /** openStore opens the service's store, once the identity is there (the identity may be its database credential). */
  openStore: (ctx: Omit<ServiceContext<C, S>, 'store'>) => S | Promise<S>;
  /** start builds the service's apps on the store and starts listening. */
  start: (ctx: ServiceContext<C, S>) => Promise<StartedService>;
}

/** RunningService is a started service, for a caller that wants to stop it without a signal. */
export interface RunningService {
  /** stop runs the shutdown steps (the service's, then store, identity, ops port); true when all succeeded. */
  stop(): Promise<boolean>;
}

/** httpUrl is the address of a listening fastify instance as a URL, e.g. "https://127.0.0.1:8444". */
export function httpUrl(app: FastifyInstance, host: string, scheme: 'http' | 'https' = 'http'): string {
  return `${scheme}://${host}:${String((app.server.address() as AddressInfo).port)}`;
}

function errorFields(err: unknown): { code: string | undefined; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return {
    code: typeof code === 'string' ? code : undefined,
    message: err instanceof Error ? err.message : String(err),
  };
}

/**
 * runService runs a service process. In order: read the config (a bad one
 * exits 1 at once), open the ops port (live, not ready), get the identity
 * from `createIdentitySource({ wait: false })` — /health/ready says why not
 * while it waits, and IDENTITY_WAIT_SECONDS bounds the wait — open the store,
 * run the service's `start`, then mark it ready and log "<name> started".
 * SIGINT/SIGTERM run the shutdown steps and exit 0 (1 if a step failed); a
 * failed start logs "<name> failed to start", writes
 * "<name>: failed to start: CODE: message" to stderr, closes what was opened
 * and exits 1. With SHOP_TRANSPORT=sidecar there is no identity source:
 * no identity check, `/identity` says mode "sidecar", and `source` is
 * undefined in the ServiceContext.
 */
export async function runService<C extends ProcessConfig, S extends ServiceStore>(
  parts: ServiceParts<C, S>,
): Promise<RunningService | undefined> {
  const { name } = parts;
  let config: C;
  try {
    config = parts.loadConfig();
  } catch (err) {
    const { code, message } = errorFields(err);
    process.stderr.write(`${name}: failed to start: ${code ? `${code}: ` : ''}${message}\n`);
    process.exit(1);
  }
  const log = createLogger(name, config.logLevel);
  const metrics = createServiceMetrics(name);
  const running: {
    source?: IdentitySource;
    store?: S;
    ops?: FastifyInstance;
    tracing?: Tracing;
    steps: ShutdownStep[];
  } = { steps: [] };
  // Built when a signal arrives, from what is running by then.
  const steps: ShutdownStep[] = [];
  const refreshSteps = (): void => {
    steps.splice(
      0,
      steps.length,
      ...running.steps,
      // After the listeners drained: the last requests' spans go out too.
      { name: 'flush traces', run: async () => running.tracing?.shutdown() },
      {
        name: 'close store',
        run: async () => {
          await running.store?.close();
        },
      },
      { name: 'close identity source', run: async () => running.source?.close() },
      { name: 'close ops port', run: async () => running.ops?.close() },
    );
  };
  refreshSteps();
  const shutdown = onSignals(steps, log);

  try {
    const sidecar = config.transport === 'sidecar';
    // In sidecar mode the process needs no identity: no files, no Workload API.
    const source = sidecar
      ? undefined
      : await createIdentitySource({
          wait: false,
          log: (line) => {
            log.info({ identity: line }, line);
          },
        });
    running.source = source;
    if (source) observeIdentity(source, metrics, log);
    const identity = source ? new IdentityHistory(source) : { view: sidecarIdentityView };
    // Ops port first: until the identity arrives, /health/ready says why not.
    const startup = new StartupGate();
    const checks: Record<string, ReadinessCheck> = source
      ? { identity: identityCheck(source), started: startup.check }
      : { started: startup.check };
    const ops = await startOpsServer({
      reusePort: config.reusePort,
      host: config.host,
      port: config.opsPort,
      metrics,
      checks,
      identity,
    });
    running.ops = ops;
    const opsUrl = httpUrl(ops, config.host);
    if (source) {
      log.info({ ops: opsUrl }, 'ops port open; waiting for the identity');
      await waitForIdentity(source, { log, waitSeconds: config.identityWaitSeconds });
    } else {
      log.info(
        { ops: opsUrl, transport: 'sidecar' },
        'ops port open; no identity in this process (SHOP_TRANSPORT=sidecar)',
      );
    }
    // Off unless an OTLP endpoint is set (OTEL_* variables); before any listener, so every request is traced.
    running.tracing = await startTracing({
      serviceName: name,
      ...(source ? { selfId: source.getX509Svid().id.toString() } : {}),
      log,
    });

    const store = await parts.openStore({ config, log, metrics, source });
    running.store = store;
    checks.store = () => (store.health ? store.health() : store.isOpen);
    const started = await parts.start({ config, log, metrics, source, store });
    running.steps = started.steps;
    refreshSteps();
    startup.open();
    const who = source
      ? { transport: 'mtls', spiffeId: source.getX509Svid().id.toString() }
      : { transport: 'sidecar', authorization: SIDECAR_AUTHORIZATION };
    log.info({ ...who, ops: opsUrl, ...started.info }, `${name} started`);
  } catch (err) {
    // A signal during start-up closed what the start was waiting on; its handler exits.
    if (shutdown.stopping) return undefined;
    const { code, message } = errorFields(err);
    log.fatal({ err: { code, message } }, `${name} failed to start`);
    process.stderr.write(`${name}: failed to start: ${code ? `${code}: ` : ''}${message}\n`);
    await runSteps(steps, log);
    process.exit(1);
  }
  return { stop: () => runSteps(steps, log) };
}
