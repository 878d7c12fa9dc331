import { AuthError } from '../errors.ts';

// Written by hand: the backoff packages on npm wrap a promise-returning
// function in a retry loop, while a reconnecting stream needs only "how long
// until the next attempt" and "forget the failures, it worked".

/** BackoffOptions configure a Backoff; every field has a default. */
export interface BackoffOptions {
  /** initialMs is the base delay before the first retry. Default: 200. */
  initialMs?: number;
  /** maxMs caps every delay. Default: 30000. */
  maxMs?: number;
  /** factor multiplies the base delay after each failure. Default: 2. */
  factor?: number;
  /**
   * jitter spreads clients apart: "full" waits random(0, d), "equal" waits
   * d/2 + random(0, d/2), where d is the capped exponential delay. Default: "equal".
   */
  jitter?: 'full' | 'equal';
  /** random returns a number in [0, 1); tests inject a fixed one. Default: Math.random. */
  random?: () => number;
}

/** Backoff computes capped, jittered, exponential delays between reconnect attempts. */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: 'full' | 'equal';
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = positive(options.initialMs ?? 200, 'initialMs');
    this.#maxMs = positive(options.maxMs ?? 30_000, 'maxMs');
    this.#factor = options.factor ?? 2;
    if (!Number.isFinite(this.#factor) || this.#factor < 1) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `backoff factor must be a number ≥ 1 (got ${String(options.factor)})`,
      );
    }
    this.#jitter = options.jitter ?? 'equal';
    this.#random = options.random ?? Math.random;
  }

  /** attempts is the number of delays handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** next returns the delay in milliseconds before the next attempt and counts one more failure. */
  next(): number {
    // The exponent is bounded so that a long outage cannot overflow to Infinity.
    const capped = Math.min(this.#maxMs, this.#initialMs * this.#factor ** Math.min(this.#attempt, 64));
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    const delay = this.#jitter === 'full' ? capped * r : capped / 2 + (capped / 2) * r;
    return Math.round(delay);
  }

  /** reset forgets past failures; call it after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new AuthError(
      'AUTH_ERR_CONFIG_INVALID',
      `backoff ${name} must be a positive number of milliseconds (got ${String(value)})`,
    );
  }
  return value;
}
