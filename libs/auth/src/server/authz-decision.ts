/** Transport names the protocol a decision was made for. */
export type Transport = 'http' | 'grpc';

/** DecisionFields are what every authorization decision reports, whatever the transport. */
interface DecisionFields {
  decision: 'allow' | 'deny';
  /** caller is the verified SPIFFE ID, or null when the caller is not authenticated. */
  caller: string | null;
  /** rule describes the authorizer that decided. */
  rule: string;
  /** method is the HTTP method, or the gRPC method path ("*" for an unverified caller of a method without its own rule). */
  method: string;
  /** code is the refusal's error code, on deny. */
  code?: string;
  /** reason is the refusal's error message, on deny. */
  reason?: string;
  /** remote is the caller's IP address. */
  remote?: string;
  /**
   * claimed is the SPIFFE ID (URI SAN) the refused client certificate claims,
   * unverified, on 401 / UNAUTHENTICATED only (null: no certificate or no URI
   * SAN). For logs, never a metric label: the caller picks it.
   */
  claimed?: string | null;
}

/** HttpDecision is the decision on one HTTP request (the fastify plugin). */
export interface HttpDecision extends DecisionFields {
  transport: 'http';
  status: 200 | 401 | 403;
  /** route is the matched route's pattern, or "unmatched": never the URL, so it is safe as a metric label. */
  route: string;
  /** url is the request's URL as sent (query included, cut at 256 characters), for the audit line only. */
  url: string;
}

/** GrpcDecision is the decision on one gRPC call (the gRPC front). */
export interface GrpcDecision extends DecisionFields {
  transport: 'grpc';
  status: 'OK' | 'UNAUTHENTICATED' | 'PERMISSION_DENIED';
  /**
   * path is the method path as the caller sent it (cut to 256 characters), on
   * calls over a connection whose client certificate did not verify. Those
   * calls never reach grpc-js, so whether the method exists is not known:
   * `method` is the path only if it has its own rule, else "*". For logs,
   * never a metric label: the caller picks it.
   */
  path?: string;
}

/**
 * AuthzDecision is reported once per request or call, for audit logs and
 * metrics; `transport` tells HTTP and gRPC decisions apart. The audit line
 * (`{ authz }`, "authz allow" / "authz deny") carries every field but
 * `transport`, which its other fields already imply.
 */
export type AuthzDecision = HttpDecision | GrpcDecision;
