// Public API of @shop/service-kit: what every shop service shares.
export { ServiceError, ConfigError, cutInput, quoteInput, INPUT_QUOTE_LIMIT } from './errors.ts';
export { Env } from './config.ts';
export { loggerOptions } from './logger.ts';
export { openDatabase, transaction, type Migration } from './db.ts';
export { createServiceMetrics, observeIdentity, authHooks, type ServiceMetrics, type Logger } from './metrics.ts';
export { createBreaker, retry, type BreakerOptions, type RetryOptions } from './breaker.ts';
export {
  serviceFastifyOptions,
  installHttpBasics,
  HTTP_LIMITS,
  HTTP_PROTOCOL_ERRORS,
  UNMATCHED_ROUTE,
  listen,
  type HttpProtocolErrorCode,
  type ListenAddress,
} from './http-server.ts';
export { startOpsServer, identityCheck, type OpsServerOptions, type ReadinessCheck } from './ops-server.ts';
export { onSignals, runSteps, type ShutdownStep } from './shutdown.ts';
