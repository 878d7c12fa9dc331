// @shop/auth/grpc: channel credentials for gRPC clients and the server side
// (credentials, per-call authorization, audit) for @grpc/grpc-js.
export type { AllowRule } from './authorize/allow-rule.ts';
export type { AuditLevel, AuditLogger } from './server/audit.ts';
export {
  grpcChannelCredentials,
  grpcClientInterceptor,
  createGrpcMtls,
  type GrpcMtls,
  type GrpcServerOptions,
  type GrpcClientOptions,
} from './adapters/grpc.ts';
export type { GrpcDecision } from './server/authz-decision.ts';
