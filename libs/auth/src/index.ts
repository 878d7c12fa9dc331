// Public API of @shop/auth. Everything a service needs is exported here.
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
export type { AllowRule } from './authorize/allow-rule.ts';
export type { AuthzDecision, HttpDecision, GrpcDecision, Transport } from './server/authz-decision.ts';
export {
  spiffeAuth,
  fastifyMtlsOptions,
  type SpiffeAuthOptions,
  type SpiffeRouteConfig,
  type RequestPeer,
} from './adapters/fastify.ts';
export type { AuditLevel, AuditLogger } from './server/audit.ts';
export { createMtlsDispatcher, createMtlsConnector, type MtlsDispatcherOptions } from './adapters/undici.ts';
export {
  grpcChannelCredentials,
  createGrpcMtls,
  type GrpcMtls,
  type GrpcServerOptions,
  type GrpcClientOptions,
} from './adapters/grpc.ts';
export {
  JwtSvid,
  parseAndValidateJwtSvid,
  parseInsecureJwtSvid,
  jwtSvidAlgorithms,
  type JwtSvidAlgorithm,
  type JwtSvidValidationOptions,
} from './svid/jwt-svid.ts';
export {
  parseEndpointAddress,
  endpointFromEnv,
  resolveEndpoint,
  targetFromAddress,
  SOCKET_ENV,
  type WorkloadEndpoint,
} from './workloadapi/address.ts';
export type { BackoffOptions } from './workloadapi/backoff.ts';
export {
  WorkloadApiClient,
  type WorkloadApiClientOptions,
  type Watcher,
  type X509Context,
  type JwtSvidParams,
  type JwtSvidResult,
  type ValidatedJwtSvid,
} from './workloadapi/client.ts';
export { WorkloadX509Source, type WorkloadX509SourceOptions } from './workloadapi/x509-source.ts';
export { WorkloadJwtSource, type WorkloadJwtSourceOptions } from './workloadapi/jwt-source.ts';
