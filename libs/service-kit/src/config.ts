import { ConfigError } from './errors.ts';

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
