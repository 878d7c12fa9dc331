// @shop/auth/fastify: the fastify plugin that requires mTLS and authorizes
// callers per route, and the server options it needs.
export type { AllowRule } from './authorize/allow-rule.ts';
export type { AuditLevel, AuditLogger } from './server/audit.ts';
export {
  spiffeAuth,
  fastifyMtlsOptions,
  type SpiffeAuthOptions,
  type SpiffeRouteConfig,
  type RequestPeer,
} from './adapters/fastify.ts';
export type { AuthzDecision, HttpDecision } from './server/authz-decision.ts';
