// Public API of @shop/service-kit: what every shop service shares.
export {
  ServiceError,
  ConfigError,
  CONFIG_ERROR_CODES,
  type ConfigErrorCode,
  IdentityWaitError,
  cutInput,
  quoteInput,
  serviceErrors,
  INPUT_QUOTE_LIMIT,
  type ServiceErrorOptions,
  type ServiceErrorFactory,
} from './errors.ts';
export {
  Env,
  readProcessConfig,
  LOG_LEVELS,
  MAX_IDENTITY_WAIT_SECONDS,
  type LogLevel,
  type ProcessConfig,
} from './config.ts';
export { loggerOptions, createLogger } from './logger.ts';
export {
  TRANSPORT_ENV,
  TRANSPORTS,
  SIDECAR_CALLER,
  SIDECAR_AUTHORIZATION,
  isLoopbackHost,
  requireLoopback,
  requireLoopbackUrl,
  sidecarIdentityView,
  auditSidecarCallers,
  type Transport,
  type ListenerSecurity,
} from './transport.ts';
export {
  DATABASE_UNAVAILABLE,
  DatabaseUnavailableError,
  DatabaseStartError,
  isUniqueViolation,
  type Database,
  type DatabaseEngine,
  type DatabaseHealth,
  type Migration,
  type Queryable,
  type SqlValue,
} from './db/database.ts';
export {
  readDatabaseConfig,
  databaseWhere,
  DATABASE_AUTH_MODES,
  type DatabaseAuth,
  type DatabaseConfig,
  type PostgresConfig,
  type SqliteConfig,
} from './db/database-config.ts';
export { openDatabase, type OpenDatabaseOptions } from './db/open-database.ts';
export { SqliteDatabase } from './db/sqlite-database.ts';
export { PostgresDatabase, isConnectionError, type ClientCertificate } from './db/postgres-database.ts';
export { createServiceMetrics, observeIdentity, authHooks, type ServiceMetrics, type Logger } from './metrics.ts';
export {
  IdentityHistory,
  IDENTITY_HISTORY_LIMIT,
  type IdentityEvent,
  type IdentityView,
  type TrustRoot,
} from './identity-view.ts';
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
export {
  tracingSettings,
  startTracing,
  type Tracing,
  type TracingSettings,
  type StartTracingOptions,
} from './tracing.ts';
export { onSignals, runSteps, type ShutdownStep, type Shutdown } from './shutdown.ts';
export {
  runService,
  httpUrl,
  type ServiceParts,
  type ServiceContext,
  type ServiceStore,
  type StartedService,
  type RunningService,
} from './run-service.ts';
