import Fastify, { type FastifyInstance } from 'fastify';
import type { IdentitySource } from '@shop/auth';
import { listen } from './http-server.ts';
import type { IdentityView } from './identity-view.ts';
import type { ServiceMetrics } from './metrics.ts';

/** ReadinessResult is a check's outcome with, when it fails, the reason /health/ready shows. */
export interface ReadinessResult {
  ok: boolean;
  /** reason says what is missing and why, e.g. the last error of the identity source. */
  reason?: string;
}

/** ReadinessCheck reports one thing the service needs before it may take traffic. */
export type ReadinessCheck = () => boolean | ReadinessResult;

/** OpsServerOptions configure the plaintext ops port. */
export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: ServiceMetrics;
  /** checks must all pass for /health/ready (e.g. identity loaded, store open); read at every request, so a check may be added as the service starts. */
  checks: Record<string, ReadinessCheck>;
  /** reusePort lets a new instance bind the same port before this one drains (zero-downtime handover). Default: false. */
  reusePort?: boolean;
  /** identity, when given, is served as GET /identity (mode, SPIFFE ID, serial, expiry, rotations, trust roots). */
  identity?: { view(): IdentityView };
}

/**
 * startOpsServer serves the ops port, plaintext and separate from the API:
 * `/health/live` (the process answers), `/health/ready` (every check passes;
 * 503 with the failing ones otherwise, and `reasons` saying why where a
 * check gives one), `/metrics` (Prometheus text) and, given `identity`,
 * `/identity` (the identity held now and its history, as JSON). A service starts it
 * first, before its identity, so an orchestrator sees "not ready, because …"
 * rather than a refused connection.
 */
export async function startOpsServer(o: OpsServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/health/live', () => ({ status: 'ok' }));
  app.get('/health/ready', async (_req, reply) => {
    const checks: Record<string, boolean> = {};
    const reasons: Record<string, string> = {};
    for (const [name, check] of Object.entries(o.checks)) {
      const result = safe(check);
      checks[name] = result.ok;
      if (!result.ok && result.reason !== undefined) reasons[name] = result.reason;
    }
    const ready = Object.values(checks).every(Boolean);
    const body = { status: ready ? 'ready' : 'not ready', checks };
    return reply.code(ready ? 200 : 503).send(Object.keys(reasons).length > 0 ? { ...body, reasons } : body);
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.type(o.metrics.registry.contentType).send(await o.metrics.registry.metrics());
  });
  const identity = o.identity;
  if (identity) app.get('/identity', () => identity.view());
  await listen(app, { host: o.host, port: o.port, reusePort: o.reusePort });
  return app;
}

function safe(check: ReadinessCheck): ReadinessResult {
  try {
    const result = check();
    return typeof result === 'boolean' ? { ok: result } : result;
  } catch (err) {
    return { ok: false, reason: `the check failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * identityCheck is the readiness check of an identity: loaded, and not
 * expired. A service whose SVID expired (its registration entry was deleted,
 * or its agent is gone for longer than the SVID lives) reports not ready, so
 * it is taken out of rotation instead of failing every call. The reason
 * names the source and its last error (see identityNotReadyReason).
 */
export function identityCheck(source: IdentitySource): ReadinessCheck {
  return () => {
    const reason = identityNotReadyReason(source);
    return reason === undefined ? true : { ok: false, reason };
  };
}

/**
 * identityNotReadyReason says why `source` cannot serve yet, e.g. "waiting
 * for the first X.509-SVID from Workload API at unix:///…: <code>: <message>",
 * or returns undefined when it has a valid SVID.
 */
export function identityNotReadyReason(source: IdentitySource): string | undefined {
  const last = source.lastError;
  const lastText = last === undefined ? undefined : `${last.code}: ${last.message}`;
  if (!source.isReady) {
    return `waiting for the first X.509-SVID from ${source.describe()}: ${lastText ?? 'nothing received yet'}`;
  }
  if (source.secondsToExpiry() > 0) return undefined;
  const svid = source.getX509Svid();
  return `the X.509-SVID ${svid.id.toString()} expired at ${svid.expiresAt.toISOString()} and no new one has arrived from ${source.describe()}${lastText === undefined ? '' : `: ${lastText}`}`;
}
