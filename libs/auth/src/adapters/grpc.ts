import {
  constants as h2,
  createServer as createH2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import type { DetailedPeerCertificate } from 'node:tls';
import type { AllowRule } from '../authorize/allow-rule.ts';
import { toAuthorizer } from '../authorize/allow-rule.ts';
import type { Authorizer } from '../authorize/authorizer.ts';
import type { X509BundleSet } from '../bundle/x509-bundle.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { cutText, type AuditLevel, type AuditLogger } from '../server/audit.ts';
import type { GrpcDecision } from '../server/authz-decision.ts';
import { createMtlsServerCore } from '../server/mtls-server-core.ts';
import type { RotatedEvent } from '../source/identity-lifecycle.ts';
import type { HandshakeInfo } from '../telemetry/attributes.ts';
import { endGrpcSpan, grpcClientSpans, startGrpcServerSpan, type ServerOf } from '../telemetry/grpc-spans.ts';
import type { VerifiedPeer } from '../verify/x509-verify.ts';
import { resolveSources, type SourceOptions, type X509Source, type X509Sources } from '../source/x509-sources.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import { verifyServerChain } from '../tls/client-connect.ts';
import type { PeerResult } from '../tls/connection-verifier.ts';
import { peerChainFromCertificate } from '../tls/peer-chain.ts';
import { mtlsServerOptions } from '../tls/server-options.ts';
import type { RequestPeer } from './fastify.ts';

export type { GrpcDecision } from '../server/authz-decision.ts';

type Listener<T> = (update: T | null) => void;

// Time in-flight calls get to finish when a connection is recycled.
const DRAIN_GRACE_MS = 30_000;

// A refused call's path is the caller's choice; the log keeps this much of it.
const PATH_LOG_LIMIT = 256;

// Before the first material a source throws AUTH_ERR_SOURCE_NOT_READY (and
// AUTH_ERR_SVID_WITHDRAWN while its SVID is withdrawn); the provider then
// waits for its next `rotated` event instead.
function whenReady<T>(get: () => T): T | undefined {
  try {
    return get();
  } catch (err) {
    if (isAuthError(err, 'AUTH_ERR_SOURCE_NOT_READY') || isAuthError(err, 'AUTH_ERR_SVID_WITHDRAWN')) return undefined;
    throw err;
  }
}

/**
 * SourceCertificateProvider feeds an SVID source and a bundle source into
 * grpc-js's experimental certificate-provider API, and their events (when
 * there are any) keep channels on rotated SVIDs without being rebuilt.
 *
 * The CA it hands to grpc-js is every trust domain's bundle together. That
 * pooled list is only OpenSSL's first filter (grpc-js insists on
 * `rejectUnauthorized`); the deciding check is `checkServerIdentity`, which
 * verifies the server against the bundle of its own trust domain alone.
 */
class SourceCertificateProvider implements grpc.experimental.CertificateProvider {
  readonly #sources: X509Sources;
  readonly #caListeners = new Set<Listener<grpc.experimental.CaCertificateUpdate>>();
  readonly #idListeners = new Set<Listener<grpc.experimental.IdentityCertificateUpdate>>();
  #subscribed = false;
  readonly #onRotated = (e: RotatedEvent): void => {
    for (const l of this.#caListeners) l(this.#ca(e.bundles));
    for (const l of this.#idListeners) l(this.#identity(e.svid));
  };
  // No identity certificate: grpc-js stops presenting the withdrawn SVID and new handshakes fail.
  readonly #onWithdrawn = (): void => {
    for (const l of this.#idListeners) l(null);
  };

  constructor(sources: X509Sources) {
    this.#sources = sources;
  }

  #ca(bundles: X509BundleSet): grpc.experimental.CaCertificateUpdate {
    return {
      caCertificate: Buffer.from(
        bundles
          .bundles()
          .map((b) => b.toPem())
          .join(''),
      ),
    };
  }

  #identity(svid: X509Svid): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(svid.certChainPem()), privateKey: Buffer.from(svid.privateKeyPem()) };
  }

  #sync(): void {
    const { events } = this.#sources;
    const active = this.#caListeners.size + this.#idListeners.size > 0;
    if (active && !this.#subscribed) {
      events?.on('rotated', this.#onRotated);
      events?.on('withdrawn', this.#onWithdrawn);
    }
    if (!active && this.#subscribed) {
      events?.off('rotated', this.#onRotated);
      events?.off('withdrawn', this.#onWithdrawn);
    }
    this.#subscribed = active;
  }

  addCaCertificateListener(listener: Listener<grpc.experimental.CaCertificateUpdate>): void {
    this.#caListeners.add(listener);
    this.#sync();
    const bundles = whenReady(() => this.#sources.bundleSource.getX509Bundles());
    if (bundles) listener(this.#ca(bundles));
  }

  removeCaCertificateListener(listener: Listener<grpc.experimental.CaCertificateUpdate>): void {
    this.#caListeners.delete(listener);
    this.#sync();
  }

  addIdentityCertificateListener(listener: Listener<grpc.experimental.IdentityCertificateUpdate>): void {
    this.#idListeners.add(listener);
    this.#sync();
    const svid = whenReady(() => this.#sources.svidSource.getX509Svid());
    if (svid) listener(this.#identity(svid));
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

// The verified server of each credentials' channel, for its client spans.
const serverOfCredentials = new WeakMap<grpc.ChannelCredentials, ServerOf>();

/**
 * grpcClientInterceptor returns the client interceptor that traces calls
 * made with `credentials` (from grpcChannelCredentials): one client span per
 * call carrying the server's verified SPIFFE ID, and the W3C trace context
 * in the call's metadata. Pass it as `new grpc.Client(target, credentials,
 * { interceptors: [grpcClientInterceptor(credentials)] })`. Spans are
 * no-ops unless the application registered an OpenTelemetry SDK.
 */
export function grpcClientInterceptor(credentials: grpc.ChannelCredentials): grpc.Interceptor {
  return grpcClientSpans(serverOfCredentials.get(credentials) ?? (() => ({})));
}

/**
 * grpcChannelCredentials returns channel credentials that present the SVID
 * source's current SVID, verify the server as an X.509-SVID of its own trust
 * domain and authorize its SPIFFE ID. `sources` is an identity source, or
 * `{ svidSource, bundleSource, events }`. grpc-js opens connections without
 * TLS session resumption, so the check runs on every handshake.
 */
export function grpcChannelCredentials(
  sources: X509Source | X509Sources,
  authorize: Authorizer,
  options: GrpcClientOptions = {},
): grpc.ChannelCredentials {
  const resolved = resolveSources(sources);
  const provider = new SourceCertificateProvider(resolved);
  let server: VerifiedPeer | undefined;
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: (_host, cert) => {
      const chain = peerChainFromCertificate(cert as DetailedPeerCertificate);
      const result = verifyServerChain(chain, resolved.bundleSource, authorize);
      if (result.ok) {
        server = result.peer;
        return undefined;
      }
      options.onHandshakeError?.(result.error);
      return result.error;
    },
  });
  serverOfCredentials.set(credentials, () => {
    let self: string | undefined;
    try {
      self = resolved.svidSource.getX509Svid().id.toString();
    } catch {
      self = undefined;
    }
    return { server, self };
  });
  return credentials;
}

/**
 * GrpcServerOptions configure createGrpcMtls: its sources (`source`, an
 * identity source, or `svidSource`, `bundleSource` and `events`) and the
 * settings below.
 */
export type GrpcServerOptions = SourceOptions & GrpcServerSettings;

/** GrpcServerSettings are createGrpcMtls's settings besides its sources. */
export interface GrpcServerSettings {
  /** allow applies to methods without their own rule. Default: any ID of our own trust domain. */
  allow?: AllowRule;
  /** methods maps full method paths ("/inventory.v1.Inventory/Reserve") to their own rule. */
  methods?: Record<string, AllowRule>;
  /** onDecision is called once per call (for audit logs and metrics). */
  onDecision?: (decision: GrpcDecision) => void;
  /** onHandshakeError is called when a TLS handshake fails or a client's certificate is rejected. */
  onHandshakeError?: (error: AuthError) => void;
  /** onHandshake is called once per completed TLS handshake (for metrics). */
  onHandshake?: (info: HandshakeInfo) => void;
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
  const { svidSource, events } = resolveSources(options);
  const core = createMtlsServerCore({
    ...options,
    onDecision: (d) => {
      if (d.transport === 'grpc') options.onDecision?.(d);
    },
  });
  const methodAllow = new Map(Object.entries(options.methods ?? {}).map(([m, r]) => [m, toAuthorizer(r)]));
  // grpc-js names a call's peer "<remoteAddress>:<remotePort>"; we key live
  // connections the same way to find the socket a call arrived on.
  const sockets = new Map<string, TLSSocket>();
  type Injector = ReturnType<grpc.Server['createConnectionInjector']>;
  const injectorOf = new WeakMap<TLSSocket, Injector>();
  // Refused connections, with their HTTP/2 session once it is up.
  type Refused = Map<TLSSocket, ServerHttp2Session | null>;
  const servers: { tls: TlsServer; stop: () => void; injectors: Set<Injector>; refused: Refused }[] = [];

  const socketOf = (call: { getPeer(): string }): TLSSocket | undefined => sockets.get(call.getPeer());

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

  // The core has logged the rejected certificate; every call on this
  // connection is answered here, never by grpc-js.
  const refuse = (socket: TLSSocket, error: AuthError, refused: Refused): void => {
    const result: PeerResult = { ok: false, error };
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
      // The caller chooses the path: the span is named by the rule's method or "*".
      const span = startGrpcServerSpan(own ? path : '/*', headers);
      core.decide({
        transport: 'grpc',
        result,
        authorizer: own ?? core.defaultAllow,
        socket,
        remote: socket.remoteAddress,
        method: own ? path : '*',
        path: cutText(path, PATH_LOG_LIMIT),
        span,
      });
      sendUnauthenticated(stream, error);
      endGrpcSpan(span, grpc.status.UNAUTHENTICATED, `${error.code}: ${error.message}`);
    });
    h2Server.on('session', (session) => {
      refused.set(socket, session);
    });
    refused.set(socket, null);
    socket.once('close', () => refused.delete(socket));
    h2Server.emit('connection', socket);
  };

  const NOT_VERIFIED: PeerResult = {
    ok: false,
    error: new AuthError('AUTH_ERR_PEER_NO_CERTIFICATE', 'call did not arrive over a verified TLS connection'),
  };

  const interceptor: grpc.ServerInterceptor = (methodDescriptor, call) => {
    // The call's server span: started with its metadata, ended with its status.
    let span: Span | undefined;
    const endSpan = (code: grpc.status, details?: string): void => {
      if (!span) return;
      endGrpcSpan(span, code, details);
      span = undefined;
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const socket = socketOf(call);
            span = startGrpcServerSpan(methodDescriptor.path, metadata);
            const decided = core.decide({
              transport: 'grpc',
              result: socket ? core.verify(socket) : NOT_VERIFIED,
              authorizer: methodAllow.get(methodDescriptor.path) ?? core.defaultAllow,
              socket,
              remote: socket?.remoteAddress,
              method: methodDescriptor.path,
              span,
            });
            if (decided.ok) {
              mdNext(metadata);
              return;
            }
            const { error } = decided;
            const details = `${error.code}: ${error.message}`;
            if (decided.decision.status === 'PERMISSION_DENIED') {
              call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details });
              endSpan(grpc.status.PERMISSION_DENIED, details);
              return;
            }
            call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details });
            endSpan(grpc.status.UNAUTHENTICATED, details);
            // The connection verified at its handshake but no longer does
            // (its certificate expired, or its CA left the bundle): close
            // it, so the caller's next connection is checked afresh.
            const injector = socket ? injectorOf.get(socket) : undefined;
            if (socket && injector) {
              injectorOf.delete(socket);
              injector.drain(DRAIN_GRACE_MS);
            }
          },
        });
      },
      sendStatus: (status, next) => {
        endSpan(status.code, status.details);
        next(status);
      },
    });
  };

  return {
    interceptor,
    async listen(server, address) {
      const alpn = { ALPNProtocols: ['h2'] };
      const tlsServer = createTlsServer({ ...mtlsServerOptions(svidSource), ...alpn });
      const injectors = new Set<Injector>();
      const refused: Refused = new Map();
      const accept = (socket: TLSSocket, peerLeaf: RequestPeer['certificate']): void => {
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
          Math.max(0, Math.min(core.recycleAt(socket, peerLeaf) - Date.now(), 2 ** 31 - 1)),
        );
        timer.unref();
        socket.once('close', () => {
          clearTimeout(timer);
          if (sockets.get(key) === socket) sockets.delete(key);
          injectors.delete(injector);
          injector.destroy();
        });
        injector.injectConnection(socket);
      };
      const stopServing = core.serve(tlsServer, {
        extra: alpn,
        onVerified: (socket, peer) => {
          accept(socket, peer.certificate);
        },
        onRefused: (socket, error) => {
          refuse(socket, error, refused);
        },
      });
      // A refused connection was judged against the bundles of its handshake
      // (as the verifier's cache keeps a failure until they change). When
      // they change, close it gracefully: the caller reconnects and is judged
      // again, and may now be let through to grpc-js.
      const onRotated = (e: RotatedEvent): void => {
        if (e.previous?.bundles === e.bundles) return;
        for (const session of refused.values()) session?.close();
      };
      events?.on('rotated', onRotated);
      const stop = (): void => {
        stopServing();
        events?.off('rotated', onRotated);
      };
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
      const result = core.verify(socket);
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
