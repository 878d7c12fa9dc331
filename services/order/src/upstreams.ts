import type CircuitBreaker from 'opossum';
import { createBreaker, retry, type Logger, type ServiceMetrics } from '@shop/service-kit';
import { orderError } from './errors.ts';
import type { ChargeOutcome, ChargeRequest, InventoryClient, PaymentClient, Product } from './clients/types.ts';
import { isRejected, UpstreamError } from './clients/upstream-error.ts';

/** UpstreamOptions tune the breakers and retries around the clients. */
export interface UpstreamOptions {
  timeoutMs: number;
  resetTimeoutMs: number;
  metrics: ServiceMetrics;
  log: Logger;
  /** breakers false calls upstreams directly (no opossum): only for measuring what the breakers cost. Default: true. */
  breakers?: boolean;
}

type Fn = (...args: never[]) => Promise<unknown>;

/**
 * Guarded wraps a client so that every call goes through that upstream's
 * circuit breaker (one per upstream and protocol), and idempotent calls are
 * retried (bounded, jittered) while the breaker stays closed. An open
 * breaker fails fast with UpstreamError code BREAKER_OPEN.
 */
class Guarded {
  readonly name: string;
  readonly #breaker: CircuitBreaker<[Fn, unknown[]]> | undefined;
  readonly #resetTimeoutMs: number;
  #openedAt = 0;

  constructor(name: string, o: UpstreamOptions) {
    this.name = name;
    this.#resetTimeoutMs = o.resetTimeoutMs;
    if (o.breakers === false) {
      this.#breaker = undefined;
      return;
    }
    this.#breaker = createBreaker(
      name,
      (fn: Fn, args: unknown[]) => fn(...(args as never[])),
      { timeoutMs: o.timeoutMs, resetTimeoutMs: o.resetTimeoutMs, isFailure: (err) => !isRejected(err) },
      { metrics: o.metrics, log: o.log },
    );
    this.#breaker.on('open', () => {
      this.#openedAt = Date.now();
    });
  }

  /** isOpen is true while calls fail fast. */
  get isOpen(): boolean {
    return this.#breaker?.opened ?? false;
  }

  /** state is "closed", "open" or "halfOpen" (for the demo's display). */
  get state(): 'closed' | 'open' | 'halfOpen' {
    if (!this.#breaker) return 'closed';
    return this.#breaker.opened ? 'open' : this.#breaker.halfOpen ? 'halfOpen' : 'closed';
  }

  /** retryAfterSeconds is how long until the breaker lets a trial call through. */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.#openedAt + this.#resetTimeoutMs - Date.now()) / 1000));
  }

  /**
   * call runs `fn` through the breaker, retried when `idempotent`. Once any
   * attempt's outcome is unknown (it may have reached the upstream and taken
   * effect), a later attempt that fails without an answer (open breaker,
   * refused connection, 5xx) cannot make the outcome known again: the call
   * then fails as `unknown`, so the saga asks before it gives up.
   */
  async call<T>(fn: () => Promise<T>, idempotent: boolean): Promise<T> {
    let unknown: UpstreamError | undefined;
    const once = async (): Promise<T> => {
      try {
        return this.#breaker ? ((await this.#breaker.fire(fn, [])) as T) : await fn();
      } catch (err) {
        const e = this.#translate(err);
        if (e instanceof UpstreamError && e.kind === 'unknown') unknown ??= e;
        throw e;
      }
    };
    try {
      if (!idempotent) return await once();
      return await retry(once, {
        attempts: 3,
        baseMs: 50,
        maxMs: 300,
        retryOn: (err) => err instanceof UpstreamError && err.kind !== 'rejected' && err.code !== 'BREAKER_OPEN',
      });
    } catch (err) {
      if (unknown && err instanceof UpstreamError && err.kind === 'unavailable') {
        throw new UpstreamError(
          err.upstream,
          'unknown',
          err.code,
          `${err.message.slice(err.upstream.length + 2)} (after an earlier attempt whose outcome is unknown: ${unknown.code})`,
          { status: err.status, cause: err },
        );
      }
      throw err;
    }
  }

  #translate(err: unknown): unknown {
    const code = (err as { code?: string }).code;
    if (code === 'EOPENBREAKER')
      return new UpstreamError(this.name, 'unavailable', 'BREAKER_OPEN', `circuit breaker ${this.name} is open`, {
        cause: err,
      });
    if (code === 'ETIMEDOUT')
      return new UpstreamError(this.name, 'unknown', 'TIMEOUT', `no answer within the timeout`, { cause: err });
    return err;
  }

  shutdown(): void {
    this.#breaker?.shutdown();
  }
}

/** Upstreams are the order service's guarded clients of inventory and payment. */
export class Upstreams {
  readonly inventory: InventoryClient;
  readonly payment: PaymentClient;
  readonly #inv: Guarded;
  readonly #pay: Guarded;

  constructor(inventory: InventoryClient, payment: PaymentClient, o: UpstreamOptions) {
    this.inventory = inventory;
    this.payment = payment;
    this.#inv = new Guarded(`inventory:${inventory.protocol}`, o);
    this.#pay = new Guarded('payment:http', o);
  }

  /** breakerStates reports each breaker's state, by name. */
  breakerStates(): Record<string, 'closed' | 'open' | 'halfOpen'> {
    return { [this.#inv.name]: this.#inv.state, [this.#pay.name]: this.#pay.state };
  }

  /** failFastIfOpen answers 503 with Retry-After when an upstream's breaker is open. */
  failFastIfOpen(which: ('inventory' | 'payment')[]): void {
    for (const w of which) {
      const g = w === 'inventory' ? this.#inv : this.#pay;
      if (g.isOpen) {
        const after = g.retryAfterSeconds();
        throw orderError(
          'UPSTREAM_UNAVAILABLE',
          `${w} is unavailable (circuit breaker ${g.name} is open); retry in ${after} s`,
          { headers: { 'retry-after': String(after) } },
        );
      }
    }
  }

  listProducts(): Promise<Product[]> {
    return this.#inv.call(() => this.inventory.listProducts(), true);
  }
  reserve(orderId: string, productId: string, quantity: number): Promise<void> {
    return this.#inv.call(() => this.inventory.reserve(orderId, productId, quantity), true);
  }
  /** release treats "nothing reserved" as done: compensation must be idempotent. */
  async release(orderId: string): Promise<void> {
    try {
      await this.#inv.call(() => this.inventory.release(orderId), true);
    } catch (err) {
      if (err instanceof UpstreamError && err.kind === 'rejected' && err.code === 'RESERVATION_NOT_FOUND') return;
      throw err;
    }
  }
  commit(orderId: string): Promise<void> {
    return this.#inv.call(() => this.inventory.commit(orderId), true);
  }
  /** charge is retried only because the idempotency key makes a repeat harmless. */
  charge(req: ChargeRequest): Promise<ChargeOutcome> {
    return this.#pay.call(() => this.payment.charge(req), true);
  }
  findCharge(orderId: string): Promise<ChargeOutcome | null> {
    return this.#pay.call(() => this.payment.findByOrder(orderId), true);
  }
  refund(paymentId: string, key: string): Promise<void> {
    return this.#pay.call(() => this.payment.refund(paymentId, key), true);
  }

  async close(): Promise<void> {
    this.#inv.shutdown();
    this.#pay.shutdown();
    await Promise.allSettled([this.inventory.close(), this.payment.close()]);
  }
}
