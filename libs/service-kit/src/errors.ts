/**
 * ServiceError is what a shop service answers with when a request cannot be
 * served: an HTTP status, a stable code and a message that says what to fix.
 * The error handler (http-server.ts) turns it into `{ code, message }`.
 */
export class ServiceError extends Error {
  /** statusCode is the HTTP status to answer with. */
  readonly statusCode: number;
  /** code is stable; clients match on it. */
  readonly code: string;
  /** headers are added to the error response (e.g. Retry-After). */
  readonly headers: Record<string, string>;
  /** details are extra fields of the error body beside `code` and `message` (e.g. the `payment_id` an order was charged by). */
  readonly details: Record<string, unknown>;

  constructor(statusCode: number, code: string, message: string, options: ServiceErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'ServiceError';
    this.statusCode = statusCode;
    this.code = code;
    this.headers = options.headers ?? {};
    this.details = options.details ?? {};
  }
}

/** ServiceErrorOptions are what a ServiceError carries beside its status, code and message. */
export interface ServiceErrorOptions {
  cause?: unknown;
  /** headers of the error response, e.g. `{ 'retry-after': '1' }`. */
  headers?: Record<string, string>;
  /** details are extra fields of the error body. */
  details?: Record<string, unknown>;
}

/** ServiceErrorFactory makes the ServiceError of one code of a service's error table. */
export type ServiceErrorFactory<Code extends string> = (
  code: Code,
  message: string,
  options?: ServiceErrorOptions,
) => ServiceError;

/**
 * serviceErrors returns the factory of a service's errors: the HTTP status
 * comes from `table` (a service's table in @shop/contracts), so a code can
 * never be answered with another status than the one documented.
 */
export function serviceErrors<Code extends string>(
  table: Readonly<Record<Code, { readonly http: number }>>,
): ServiceErrorFactory<Code> {
  return (code, message, options) => new ServiceError(table[code].http, code, message, options);
}

/** INPUT_QUOTE_LIMIT is how many characters of a caller's value an error message quotes. */
export const INPUT_QUOTE_LIMIT = 64;

/**
 * cutInput returns a caller's text for an error message, cut to
 * INPUT_QUOTE_LIMIT characters with "…" after: the reply names what was sent
 * without echoing a huge input back whole (a megabyte in a gRPC status
 * message is larger than a client accepts, and kills its connection).
 */
export function cutInput(text: string): string {
  return text.length > INPUT_QUOTE_LIMIT ? `${text.slice(0, INPUT_QUOTE_LIMIT)}…` : text;
}

/** quoteInput renders a caller's value for an error message as JSON, cut like cutInput. */
export function quoteInput(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > INPUT_QUOTE_LIMIT
      ? `${JSON.stringify(value.slice(0, INPUT_QUOTE_LIMIT))}…`
      : JSON.stringify(value);
  }
  // JSON.stringify gives undefined (despite its type) for undefined and functions.
  const json = JSON.stringify(value) as string | undefined;
  return cutInput(json ?? String(value));
}

/**
 * CONFIG_ERROR_CODES are the codes a ConfigError has: SVC_ERR_CONFIG_INVALID
 * for a value that is wrong in itself, SVC_ERR_SIDECAR_NOT_LOOPBACK for an
 * address that is fine but must be a loopback one because SHOP_TRANSPORT is
 * "sidecar" (plaintext must not leave the machine).
 */
export const CONFIG_ERROR_CODES = ['SVC_ERR_CONFIG_INVALID', 'SVC_ERR_SIDECAR_NOT_LOOPBACK'] as const;

/** ConfigErrorCode is one of CONFIG_ERROR_CODES. */
export type ConfigErrorCode = (typeof CONFIG_ERROR_CODES)[number];

/** ConfigError names the environment variable that is wrong and what it must be. */
export class ConfigError extends Error {
  /** code is SVC_ERR_CONFIG_INVALID unless the constructor was given another of CONFIG_ERROR_CODES. */
  readonly code: ConfigErrorCode;
  /** variable is the environment variable at fault. */
  readonly variable: string;

  constructor(variable: string, message: string, code: ConfigErrorCode = 'SVC_ERR_CONFIG_INVALID') {
    super(`${variable}: ${message}`);
    this.code = code;
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** IdentityWaitError says that a service gave up waiting for its first identity, and what was in the way. */
export class IdentityWaitError extends Error {
  readonly code = 'SVC_ERR_IDENTITY_TIMEOUT';
  /** reason is what kept the identity away, as /health/ready said it. */
  readonly reason: string;

  constructor(message: string, reason: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'IdentityWaitError';
    this.reason = reason;
  }
}
