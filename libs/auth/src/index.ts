// Public API of @shop/auth, the root entry: SPIFFE IDs, SVIDs, bundles,
// verification, authorizers, identity sources and the TLS builders. The
// adapters and the Workload API client have their own entries
// (@shop/auth/fastify, /undici, /grpc, /workloadapi), so importing one does
// not load the others' dependencies.
export { AuthError, errorHints, isAuthError, type AuthErrorCode } from './errors.ts';
export { neverReachedPeer } from './never-reached-peer.ts';
export { TrustDomain } from './spiffeid/trust-domain.ts';
export { SpiffeId } from './spiffeid/spiffe-id.ts';
export { X509Svid } from './svid/x509-svid.ts';
export type { X509SvidSource } from './svid/x509-svid-source.ts';
export { X509Bundle, X509BundleSet, type X509BundleSource, type X509BundleSetSource } from './bundle/x509-bundle.ts';
export { JwtBundle, JwtBundleSet, type JwtAuthority, type JwtBundleSource } from './bundle/jwt-bundle.ts';
export { parseSpiffeBundleJson, marshalSpiffeBundleJson, type SpiffeBundle } from './bundle/spiffe-bundle.ts';
export type { ParsedSpiffeBundle, ParseSpiffeBundleOptions } from './bundle/spiffe-bundle.ts';
export type { BundleWarning, BundleWarningEvent } from './bundle/bundle-warning.ts';
export { checkOwnX509Svid } from './svid/x509-svid-check.ts';
export { verifyX509Svid, type PeerRole, type VerifiedPeer, type VerifyX509SvidOptions } from './verify/x509-verify.ts';
export {
  VerdictCache,
  DEFAULT_VERDICT_CACHE_SIZE,
  type VerdictCacheOptions,
  type VerdictCacheStats,
} from './verify/verdict-cache.ts';
export {
  authorizeAny,
  authorizeId,
  authorizeOneOf,
  authorizeMemberOf,
  authorizeAnyOf,
  adaptMatcher,
  type Authorizer,
  type AuthorizeResult,
  type Matcher,
} from './authorize/authorizer.ts';
export type {
  IdentitySource,
  IdentityKind,
  IdentitySourceEvents,
  IdentitySourceOptions,
  RotatedEvent,
  ExpiringEvent,
  WithdrawnEvent,
  X509Material,
  IdentityLifecycle,
} from './source/identity-source.ts';
export type { X509Source, X509Sources, SourceOptions } from './source/x509-sources.ts';
export { identityConfigFromEnv, type IdentityConfig, type IdentityFiles } from './source/identity-config.ts';
export { FileIdentitySource, type FileSourceOptions } from './source/file-source.ts';
export { createIdentitySource, type CreateIdentitySourceOptions } from './source/create-identity-source.ts';
export { TrustBridgeSource, type TrustBridgeOptions } from './source/trust-bridge-source.ts';
export { mtlsServerOptions, keepServerIdentityCurrent } from './tls/server-options.ts';
export {
  connectMtls,
  type MtlsConnectOptions,
  type ResumableSession,
  type VerifiedConnection,
} from './tls/client-connect.ts';
export { ConnectionVerifier, type PeerResult } from './tls/connection-verifier.ts';
// Decision and rule types are shared by the fastify and gRPC entries (types only: nothing to load).
export type { AllowRule } from './authorize/allow-rule.ts';
export type { AuthzDecision, HttpDecision, GrpcDecision, Transport } from './server/authz-decision.ts';
export type { AuditLevel, AuditLogger } from './server/audit.ts';
export {
  JwtSvid,
  parseAndValidateJwtSvid,
  parseInsecureJwtSvid,
  jwtSvidAlgorithms,
  type JwtSvidAlgorithm,
  type JwtSvidValidationOptions,
} from './svid/jwt-svid.ts';
// Federation through SPIFFE bundle endpoints (client, server, and an identity source that uses the client).
export {
  BundleEndpointClient,
  type BundleEndpointClientOptions,
  type BundleEndpointClientEvents,
  type BundleUpdatedEvent,
} from './federation/bundle-endpoint-client.ts';
export {
  BundleEndpointServer,
  type BundleEndpointServerOptions,
  type ServeHttpsSpiffe,
  type ServeHttpsWeb,
} from './federation/bundle-endpoint-server.ts';
export type {
  BundleEndpointConfig,
  BundleEndpointProfile,
  HttpsSpiffeProfile,
  HttpsWebProfile,
} from './federation/bundle-endpoint.ts';
export { FederatedSource, type FederatedSourceOptions } from './federation/federated-source.ts';
