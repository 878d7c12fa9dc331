import type { X509Certificate } from 'node:crypto';
import { Server as TlsServer, TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, LogLevel } from 'fastify';
import fp from 'fastify-plugin';
import { authorizeMemberOf } from '../authorize/authorizer.ts';
import { AuthError, isAuthError } from '../errors.ts';
import type { IdentitySource } from '../source/identity-source.ts';
import type { SpiffeId } from '../spiffeid/spiffe-id.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import { ConnectionVerifier, recycleAt, type PeerResult } from '../tls/connection-verifier.ts';
import { keepServerIdentityCurrent, mtlsServerOptions } from '../tls/server-options.ts';
import { toAuthorizer, type AllowRule } from './allow-rule.ts';
import { claimedIdOf } from './audit.ts';

/** RequestPeer is the verified caller of a request. */
export interface RequestPeer {
  id: SpiffeId;
  trustDomain: TrustDomain;
  certificate: X509Certificate;
}

/** AuthzDecision is reported once per request, for audit logs and metrics. */
export interface AuthzDecision {
  decision: 'allow' | 'deny';
  status: 200 | 401 | 403;
  caller: string | null;
  rule: string;
  method: string;
  /** route is the matched route's pattern, or "unmatched": never the URL, so it is safe as a metric label. */
  route: string;
  /** url is the request's URL as sent (query included, cut at 256 characters), for the audit line only. */
  url: string;
  code?: string;
  reason?: string;
  /** remote is the caller's IP address. */
  remote?: string;
  /**
   * claimed is the SPIFFE ID (URI SAN) the refused client certificate claims,
   * unverified, on 401 only (null: no certificate or no URI SAN). For logs,
   * never a metric label: the caller picks it.
   */
  claimed?: string | null;
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

/** SpiffeAuthOptions configure the fastify plugin. */
export interface SpiffeAuthOptions {
  /** source gives our SVID and the bundles peers are verified against. */
  source: IdentitySource;
  /** allow applies to every route without its own `config.spiffe.allow`. Default: any ID of our own trust domain. */
  allow?: AllowRule;
  /** auditLevel is the pino level of the per-request audit line. Default: "info". */
  auditLevel?: LogLevel;
  /** onDecision is called once per request with the decision (for metrics). */
  onDecision?: (decision: AuthzDecision) => void;
  /** onHandshakeError is called when a TLS handshake fails or a client's certificate is rejected. */
  onHandshakeError?: (error: AuthError) => void;
  /**
   * resolvePeer replaces reading the peer from the TLS socket. For tests with
   * `app.inject()`, which has no socket; never set it in production.
   */
  resolvePeer?: (request: FastifyRequest) => PeerResult;
}

/**
 * fastifyMtlsOptions are fastify's `https` options for a SPIFFE mTLS server:
 * `fastify({ https: fastifyMtlsOptions(source) })`. The source must be ready.
 */
export function fastifyMtlsOptions(source: IdentitySource): ReturnType<typeof mtlsServerOptions> {
  return mtlsServerOptions(source);
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
  const { source } = opts;
  const verifier = new ConnectionVerifier(source);
  const defaultAllow = toAuthorizer(opts.allow ?? authorizeMemberOf(source.getX509Svid().id.trustDomain));
  const auditLevel = opts.auditLevel ?? 'info';

  // Only an https server has a certificate to rotate and handshakes to watch;
  // a plain server (inject() tests, resolvePeer) has neither.
  if (app.server instanceof TlsServer) {
    const tlsServer = app.server;
    const stop = keepServerIdentityCurrent(tlsServer, source);
    const onSecure = (socket: TLSSocket): void => {
      const result = verifier.verify(socket);
      if (!result.ok) {
        app.log.warn(
          {
            err: { code: result.error.code, message: result.error.message },
            remote: socket.remoteAddress,
            claimed: claimedIdOf(socket),
          },
          'client certificate rejected',
        );
        opts.onHandshakeError?.(result.error);
      }
    };
    const onClientError = (err: Error, socket: TLSSocket): void => {
      const error = new AuthError('AUTH_ERR_TLS_HANDSHAKE', `TLS handshake failed: ${err.message}`, { cause: err });
      app.log.warn(
        { err: { code: error.code, message: error.message }, remote: socket.remoteAddress },
        'TLS handshake failed',
      );
      opts.onHandshakeError?.(error);
    };
    tlsServer.on('secureConnection', onSecure);
    tlsServer.on('tlsClientError', onClientError);
    app.addHook('onClose', (_app, done) => {
      stop();
      tlsServer.off('secureConnection', onSecure);
      tlsServer.off('tlsClientError', onClientError);
      done();
    });
  }

  const recycle = new WeakMap<TLSSocket, number>();
  const recycleTime = (socket: TLSSocket, peerLeaf: X509Certificate): number => {
    let at = recycle.get(socket);
    if (at === undefined) {
      at = recycleAt([peerLeaf, source.getX509Svid().leaf]);
      recycle.set(socket, at);
    }
    return at;
  };

  app.decorateRequest('peer', null);

  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    const remote = socket.remoteAddress;
    const result: PeerResult = opts.resolvePeer
      ? opts.resolvePeer(request)
      : socket instanceof TLSSocket
        ? verifier.verify(socket)
        : NO_SOCKET;
    const authorizer = toAuthorizer(request.routeOptions.config.spiffe?.allow ?? defaultAllow);
    const base = {
      rule: authorizer.rule,
      method: request.method,
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      url: request.url.slice(0, MAX_AUDIT_URL),
    };
    const deny = async (status: 401 | 403, error: AuthError, caller: string | null): Promise<void> => {
      const decision: AuthzDecision = {
        decision: 'deny',
        status,
        caller,
        ...base,
        code: error.code,
        reason: error.message,
        remote,
        ...(status === 401 ? { claimed: socket instanceof TLSSocket ? claimedIdOf(socket) : null } : {}),
      };
      request.log[auditLevel]({ authz: decision }, 'authz deny');
      opts.onDecision?.(decision);
      await reply.code(status).send({ code: error.code, message: error.message, caller, rule: authorizer.rule });
    };
    if (!result.ok) {
      await deny(401, result.error, null);
      return;
    }
    const { peer } = result;
    const caller = peer.id.toString();
    request.log = request.log.child({ caller });
    try {
      authorizer(peer.id, peer.chain);
    } catch (err) {
      const error = isAuthError(err) ? err : new AuthError('AUTH_ERR_PEER_UNAUTHORIZED', String(err), { cause: err });
      await deny(403, error, caller);
      return;
    }
    request.peer = { id: peer.id, trustDomain: peer.id.trustDomain, certificate: peer.certificate };
    if (socket instanceof TLSSocket && Date.now() >= recycleTime(socket, peer.certificate)) {
      // Past the half-life of a certificate on this connection: let the
      // client reconnect with its current SVID for its next request.
      void reply.header('connection', 'close');
    }
    const decision: AuthzDecision = { decision: 'allow', status: 200, caller, ...base, remote };
    request.log[auditLevel]({ authz: decision }, 'authz allow');
    opts.onDecision?.(decision);
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
