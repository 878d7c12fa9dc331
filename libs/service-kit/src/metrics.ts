import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuthError, AuthzDecision, BundleWarning, IdentitySource } from '@shop/auth';
import type { HandshakeInfo } from '@shop/auth/telemetry';

/** ServiceMetrics are the Prometheus series every service exports on its ops port. */
export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'protocol' | 'route' | 'method' | 'status' | 'caller'>;
  requestSeconds: Histogram<'protocol' | 'route'>;
  authzDenials: Counter<'protocol' | 'route' | 'caller' | 'code'>;
  /** authzDecisions counts every decision, allow and deny, with the rule that made it (the console's edge labels and rates). */
  authzDecisions: Counter<'protocol' | 'route' | 'caller' | 'rule' | 'decision'>;
  handshakeFailures: Counter<'code'>;
  tlsHandshakes: Counter<'side' | 'protocol' | 'group' | 'cipher' | 'resumed'>;
  breakerState: Gauge<'breaker'>;
  breakerEvents: Counter<'breaker' | 'event'>;
  certExpirySeconds: Gauge;
  rotations: Counter;
  identityLoadErrors: Counter<'code'>;
}

/**
 * createServiceMetrics makes a registry of its own per service (not the
 * global one), so several services can run in one test process.
 */
export function createServiceMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'shop_requests_total',
      help: 'Requests served, by route, status and calling SPIFFE ID.',
      labelNames: ['protocol', 'route', 'method', 'status', 'caller'],
      registers: r,
    }),
    requestSeconds: new Histogram({
      name: 'shop_request_duration_seconds',
      help: 'Request latency.',
      labelNames: ['protocol', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    authzDenials: new Counter({
      name: 'shop_authz_denials_total',
      help: 'Requests refused by SPIFFE authentication or authorization.',
      labelNames: ['protocol', 'route', 'caller', 'code'],
      registers: r,
    }),
    authzDecisions: new Counter({
      name: 'shop_authz_decisions_total',
      help: 'Authorization decisions (allow and deny), by route, calling SPIFFE ID and the rule that decided.',
      labelNames: ['protocol', 'route', 'caller', 'rule', 'decision'],
      registers: r,
    }),
    handshakeFailures: new Counter({
      name: 'shop_tls_handshake_failures_total',
      help: 'TLS handshakes that failed or presented an unverifiable peer.',
      labelNames: ['code'],
      registers: r,
    }),
    tlsHandshakes: new Counter({
      name: 'shop_tls_handshakes_total',
      help: 'Completed TLS handshakes, by side (server, client), TLS version, key-exchange group ("unknown" on the server side: Node does not expose it), cipher and whether the session was resumed.',
      labelNames: ['side', 'protocol', 'group', 'cipher', 'resumed'],
      registers: r,
    }),
    breakerState: new Gauge({
      name: 'shop_circuit_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
      labelNames: ['breaker'],
      registers: r,
    }),
    breakerEvents: new Counter({
      name: 'shop_circuit_breaker_events_total',
      help: 'Circuit breaker events (success, failure, timeout, reject, open, close, halfOpen).',
      labelNames: ['breaker', 'event'],
      registers: r,
    }),
    certExpirySeconds: new Gauge({
      name: 'shop_identity_cert_expiry_seconds',
      help: 'Seconds until the current X.509-SVID expires.',
      registers: r,
    }),
    rotations: new Counter({
      name: 'shop_identity_rotations_total',
      help: 'X.509-SVID or bundle updates applied after the first.',
      registers: r,
    }),
    identityLoadErrors: new Counter({
      name: 'shop_identity_load_errors_total',
      help: 'Identity updates refused (last good material kept).',
      labelNames: ['code'],
      registers: r,
    }),
  };
}

/** Logger is the part of pino these helpers use. */
export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * observeIdentity wires an identity source's lifecycle events into metrics
 * and logs: rotations, refused updates, expiring soon, and a gauge of the
 * seconds to expiry read at scrape time.
 */
export function observeIdentity(source: IdentitySource, metrics: ServiceMetrics, log: Logger): void {
  source.on('rotated', (e) => {
    if (e.previous) metrics.rotations.inc();
    log.info(
      {
        spiffeId: e.svid.id.toString(),
        serial: e.svid.leaf.serialNumber,
        expiresAt: e.svid.expiresAt.toISOString(),
        trustDomains: e.bundles.trustDomains().map(String),
      },
      e.previous ? 'identity rotated' : 'identity loaded',
    );
  });
  source.on('loadError', (err) => {
    metrics.identityLoadErrors.inc({ code: err.code });
    // Before the first identity (or after a withdrawal) there is no good one to keep.
    const msg = source.isReady
      ? 'identity update refused; keeping the last good one'
      : 'no usable identity yet; still trying';
    log.warn({ err: { code: err.code, message: err.message } }, msg);
  });
  // Bundle key entries the SPIFFE standards say to ignore: the rest of the bundle is in use, but a user must hear of them.
  const logWarnings = (warnings: readonly BundleWarning[]): void => {
    for (const w of warnings) {
      log.warn(
        { bundleWarning: { trustDomain: w.trustDomain, index: w.index, use: w.use, kid: w.kid, skipped: w.skipped } },
        w.message,
      );
    }
  };
  logWarnings(source.bundleWarnings ?? []);
  source.on('bundleWarning', (e) => {
    logWarnings(e.warnings);
  });
  source.on('withdrawn', (e) => {
    log.error(
      { spiffeId: e.svid.id.toString(), err: { code: e.reason.code, message: e.reason.message } },
      'identity withdrawn: the SPIRE agent no longer grants one; not ready until it does',
    );
  });
  source.on('expiring', (e) => {
    log.warn(
      { spiffeId: e.svid.id.toString(), secondsToExpiry: e.secondsToExpiry },
      'identity expiring soon and no new one has arrived',
    );
  });
  // What identity is in use, and how many roots our own trust domain has:
  // the two things to watch during a migration (docs/migration.md).
  new Gauge({
    name: 'shop_identity_info',
    help: 'Always 1; labels say where the identity comes from (spiffe or files), its SPIFFE ID and the issuer of the certificate.',
    labelNames: ['source', 'spiffe_id', 'issuer'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      if (!source.isReady) return;
      const svid = source.getX509Svid();
      const issuer = /(?:^|\n)CN=([^\n]*)/.exec(svid.leaf.issuer)?.[1] ?? svid.leaf.issuer;
      this.set({ source: source.kind, spiffe_id: svid.id.toString(), issuer }, 1);
    },
  });
  new Gauge({
    name: 'shop_identity_trust_roots',
    help: 'CA certificates trusted for a trust domain (ours, plus federated ones).',
    labelNames: ['trust_domain'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      if (!source.isReady) return;
      for (const b of source.getX509Bundles().bundles()) {
        this.set({ trust_domain: b.trustDomain.name }, b.authorities.length);
      }
    },
  });
  // With the expiry above, says when an SVID is past half its life (the
  // rotation alert in deploy/prometheus/rules/identity.yaml).
  new Gauge({
    name: 'shop_identity_cert_lifetime_seconds',
    help: 'Total lifetime (not after minus not before) of the current X.509-SVID.',
    registers: [metrics.registry],
    collect() {
      this.reset();
      if (!source.isReady) return;
      const leaf = source.getX509Svid().leaf;
      this.set((leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / 1000);
    },
  });
  metrics.registry.removeSingleMetric('shop_identity_cert_expiry_seconds');
  metrics.certExpirySeconds = new Gauge({
    name: 'shop_identity_cert_expiry_seconds',
    help: 'Seconds until the current X.509-SVID expires.',
    registers: [metrics.registry],
    collect() {
      const s = source.secondsToExpiry();
      if (Number.isFinite(s)) this.set(s);
    },
  });
}

/** authHooks returns the fastify plugin's and gRPC front's hooks, feeding metrics. */
export function authHooks(metrics: ServiceMetrics): {
  onDecision: (d: AuthzDecision) => void;
  onHandshakeError: (e: AuthError) => void;
  onHandshake: (info: HandshakeInfo) => void;
} {
  return {
    onDecision: (d) => {
      // Every label is bounded whoever calls: the route is a route pattern
      // or "unmatched" (never the URL), a gRPC method one with a rule or "*"
      // (the gRPC front never reports a path an unverified caller made up);
      // the caller is "none" or a verified SPIFFE ID; the code is one of ours;
      // the rule is the description of one of the service's own authorizers.
      const route = d.transport === 'http' ? d.route : d.method;
      metrics.authzDecisions.inc({
        protocol: d.transport,
        route,
        caller: d.caller ?? 'none',
        rule: d.rule,
        decision: d.decision,
      });
      if (d.decision === 'deny') {
        metrics.authzDenials.inc({
          protocol: d.transport,
          route,
          caller: d.caller ?? 'none',
          code: d.code ?? 'unknown',
        });
      }
    },
    onHandshakeError: (e) => {
      metrics.handshakeFailures.inc({ code: e.code });
    },
    // Every label is bounded: versions, groups and ciphers are the few both ends support.
    onHandshake: (info) => {
      metrics.tlsHandshakes.inc({
        side: info.side,
        protocol: info.protocol,
        group: info.group ?? 'unknown',
        cipher: info.cipher,
        resumed: String(info.resumed),
      });
    },
  };
}
