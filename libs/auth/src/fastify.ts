// @shop/auth/fastify: the fastify plugin that requires mTLS and authorizes
// callers per route, and the server options it needs.
export type { AllowRule } from './adapters/allow-rule.ts';
export type { AuditLevel, AuditLogger } from './adapters/audit.ts';
export {
  spiffeAuth,
  fastifyMtlsOptions,
  type SpiffeAuthOptions,
  type SpiffeRouteConfig,
  type RequestPeer,
  type AuthzDecision,
} from './adapters/fastify.ts';
