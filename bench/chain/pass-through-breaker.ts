// A stand-in for opossum's CircuitBreaker that only calls the action: no
// timeout, no statistics, no events, never open. Loaded in place of opossum
// by no-breakers.ts, to measure the shop's order path with breakers off.
import { EventEmitter } from 'node:events';

/** PassThroughBreaker has the part of opossum's CircuitBreaker API the shop uses, and does nothing but call through. */
export default class PassThroughBreaker<A extends unknown[], R> extends EventEmitter {
  readonly opened = false;
  readonly halfOpen = false;
  readonly closed = true;
  readonly stats = { failures: 0, fires: 0, timeouts: 0 };
  readonly #action: (...args: A) => Promise<R>;

  constructor(action: (...args: A) => Promise<R>, _options?: unknown) {
    super();
    this.#action = action;
  }

  /** fire calls the action with `args`. */
  fire(...args: A): Promise<R> {
    return this.#action(...args);
  }

  /** shutdown forgets the listeners. */
  shutdown(): void {
    this.removeAllListeners();
  }
}
