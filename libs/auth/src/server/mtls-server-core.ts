import type { X509Certificate } from 'node:crypto';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import type { Server as TlsServer, TlsOptions, TLSSocket } from 'node:tls';
import { toAuthorizer, type AllowRule } from '../authorize/allow-rule.ts';
import { applyAuthorizer, authorizeMemberOf, type Authorizer } from '../authorize/authorizer.ts';
import { AuthError } from '../errors.ts';
import { resolveSources, type SourceOptions } from '../source/x509-sources.ts';
import { ConnectionVerifier, recycleAt, type PeerResult } from '../tls/connection-verifier.ts';
import { keepServerIdentityCurrent } from '../tls/server-options.ts';
import type { VerifiedPeer } from '../verify/x509-verify.ts';
import {
  handshakeInfoOf,
  peerAttributes,
  SPAN_ATTRIBUTES,
  tlsAttributes,
  type HandshakeInfo,
} from '../telemetry/attributes.ts';
import { claimedIdOf, type AuditLevel, type AuditLogger } from './audit.ts';
import type { AuthzDecision, GrpcDecision, HttpDecision } from './authz-decision.ts';

/** MtlsServerCoreSettings are the core's settings besides its sources. */
export interface MtlsServerCoreSettings {
  /** allow applies where a request or call has no rule of its own. Default: any ID of our own trust domain. */
  allow?: AllowRule;
  /** log receives the audit lines and the handshake warnings. Default: none. */
  log?: AuditLogger;
  /** auditLevel is the level of the audit line; "silent" writes none. Default: "info". */
  auditLevel?: AuditLevel | 'silent';
  /** onDecision is called once per request or call with the decision (for metrics). */
  onDecision?: (decision: AuthzDecision) => void;
  /** onHandshakeError is called when a TLS handshake fails or a client's certificate is rejected. */
  onHandshakeError?: (error: AuthError) => void;
  /** onHandshake is called once per completed TLS handshake, verified or not (for metrics). */
  onHandshake?: (info: HandshakeInfo) => void;
}

/** MtlsServerCoreOptions configure createMtlsServerCore: its sources and settings. */
export type MtlsServerCoreOptions = SourceOptions & MtlsServerCoreSettings;

/** RequestFacts are what any transport knows of one request or call. */
interface RequestFacts {
  /** result is the verification of the caller's connection. */
  result: PeerResult;
  /** authorizer is the rule that applies. */
  authorizer: Authorizer;
  /** socket the request arrived on, if it is a TLS socket: a refusal's audit line names the ID it claims. */
  socket?: TLSSocket;
  /** remote is the caller's IP address. */
  remote?: string;
  /** method is the HTTP method or the gRPC method path (see GrpcDecision). */
  method: string;
  /** span of the request or call, if the transport started one: the decision and the peer go on it. */
  span?: Span;
}

/** HttpDecisionRequest is one HTTP request to decide. */
export interface HttpDecisionRequest extends RequestFacts {
  transport: 'http';
  /** route is the matched route's pattern, or "unmatched". */
  route: string;
  /** url is the URL as sent, already cut for the log. */
  url: string;
}

/** GrpcDecisionRequest is one gRPC call to decide. */
export interface GrpcDecisionRequest extends RequestFacts {
  transport: 'grpc';
  /** path is the method path as sent, on calls that never reach grpc-js. */
  path?: string;
}

/** DecisionRequest is what a transport knows of one request or call: how its connection verified, the rule, its audit fields. */
export type DecisionRequest = HttpDecisionRequest | GrpcDecisionRequest;

/** Decided is the core's answer to a DecisionRequest: the decision, and the peer or the refusal's error. */
export type Decided<D extends AuthzDecision = AuthzDecision> =
  { ok: true; decision: D; peer: VerifiedPeer } | { ok: false; decision: D; error: AuthError };

/** ServeHandlers say what a transport does with each connection the core has verified or refused. */
export interface ServeHandlers {
  /** extra TLS options kept when the server's certificate rotates (e.g. ALPN). */
  extra?: TlsOptions;
  /** onVerified receives a connection whose client certificate verified. */
  onVerified?: (socket: TLSSocket, peer: VerifiedPeer) => void;
  /** onRefused receives a connection whose client certificate did not verify, after it was logged. */
  onRefused?: (socket: TLSSocket, error: AuthError) => void;
}

/**
 * MtlsServerCore is the server side of SPIFFE mTLS, once for every
 * transport: per-connection verification, handshake warnings, the decision
 * (authenticate, then authorize) with its audit line and callback, and when
 * a connection should be recycled. The fastify plugin and the gRPC front
 * only translate it to and from their protocol.
 */
export interface MtlsServerCore {
  /** defaultAllow is the rule of requests and calls without their own. */
  readonly defaultAllow: Authorizer;
  /** verify returns the verified client of `socket`, or why it is not verified (cached per connection). */
  verify(socket: TLSSocket): PeerResult;
  /**
   * serve watches `server`: presents each rotated SVID (when the sources
   * have events), verifies every connection, and logs failed handshakes and
   * rejected client certificates. Returns a function that stops it.
   */
  serve(server: TlsServer, handlers?: ServeHandlers): () => void;
  /** decide authenticates and authorizes one request or call, and writes its audit line and reports it. */
  decide(request: HttpDecisionRequest, log?: AuditLogger): Decided<HttpDecision>;
  decide(request: GrpcDecisionRequest, log?: AuditLogger): Decided<GrpcDecision>;
  /** recycleAt is when the connection `socket` with peer leaf `peerLeaf` should be closed gracefully (see recycleAt). */
  recycleAt(socket: TLSSocket, peerLeaf: X509Certificate): number;
}

const HTTP_STATUS = { allow: 200, unauthenticated: 401, forbidden: 403 } as const;
const GRPC_STATUS = { allow: 'OK', unauthenticated: 'UNAUTHENTICATED', forbidden: 'PERMISSION_DENIED' } as const;

type Judged =
  | { outcome: 'allow'; peer: VerifiedPeer }
  | { outcome: 'unauthenticated'; error: AuthError }
  | { outcome: 'forbidden'; peer: VerifiedPeer; error: AuthError };

// Authenticate (the connection's verification), then authorize.
function judge(result: PeerResult, authorizer: Authorizer): Judged {
  if (!result.ok) return { outcome: 'unauthenticated', error: result.error };
  const allowed = applyAuthorizer(authorizer, result.peer.id, result.peer.chain);
  return allowed.ok
    ? { outcome: 'allow', peer: result.peer }
    : { outcome: 'forbidden', peer: result.peer, error: allowed.error };
}

// `transport` is implied by the line's other fields (route and url are
// HTTP's), so the audit line keeps the shape it had before the field.
function auditFields(decision: AuthzDecision): object {
  const fields: Partial<AuthzDecision> = { ...decision };
  delete fields.transport;
  return fields;
}

/**
 * createMtlsServerCore builds the core from the sources (which must be
 * ready: the default rule is our own trust domain) and its settings.
 */
export function createMtlsServerCore(options: MtlsServerCoreOptions): MtlsServerCore {
  const { svidSource, bundleSource, events } = resolveSources(options);
  const verifier = new ConnectionVerifier(bundleSource);
  const defaultAllow = toAuthorizer(options.allow ?? authorizeMemberOf(svidSource.getX509Svid().id.trustDomain));
  const auditLevel = options.auditLevel ?? 'info';
  const recycle = new WeakMap<TLSSocket, number>();

  const selfId = (): string | undefined => {
    try {
      return svidSource.getX509Svid().id.toString();
    } catch {
      return undefined;
    }
  };

  // The span says who called (verified only), over what TLS, which rule
  // decided and how; a refusal is an error with its code as the reason.
  const annotate = (span: Span, request: DecisionRequest, judged: Judged): void => {
    const self = selfId();
    if (self !== undefined) span.setAttribute(SPAN_ATTRIBUTES.selfId, self);
    if (judged.outcome !== 'unauthenticated') span.setAttributes(peerAttributes(judged.peer));
    if (request.socket) span.setAttributes(tlsAttributes(handshakeInfoOf(request.socket, 'server')));
    span.setAttribute(SPAN_ATTRIBUTES.authzRule, request.authorizer.rule);
    span.setAttribute(SPAN_ATTRIBUTES.authzDecision, judged.outcome === 'allow' ? 'allow' : 'deny');
    if (judged.outcome !== 'allow') {
      span.setAttribute(SPAN_ATTRIBUTES.authzReason, judged.error.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${judged.error.code}: ${judged.error.message}` });
    }
  };

  const handshakeFailed = (error: AuthError, fields: object, msg: string): void => {
    options.log?.warn({ err: { code: error.code, message: error.message }, ...fields }, msg);
    options.onHandshakeError?.(error);
  };

  return {
    defaultAllow,
    verify: (socket) => verifier.verify(socket),
    serve(server, handlers = {}) {
      const stopIdentity = events ? keepServerIdentityCurrent(server, events, handlers.extra) : () => undefined;
      const onSecure = (socket: TLSSocket): void => {
        options.onHandshake?.(handshakeInfoOf(socket, 'server'));
        const result = verifier.verify(socket);
        if (result.ok) {
          handlers.onVerified?.(socket, result.peer);
          return;
        }
        const fields = { remote: socket.remoteAddress, claimed: claimedIdOf(socket) };
        handshakeFailed(result.error, fields, 'client certificate rejected');
        handlers.onRefused?.(socket, result.error);
      };
      const onClientError = (err: Error, socket: TLSSocket): void => {
        const error = new AuthError('AUTH_ERR_TLS_HANDSHAKE', `TLS handshake failed: ${err.message}`, { cause: err });
        handshakeFailed(error, { remote: socket.remoteAddress }, 'TLS handshake failed');
      };
      server.on('secureConnection', onSecure);
      server.on('tlsClientError', onClientError);
      return () => {
        stopIdentity();
        server.off('secureConnection', onSecure);
        server.off('tlsClientError', onClientError);
      };
    },
    // Each overload's decision is built for its request's transport.
    decide: ((request: DecisionRequest, log: AuditLogger | undefined = options.log): Decided => {
      const judged = judge(request.result, request.authorizer);
      if (request.span?.isRecording()) annotate(request.span, request, judged);
      const refusal = judged.outcome === 'allow' ? {} : { code: judged.error.code, reason: judged.error.message };
      const claimed =
        judged.outcome === 'unauthenticated' ? { claimed: request.socket ? claimedIdOf(request.socket) : null } : {};
      const common = {
        decision: judged.outcome === 'allow' ? 'allow' : 'deny',
        caller: judged.outcome === 'unauthenticated' ? null : judged.peer.id.toString(),
        rule: request.authorizer.rule,
        method: request.method,
      } as const;
      const decision: AuthzDecision =
        request.transport === 'http'
          ? {
              transport: 'http',
              ...common,
              status: HTTP_STATUS[judged.outcome],
              route: request.route,
              url: request.url,
              ...refusal,
              remote: request.remote,
              ...claimed,
            }
          : {
              transport: 'grpc',
              ...common,
              status: GRPC_STATUS[judged.outcome],
              ...refusal,
              remote: request.remote,
              ...claimed,
              ...(request.path === undefined ? {} : { path: request.path }),
            };
      if (auditLevel !== 'silent') log?.[auditLevel]({ authz: auditFields(decision) }, `authz ${decision.decision}`);
      options.onDecision?.(decision);
      return judged.outcome === 'allow'
        ? { ok: true, decision, peer: judged.peer }
        : { ok: false, decision, error: judged.error };
    }) as MtlsServerCore['decide'],
    recycleAt(socket, peerLeaf) {
      let at = recycle.get(socket);
      if (at === undefined) {
        // A withdrawn SVID (the agent answered PermissionDenied) leaves only the peer's leaf to go by.
        let ours: X509Certificate | undefined;
        try {
          ours = svidSource.getX509Svid().leaf;
        } catch {
          ours = undefined;
        }
        at = recycleAt(ours === undefined ? [peerLeaf] : [peerLeaf, ours]);
        recycle.set(socket, at);
      }
      return at;
    },
  };
}
