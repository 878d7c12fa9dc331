import type { X509Certificate } from 'node:crypto';
import { Server as TlsServer, TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, LogLevel } from 'fastify';
import fp from 'fastify-plugin';
import type { AllowRule } from '../authorize/allow-rule.ts';
import { toAuthorizer } from '../authorize/allow-rule.ts';
import { AuthError } from '../errors.ts';
import { createMtlsServerCore } from '../server/mtls-server-core.ts';
import type { HttpDecision } from '../server/authz-decision.ts';
import type { SourceOptions } from '../source/x509-sources.ts';
import type { HandshakeInfo } from '../telemetry/attributes.ts';
import { traceRequests } from '../telemetry/fastify-tracing.ts';
import { activeHttpServerSpan } from '../telemetry/http-server-span.ts';
import type { SpiffeId } from '../spiffeid/spiffe-id.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import type { X509SvidSource } from '../svid/x509-svid-source.ts';
import type { PeerResult } from '../tls/connection-verifier.ts';
import { mtlsServerOptions } from '../tls/server-options.ts';

export type { AuthzDecision, HttpDecision } from '../server/authz-decision.ts';

/** RequestPeer is the verified caller of a request. */
export interface RequestPeer {
  id: SpiffeId;
  trustDomain: TrustDomain;
  certificate: X509Certificate;
}

/** SpiffeRouteConfig is the per-route `config.spiffe` option. */
export interface SpiffeRouteConfig {
  /** allow is who may call this route: an Authorizer or a list of SPIFFE IDs. */
  allow?: AllowRule;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** peer is the verified SPIFFE caller, set before any handler runs. */
    peer: RequestPeer | null;
  }
  interface FastifyContextConfig {
    spiffe?: SpiffeRouteConfig;
  }
}

/**
 * SpiffeAuthOptions configure the fastify plugin: its sources (`source`, an
 * identity source, or `svidSource`, `bundleSource` and `events`) and the
 * settings below.
 */
export type SpiffeAuthOptions = SourceOptions & SpiffeAuthSettings;

/** SpiffeAuthSettings are the fastify plugin's settings besides its sources. */
export interface SpiffeAuthSettings {
  /** allow applies to every route without its own `config.spiffe.allow`. Default: any ID of our own trust domain. */
  allow?: AllowRule;
  /** auditLevel is the pino level of the per-request audit line. Default: "info". */
  auditLevel?: LogLevel;
  /** onDecision is called once per request with the decision (for metrics). */
  onDecision?: (decision: HttpDecision) => void;
  /** onHandshakeError is called when a TLS handshake fails or a client's certificate is rejected. */
  onHandshakeError?: (error: AuthError) => void;
  /** onHandshake is called once per completed TLS handshake (for metrics). */
  onHandshake?: (info: HandshakeInfo) => void;
  /**
   * resolvePeer replaces reading the peer from the TLS socket. For tests with
   * `app.inject()`, which has no socket; never set it in production.
   */
  resolvePeer?: (request: FastifyRequest) => PeerResult;
}

/**
 * fastifyMtlsOptions are fastify's `https` options for a SPIFFE mTLS server:
 * `fastify({ https: fastifyMtlsOptions(source) })`. The SVID source (any
 * identity source) must be ready.
 */
export function fastifyMtlsOptions(svidSource: X509SvidSource): ReturnType<typeof mtlsServerOptions> {
  return mtlsServerOptions(svidSource);
}

// A request to no route is labelled with this, not its URL: the caller picks
// the URL, and each new one would be a new metric series.
const UNMATCHED_ROUTE = 'unmatched';
const MAX_AUDIT_URL = 256;

const NO_SOCKET: PeerResult = {
  ok: false,
  error: new AuthError(
    'AUTH_ERR_PEER_NO_CERTIFICATE',
    'request did not arrive over TLS, so it has no client certificate',
  ),
};

const plugin: FastifyPluginAsync<SpiffeAuthOptions> = (app: FastifyInstance, opts: SpiffeAuthOptions) => {
  const core = createMtlsServerCore({
    ...opts,
    log: app.log,
    onDecision: (d) => {
      if (d.transport === 'http') opts.onDecision?.(d);
    },
  });

  // Only an https server has a certificate to rotate and handshakes to watch;
  // a plain server (inject() tests, resolvePeer) has neither.
  if (app.server instanceof TlsServer) {
    const stop = core.serve(app.server);
    app.addHook('onClose', (_app, done) => {
      stop();
      done();
    });
  }

  // Every request gets a server span (a no-op unless the application registered an OpenTelemetry SDK).
  traceRequests(app);
  app.decorateRequest('peer', null);

  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    const tlsSocket = socket instanceof TLSSocket ? socket : undefined;
    const result: PeerResult = opts.resolvePeer
      ? opts.resolvePeer(request)
      : tlsSocket
        ? core.verify(tlsSocket)
        : NO_SOCKET;
    const authorizer = toAuthorizer(request.routeOptions.config.spiffe?.allow ?? core.defaultAllow);
    // The audit line of a verified caller names it in the request's logger too.
    if (result.ok) request.log = request.log.child({ caller: result.peer.id.toString() });
    const decided = core.decide(
      {
        transport: 'http',
        result,
        authorizer,
        socket: tlsSocket,
        remote: socket.remoteAddress,
        method: request.method,
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        url: request.url.slice(0, MAX_AUDIT_URL),
        span: activeHttpServerSpan(request.raw),
      },
      request.log,
    );
    if (!decided.ok) {
      const { status, caller } = decided.decision;
      const { code, message } = decided.error;
      await reply.code(status).send({ code, message, caller, rule: authorizer.rule });
      return;
    }
    const { peer } = decided;
    request.peer = { id: peer.id, trustDomain: peer.id.trustDomain, certificate: peer.certificate };
    if (tlsSocket && Date.now() >= core.recycleAt(tlsSocket, peer.certificate)) {
      // Past the half-life of a certificate on this connection: let the
      // client reconnect with its current SVID for its next request.
      void reply.header('connection', 'close');
    }
  });
  return Promise.resolve();
};

/**
 * spiffeAuth is the fastify plugin: it keeps the server's certificate current
 * as the source rotates, verifies every client as an X.509-SVID of its own
 * trust domain, sets `request.peer`, enforces per-route allow-lists
 * (`config: { spiffe: { allow } }`), and answers 401 (no verified client
 * identity) or 403 (identity not allowed) with a JSON body naming the caller
 * and the rule. One audit log line per decision.
 */
export const spiffeAuth = fp(plugin, { fastify: '5.x', name: '@shop/auth/spiffe' });
