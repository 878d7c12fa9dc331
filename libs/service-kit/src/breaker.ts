import CircuitBreaker from 'opossum';
import type { Logger, ServiceMetrics } from './metrics.ts';

/** BreakerOptions tune one circuit breaker; every field has a default fit for a call on a LAN. */
export interface BreakerOptions {
  /** timeoutMs after which a call counts as failed. Default: 1000. */
  timeoutMs?: number;
  /** volumeThreshold is the number of calls in the window before the breaker may open. Default: 5. */
  volumeThreshold?: number;
  /** errorThresholdPercentage of failed calls that opens the breaker. Default: 50. */
  errorThresholdPercentage?: number;
  /** resetTimeoutMs the breaker stays open before letting one trial call through. Default: 3000. */
  resetTimeoutMs?: number;
  /** rollingWindowMs over which failures are counted. Default: 10000. */
  rollingWindowMs?: number;
  /** isFailure decides whether an error counts against the upstream. Default: every error. */
  isFailure?: (err: unknown) => boolean;
}

const STATE = { closed: 0, halfOpen: 1, open: 2 } as const;

/**
 * createBreaker wraps `action` in an opossum circuit breaker named after the
 * upstream and protocol ("payment:http"), with state changes logged and
 * exported (`shop_circuit_breaker_state`). Errors `isFailure` rejects (a 4xx
 * answer, say) pass through without counting against the upstream.
 */
export function createBreaker<A extends unknown[], R>(
  name: string,
  action: (...args: A) => Promise<R>,
  options: BreakerOptions,
  deps: { metrics: ServiceMetrics; log: Logger },
): CircuitBreaker<A, R> {
  const isFailure = options.isFailure;
  const breaker = new CircuitBreaker<A, R>(action, {
    name,
    timeout: options.timeoutMs ?? 1000,
    volumeThreshold: options.volumeThreshold ?? 5,
    errorThresholdPercentage: options.errorThresholdPercentage ?? 50,
    resetTimeout: options.resetTimeoutMs ?? 3000,
    rollingCountTimeout: options.rollingWindowMs ?? 10_000,
    errorFilter: isFailure ? (err: unknown) => !isFailure(err) : undefined,
  });
  const { metrics, log } = deps;
  metrics.breakerState.set({ breaker: name }, STATE.closed);
  breaker.on('open', () => {
    metrics.breakerState.set({ breaker: name }, STATE.open);
    metrics.breakerEvents.inc({ breaker: name, event: 'open' });
    log.warn({ breaker: name, stats: pickStats(breaker) }, 'circuit breaker opened');
  });
  breaker.on('halfOpen', () => {
    metrics.breakerState.set({ breaker: name }, STATE.halfOpen);
    metrics.breakerEvents.inc({ breaker: name, event: 'halfOpen' });
    log.info({ breaker: name }, 'circuit breaker half-open: trying one call');
  });
  breaker.on('close', () => {
    metrics.breakerState.set({ breaker: name }, STATE.closed);
    metrics.breakerEvents.inc({ breaker: name, event: 'close' });
    log.info({ breaker: name }, 'circuit breaker closed');
  });
  const count = (event: string) => (): void => {
    metrics.breakerEvents.inc({ breaker: name, event });
  };
  breaker.on('success', count('success'));
  breaker.on('failure', count('failure'));
  breaker.on('timeout', count('timeout'));
  breaker.on('reject', count('reject'));
  return breaker;
}

function pickStats(b: CircuitBreaker): { failures: number; fires: number; timeouts: number } {
  const s = b.stats;
  return { failures: s.failures, fires: s.fires, timeouts: s.timeouts };
}

/** RetryOptions bound a retry loop; use it only for idempotent calls. */
export interface RetryOptions {
  /** attempts in total, the first included. Default: 3. */
  attempts?: number;
  /** baseMs of the exponential backoff. Default: 50. */
  baseMs?: number;
  /** maxMs caps one wait. Default: 500. */
  maxMs?: number;
  /** retryOn decides whether an error is worth another attempt. Default: always. */
  retryOn?: (err: unknown) => boolean;
}

/** retry runs `fn` up to `attempts` times with full-jitter exponential backoff between tries. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 3;
  const base = options.baseMs ?? 50;
  const max = options.maxMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || (options.retryOn && !options.retryOn(err))) throw err;
      const wait = Math.random() * Math.min(max, base * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
