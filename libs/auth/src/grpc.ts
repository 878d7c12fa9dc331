// @shop/auth/grpc: channel credentials for gRPC clients and the server side
// (credentials, per-call authorization, audit) for @grpc/grpc-js.
export type { AllowRule } from './adapters/allow-rule.ts';
export type { AuditLevel, AuditLogger } from './adapters/audit.ts';
export {
  grpcChannelCredentials,
  createGrpcMtls,
  type GrpcMtls,
  type GrpcServerOptions,
  type GrpcClientOptions,
  type GrpcDecision,
} from './adapters/grpc.ts';
