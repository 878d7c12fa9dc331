import { ConfigError } from './errors.ts';
import { requireLoopback, TRANSPORT_ENV, TRANSPORTS, type Transport } from './transport.ts';

/**
 * Env reads typed configuration from environment variables, once, at start:
 * every read either returns a valid value (or the default) or throws a
 * ConfigError naming the variable and what it must be.
 */
export class Env {
  readonly #env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.#env = env;
  }

  #raw(name: string): string | undefined {
    const v = this.#env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  /** string returns the variable, or `fallback` when unset. */
  string(name: string, fallback: string): string {
    return this.#raw(name) ?? fallback;
  }

  /** optional returns the variable, or undefined when unset. */
  optional(name: string): string | undefined {
    return this.#raw(name);
  }

  /** int returns an integer within [min, max]. */
  int(name: string, fallback: number, { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {}): number {
    const raw = this.#raw(name);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got ${JSON.stringify(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  /** port returns a TCP port (0 picks a free one). */
  port(name: string, fallback: number): number {
    return this.int(name, fallback, { min: 0, max: 65535 });
  }

  /** number returns a finite number within [min, max]. */
  number(name: string, fallback: number, { min = -Infinity, max = Infinity } = {}): number {
    const raw = this.#raw(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new ConfigError(name, `must be a number, got ${JSON.stringify(raw)}`);
    if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  /** oneOf returns one of `values`. */
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.#raw(name);
    if (raw === undefined) return fallback;
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(name, `must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    }
    return raw as T;
  }

  /** url returns an absolute URL with one of the given protocols. */
  url(name: string, fallback: string, protocols: readonly string[] = ['https:']): string {
    const raw = this.#raw(name) ?? fallback;
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new ConfigError(name, `must be an absolute URL, got ${JSON.stringify(raw)}`);
    }
    if (!protocols.includes(u.protocol)) {
      throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${JSON.stringify(raw)}`);
    }
    return raw.replace(/\/+$/, '');
  }

  /** hostPort returns a "host:port" target (for gRPC). */
  hostPort(name: string, fallback: string): string {
    const raw = this.#raw(name) ?? fallback;
    if (!/^[A-Za-z0-9.\-_]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(raw)) {
      throw new ConfigError(name, `must be host:port, got ${JSON.stringify(raw)}`);
    }
    return raw;
  }
}

/** LOG_LEVELS are the values LOG_LEVEL takes (pino's levels). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** LogLevel is one of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** ProcessConfig is what every service reads the same way: where it listens, its ops port, its log level and how long it waits for its identity. */
export interface ProcessConfig {
  /** host the API listeners and the ops port bind to (HOST). */
  readonly host: string;
  /** opsPort serves health and metrics, plaintext (OPS_PORT). */
  readonly opsPort: number;
  /** reusePort: LISTEN_REUSE_PORT, a new instance may bind our ports before we drain (zero-downtime hand-over on one host). */
  readonly reusePort: boolean;
  /** logLevel of the service's logger (LOG_LEVEL). */
  readonly logLevel: LogLevel;
  /** identityWaitSeconds bounds the wait for the first identity; 0 waits as long as it takes (IDENTITY_WAIT_SECONDS). */
  readonly identityWaitSeconds: number;
  /**
   * transport is "mtls" (the default: mTLS in-process, an identity required)
   * or "sidecar": plaintext API listeners on a loopback HOST only, no identity
   * in the process, callers authorized by the sidecar in front (SHOP_TRANSPORT).
   */
  readonly transport: Transport;
}

/** MAX_IDENTITY_WAIT_SECONDS is the largest IDENTITY_WAIT_SECONDS: setTimeout's limit is about 24.8 days. */
export const MAX_IDENTITY_WAIT_SECONDS = 2_000_000;

/**
 * readProcessConfig reads the ProcessConfig variables (HOST, OPS_PORT,
 * LISTEN_REUSE_PORT, LOG_LEVEL, IDENTITY_WAIT_SECONDS, SHOP_TRANSPORT) with
 * `env`; a service's loadConfig spreads it into its own, so they are
 * validated with the rest. With SHOP_TRANSPORT=sidecar a HOST that is not a
 * loopback address throws SVC_ERR_SIDECAR_NOT_LOOPBACK.
 */
export function readProcessConfig(env: Env, defaults: { opsPort: number }): ProcessConfig {
  const host = env.string('HOST', '127.0.0.1');
  const transport = env.oneOf(TRANSPORT_ENV, TRANSPORTS, 'mtls');
  if (transport === 'sidecar') requireLoopback('HOST', host, 'every API listener');
  return {
    host,
    transport,
    opsPort: env.port('OPS_PORT', defaults.opsPort),
    reusePort: env.oneOf('LISTEN_REUSE_PORT', ['true', 'false'] as const, 'false') === 'true',
    logLevel: env.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    identityWaitSeconds: env.int('IDENTITY_WAIT_SECONDS', 0, { min: 0, max: MAX_IDENTITY_WAIT_SECONDS }),
  };
}
