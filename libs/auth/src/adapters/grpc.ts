import {
  constants as h2,
  createServer as createH2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { DetailedPeerCertificate } from 'node:tls';
import { authorizeMemberOf, type Authorizer } from '../authorize/authorizer.ts';
import { AuthError, isAuthError } from '../errors.ts';
import type { IdentitySource, RotatedEvent } from '../source/identity-source.ts';
import { ConnectionVerifier, recycleAt } from '../tls/connection-verifier.ts';
import { peerChainFromCertificate } from '../tls/peer-chain.ts';
import { keepServerIdentityCurrent, mtlsServerOptions } from '../tls/server-options.ts';
import { verifyX509Svid } from '../verify/x509-verify.ts';
import type { RequestPeer } from './fastify.ts';
import { toAuthorizer, type AllowRule } from './allow-rule.ts';
import { claimedIdOf, cutText, type AuditLevel, type AuditLogger } from './audit.ts';

type Listener<T> = (update: T | null) => void;

// Time in-flight calls get to finish when a connection is recycled.
const DRAIN_GRACE_MS = 30_000;

// A refused call's path is the caller's choice; the log keeps this much of it.
const PATH_LOG_LIMIT = 256;

/**
 * SourceCertificateProvider feeds an identity source into grpc-js's
 * experimental certificate-provider API, so channels pick up rotated SVIDs
 * without being rebuilt.
 *
 * The CA it hands to grpc-js is every trust domain's bundle together. That
 * pooled list is only OpenSSL's first filter (grpc-js insists on
 * `rejectUnauthorized`); the deciding check is `checkServerIdentity`, which
 * verifies the server against the bundle of its own trust domain alone.
 */
class SourceCertificateProvider implements grpc.experimental.CertificateProvider {
  readonly #source: IdentitySource;
  readonly #caListeners = new Set<Listener<grpc.experimental.CaCertificateUpdate>>();
  readonly #idListeners = new Set<Listener<grpc.experimental.IdentityCertificateUpdate>>();
  #subscribed = false;
  readonly #onRotated = (e: RotatedEvent): void => {
    for (const l of this.#caListeners) l(this.#ca(e));
    for (const l of this.#idListeners) l(this.#identity(e));
  };

  constructor(source: IdentitySource) {
    this.#source = source;
  }

  #ca(e: { bundles: RotatedEvent['bundles'] }): grpc.experimental.CaCertificateUpdate {
    return {
      caCertificate: Buffer.from(
        e.bundles
          .bundles()
          .map((b) => b.toPem())
          .join(''),
      ),
    };
  }

  #identity(e: { svid: RotatedEvent['svid'] }): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(e.svid.certChainPem()), privateKey: Buffer.from(e.svid.privateKeyPem()) };
  }

  #sync(): void {
    const active = this.#caListeners.size + this.#idListeners.size > 0;
    if (active && !this.#subscribed) this.#source.on('rotated', this.#onRotated);
    if (!active && this.#subscribed) this.#source.off('rotated', this.#onRotated);
    this.#subscribed = active;
  }

  addCaCertificateListener(listener: Listener<grpc.experimental.CaCertificateUpdate>): void {
    this.#caListeners.add(listener);
    this.#sync();
    if (this.#source.isReady) listener(this.#ca({ bundles: this.#source.getX509Bundles() }));
  }

  removeCaCertificateListener(listener: Listener<grpc.experimental.CaCertificateUpdate>): void {
    this.#caListeners.delete(listener);
    this.#sync();
  }

  addIdentityCertificateListener(listener: Listener<grpc.experimental.IdentityCertificateUpdate>): void {
    this.#idListeners.add(listener);
    this.#sync();
    if (this.#source.isReady) listener(this.#identity({ svid: this.#source.getX509Svid() }));
  }

  removeIdentityCertificateListener(listener: Listener<grpc.experimental.IdentityCertificateUpdate>): void {
    this.#idListeners.delete(listener);
    this.#sync();
  }
}

/** GrpcClientOptions configure grpcChannelCredentials. */
export interface GrpcClientOptions {
  /** onHandshakeError is called when a server fails verification or authorization. */
  onHandshakeError?: (error: AuthError) => void;
}

/**
 * grpcChannelCredentials returns channel credentials that present the
 * source's current SVID, verify the server as an X.509-SVID of its own trust
 * domain and authorize its SPIFFE ID. grpc-js opens connections without TLS
 * session resumption, so the check runs on every handshake.
 */
export function grpcChannelCredentials(
  source: IdentitySource,
  authorize: Authorizer,
  options: GrpcClientOptions = {},
): grpc.ChannelCredentials {
  const provider = new SourceCertificateProvider(source);
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: (_host, cert) => {
      try {
        const peer = verifyX509Svid(
          peerChainFromCertificate(cert as DetailedPeerCertificate),
          source.getX509Bundles(),
          { peerRole: 'server' },
        );
        authorize(peer.id, peer.chain);
        return undefined;
      } catch (err) {
        const error = isAuthError(err) ? err : new AuthError('AUTH_ERR_PEER_UNVERIFIED', String(err), { cause: err });
        options.onHandshakeError?.(error);
        return error;
      }
    },
  });
}

/** GrpcDecision is reported once per call, for audit logs and metrics. */
export interface GrpcDecision {
  decision: 'allow' | 'deny';
  status: 'OK' | 'UNAUTHENTICATED' | 'PERMISSION_DENIED';
  caller: string | null;
  rule: string;
  method: string;
  code?: string;
  reason?: string;
  /** remote is the caller's IP address. */
  remote?: string;
  /**
   * claimed is the SPIFFE ID (URI SAN) the refused client certificate claims,
   * unverified, on UNAUTHENTICATED only (null: no certificate or no URI SAN).
   * For logs, never a metric label: the caller picks it.
   */
  claimed?: string | null;
  /**
   * path is the method path as the caller sent it (cut to 256 characters), on
   * calls over a connection whose client certificate did not verify. Those
   * calls never reach grpc-js, so whether the method exists is not known:
   * `method` is the path only if it has its own rule in `methods`, else "*".
   * For logs, never a metric label: the caller picks it.
   */
  path?: string;
}

/** GrpcServerOptions configure createGrpcMtls. */
export interface GrpcServerOptions {
  /** source gives our SVID and the bundles callers are verified against. */
  source: IdentitySource;
  /** allow applies to methods without their own rule. Default: any ID of our own trust domain. */
  allow?: AllowRule;
  /** methods maps full method paths ("/inventory.v1.Inventory/Reserve") to their own rule. */
  methods?: Record<string, AllowRule>;
  /** onDecision is called once per call (for audit logs and metrics). */
  onDecision?: (decision: GrpcDecision) => void;
  /** onHandshakeError is called when a TLS handshake fails or a client's certificate is rejected. */
  onHandshakeError?: (error: AuthError) => void;
  /**
   * log receives one audit line per call (`{ authz: decision }`, "authz allow"
   * or "authz deny", as the fastify plugin writes them) and a warning per
   * failed handshake ("TLS handshake failed") or rejected client certificate
   * ("client certificate rejected"). Default: none.
   */
  log?: AuditLogger;
  /** auditLevel is the level of the per-call audit line. Default: "info". */
  auditLevel?: AuditLevel;
}

/** GrpcMtls is a SPIFFE mTLS front for a grpc-js Server. */
export interface GrpcMtls {
  /** interceptor goes into `new grpc.Server({ interceptors: [mtls.interceptor] })`. */
  readonly interceptor: grpc.ServerInterceptor;
  /** listen serves `server` over mTLS on host:port (port 0 picks one) and resolves to the bound port. */
  listen(server: grpc.Server, address: { host?: string; port: number; reusePort?: boolean }): Promise<number>;
  /** peerOf returns the verified caller of a call, inside a handler. */
  peerOf(call: { getPeer(): string }): RequestPeer | null;
  /** close stops accepting connections and ends open ones after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/**
 * createGrpcMtls terminates TLS itself (a Node TLS server with SPIFFE
 * verification and rotation) and hands the verified connections to grpc-js
 * through its connection injector. grpc-js's own TLS server could only check
 * clients against a pooled CA list and exposes no chain to handlers.
 *
 * A connection whose client certificate does not verify never reaches
 * grpc-js: grpc-js looks a method up before interceptors run, so it would
 * tell an unauthenticated caller which methods exist (UNIMPLEMENTED for the
 * others). Such a connection is answered by a bare HTTP/2 server instead:
 * every call, whatever its method, gets UNAUTHENTICATED with the reason.
 */
export function createGrpcMtls(options: GrpcServerOptions): GrpcMtls {
  const { source, log } = options;
  const verifier = new ConnectionVerifier(source);
  const defaultAllow = toAuthorizer(options.allow ?? authorizeMemberOf(source.getX509Svid().id.trustDomain));
  const methodAllow = new Map(Object.entries(options.methods ?? {}).map(([m, r]) => [m, toAuthorizer(r)]));
  const auditLevel = options.auditLevel ?? 'info';
  // grpc-js names a call's peer "<remoteAddress>:<remotePort>"; we key live
  // connections the same way to find the socket a call arrived on.
  const sockets = new Map<string, TLSSocket>();
  type Injector = ReturnType<grpc.Server['createConnectionInjector']>;
  const injectorOf = new WeakMap<TLSSocket, Injector>();
  // Refused connections, with their HTTP/2 session once it is up.
  type Refused = Map<TLSSocket, ServerHttp2Session | null>;
  const servers: { tls: TlsServer; stop: () => void; injectors: Set<Injector>; refused: Refused }[] = [];

  const socketOf = (call: { getPeer(): string }): TLSSocket | undefined => sockets.get(call.getPeer());

  const decide = (decision: GrpcDecision): void => {
    log?.[auditLevel]({ authz: decision }, decision.decision === 'allow' ? 'authz allow' : 'authz deny');
    options.onDecision?.(decision);
  };

  const handshakeFailed = (error: AuthError, fields: object, msg: string): void => {
    log?.warn({ err: { code: error.code, message: error.message }, ...fields }, msg);
    options.onHandshakeError?.(error);
  };

  // Trailers-only, as grpc-js answers a status before any message, so a
  // refusal here is byte for byte the one a real method's interceptor gives.
  const sendUnauthenticated = (stream: ServerHttp2Stream, error: AuthError): void => {
    if (stream.destroyed) return;
    stream.respond(
      {
        'grpc-status': grpc.status.UNAUTHENTICATED,
        'grpc-message': encodeURI(`${error.code}: ${error.message}`),
        [h2.HTTP2_HEADER_STATUS]: h2.HTTP_STATUS_OK,
        [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
      },
      { endStream: true },
    );
  };

  const refuse = (socket: TLSSocket, error: AuthError, refused: Refused): void => {
    const remote = socket.remoteAddress;
    const claimed = claimedIdOf(socket);
    handshakeFailed(error, { remote, claimed }, 'client certificate rejected');
    // A plain HTTP/2 server: TLS is already terminated. One per connection,
    // like grpc-js's injectors; it never listens, so it holds nothing once
    // the connection closes.
    const h2Server = createH2Server();
    h2Server.on('stream', (stream, headers) => {
      // A reset from the caller needs no answer.
      stream.on('error', () => undefined);
      // Read and drop whatever the caller sends, so flow control never stalls.
      stream.resume();
      const path = String(headers[h2.HTTP2_HEADER_PATH] ?? '');
      const own = methodAllow.get(path);
      decide({
        decision: 'deny',
        status: 'UNAUTHENTICATED',
        caller: null,
        rule: (own ?? defaultAllow).rule,
        method: own ? path : '*',
        code: error.code,
        reason: error.message,
        remote,
        claimed,
        path: cutText(path, PATH_LOG_LIMIT),
      });
      sendUnauthenticated(stream, error);
    });
    h2Server.on('session', (session) => {
      refused.set(socket, session);
    });
    refused.set(socket, null);
    socket.once('close', () => refused.delete(socket));
    h2Server.emit('connection', socket);
  };

  const interceptor: grpc.ServerInterceptor = (methodDescriptor, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const authorizer = methodAllow.get(methodDescriptor.path) ?? defaultAllow;
            const socket = socketOf(call);
            const result = socket
              ? verifier.verify(socket)
              : {
                  ok: false as const,
                  error: new AuthError(
                    'AUTH_ERR_PEER_NO_CERTIFICATE',
                    'call did not arrive over a verified TLS connection',
                  ),
                };
            const base = { rule: authorizer.rule, method: methodDescriptor.path };
            const remote = socket?.remoteAddress;
            if (!result.ok) {
              decide({
                decision: 'deny',
                status: 'UNAUTHENTICATED',
                caller: null,
                ...base,
                code: result.error.code,
                reason: result.error.message,
                remote,
                claimed: socket ? claimedIdOf(socket) : null,
              });
              call.sendStatus({
                code: grpc.status.UNAUTHENTICATED,
                details: `${result.error.code}: ${result.error.message}`,
              });
              // The connection verified at its handshake but no longer does
              // (its certificate expired, or its CA left the bundle): close
              // it, so the caller's next connection is checked afresh.
              const injector = socket ? injectorOf.get(socket) : undefined;
              if (socket && injector) {
                injectorOf.delete(socket);
                injector.drain(DRAIN_GRACE_MS);
              }
              return;
            }
            const caller = result.peer.id.toString();
            try {
              authorizer(result.peer.id, result.peer.chain);
            } catch (err) {
              const error = isAuthError(err)
                ? err
                : new AuthError('AUTH_ERR_PEER_UNAUTHORIZED', String(err), { cause: err });
              decide({
                decision: 'deny',
                status: 'PERMISSION_DENIED',
                caller,
                ...base,
                code: error.code,
                reason: error.message,
                remote,
              });
              call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: `${error.code}: ${error.message}` });
              return;
            }
            decide({ decision: 'allow', status: 'OK', caller, ...base, remote });
            mdNext(metadata);
          },
        });
      },
    });

  return {
    interceptor,
    async listen(server, address) {
      const tlsServer = createTlsServer({ ...mtlsServerOptions(source), ALPNProtocols: ['h2'] });
      const stopIdentity = keepServerIdentityCurrent(tlsServer, source, { ALPNProtocols: ['h2'] });
      const injectors = new Set<Injector>();
      const refused: Refused = new Map();
      // A refused connection was judged against the bundles of its handshake
      // (as the verifier's cache keeps a failure until they change). When
      // they change, close it gracefully: the caller reconnects and is judged
      // again, and may now be let through to grpc-js.
      const onRotated = (e: RotatedEvent): void => {
        if (e.previous?.bundles === e.bundles) return;
        for (const session of refused.values()) session?.close();
      };
      source.on('rotated', onRotated);
      const stop = (): void => {
        stopIdentity();
        source.off('rotated', onRotated);
      };
      tlsServer.on('secureConnection', (socket: TLSSocket) => {
        const result = verifier.verify(socket);
        if (!result.ok) {
          refuse(socket, result.error, refused);
          return;
        }
        const key = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
        sockets.set(key, socket);
        // One injector per connection, so this one connection can be drained
        // (GOAWAY, in-flight calls finish) at its recycle time: HTTP/2
        // connections live long, and must not carry a certificate to expiry.
        const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
        injectors.add(injector);
        injectorOf.set(socket, injector);
        const timer = setTimeout(
          () => {
            injector.drain(DRAIN_GRACE_MS);
          },
          Math.max(
            0,
            Math.min(recycleAt([source.getX509Svid().leaf, result.peer.certificate]) - Date.now(), 2 ** 31 - 1),
          ),
        );
        timer.unref();
        socket.once('close', () => {
          clearTimeout(timer);
          if (sockets.get(key) === socket) sockets.delete(key);
          injectors.delete(injector);
          injector.destroy();
        });
        injector.injectConnection(socket);
      });
      tlsServer.on('tlsClientError', (err, socket) => {
        handshakeFailed(
          new AuthError('AUTH_ERR_TLS_HANDSHAKE', `TLS handshake failed: ${err.message}`, { cause: err }),
          { remote: socket.remoteAddress },
          'TLS handshake failed',
        );
      });
      servers.push({ tls: tlsServer, stop, injectors, refused });
      await new Promise<void>((resolve, reject) => {
        tlsServer.once('error', reject);
        const where = { port: address.port, host: address.host ?? '127.0.0.1', reusePort: address.reusePort === true };
        tlsServer.listen(where, () => {
          tlsServer.off('error', reject);
          resolve();
        });
      });
      const bound = tlsServer.address();
      return typeof bound === 'object' && bound ? bound.port : address.port;
    },
    peerOf(call) {
      const socket = socketOf(call);
      if (!socket) return null;
      const result = verifier.verify(socket);
      if (!result.ok) return null;
      const { peer } = result;
      return { id: peer.id, trustDomain: peer.id.trustDomain, certificate: peer.certificate };
    },
    async close(graceMs = 5000) {
      await Promise.all(
        servers.splice(0).map(
          ({ tls, stop, injectors, refused }) =>
            new Promise<void>((resolve) => {
              stop();
              // Refused connections have no call worth waiting for.
              for (const s of refused.keys()) s.destroy();
              for (const injector of injectors) injector.drain(graceMs);
              tls.close(() => {
                for (const injector of injectors) injector.destroy();
                resolve();
              });
              setTimeout(() => {
                for (const s of sockets.values()) s.destroy();
              }, graceMs).unref();
            }),
        ),
      );
    },
  };
}
