// Public API of @shop/service-kit: what every shop service shares.
export { ServiceError, ConfigError, IdentityWaitError, cutInput, quoteInput, INPUT_QUOTE_LIMIT } from './errors.ts';
export { Env } from './config.ts';
export { loggerOptions, createLogger } from './logger.ts';
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
export {
  startOpsServer,
  identityCheck,
  identityNotReadyReason,
  type OpsServerOptions,
  type ReadinessCheck,
  type ReadinessResult,
} from './ops-server.ts';
export {
  waitForIdentity,
  identityWaitSeconds,
  StartupGate,
  IDENTITY_WAIT_ENV,
  type WaitForIdentityOptions,
} from './startup.ts';
export { onSignals, runSteps, type ShutdownStep, type Shutdown } from './shutdown.ts';
