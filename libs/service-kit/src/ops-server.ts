import Fastify, { type FastifyInstance } from 'fastify';
import type { IdentitySource } from '@shop/auth';
import { listen } from './http-server.ts';
import type { ServiceMetrics } from './metrics.ts';

/** ReadinessCheck reports one thing the service needs before it may take traffic. */
export type ReadinessCheck = () => boolean;

/** OpsServerOptions configure the plaintext ops port. */
export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: ServiceMetrics;
  /** checks must all pass for /health/ready (e.g. identity loaded, store open). */
  checks: Record<string, ReadinessCheck>;
  /** reusePort lets a new instance bind the same port before this one drains (zero-downtime handover). Default: false. */
  reusePort?: boolean;
}

/**
 * startOpsServer serves the ops port, plaintext and separate from the API:
 * `/health/live` (the process answers), `/health/ready` (every check passes;
 * 503 with the failing ones otherwise) and `/metrics` (Prometheus text).
 */
export async function startOpsServer(o: OpsServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/health/live', () => ({ status: 'ok' }));
  app.get('/health/ready', async (_req, reply) => {
    const results = Object.fromEntries(Object.entries(o.checks).map(([k, check]) => [k, safe(check)]));
    const ready = Object.values(results).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: results });
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.type(o.metrics.registry.contentType).send(await o.metrics.registry.metrics());
  });
  await listen(app, { host: o.host, port: o.port, reusePort: o.reusePort });
  return app;
}

function safe(check: ReadinessCheck): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/**
 * identityCheck is the readiness check of an identity: loaded, and not
 * expired. A service whose SVID expired (its registration entry was deleted,
 * or its agent is gone for longer than the SVID lives) reports not ready, so
 * it is taken out of rotation instead of failing every call.
 */
export function identityCheck(source: IdentitySource): ReadinessCheck {
  return () => source.isReady && source.secondsToExpiry() > 0;
}
