import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_LATENCY_MS } from './config.ts';

/** DEFAULT_CARD is charged when a request names no card; it always succeeds. */
export const DEFAULT_CARD = '4242424242424242';

/** CardBehaviour is what the simulated processor does with one test card. */
export type CardBehaviour =
  { outcome: 'succeeded' } | { outcome: 'declined'; reason: string } | { outcome: 'processing_error' };

/** TEST_CARDS are the card numbers with a fixed outcome, after Stripe's test cards. */
export const TEST_CARDS: Readonly<Record<string, CardBehaviour>> = Object.freeze({
  [DEFAULT_CARD]: { outcome: 'succeeded' },
  '4000000000000002': { outcome: 'declined', reason: 'card_declined' },
  '4000000000009995': { outcome: 'declined', reason: 'insufficient_funds' },
  '4000000000000069': { outcome: 'declined', reason: 'expired_card' },
  '4000000000000119': { outcome: 'processing_error' },
});

/** ChargeResult is the processor's answer to a charge it could process. */
export type ChargeResult = { status: 'succeeded' } | { status: 'declined'; reason: string };

/** FaultSettings are the knobs that make the simulated processor slow or flaky. */
export interface FaultSettings {
  /** latencyMs is added before every processor answer. */
  readonly latencyMs: number;
  /** failureRate is the fraction (0..1) of charges that fail with a processing error. */
  readonly failureRate: number;
}

/** ProcessorError is a failure of the processor itself: nothing was charged and the same request may be retried. */
export class ProcessorError extends Error {
  readonly code = 'PROCESSOR_ERROR';

  constructor(message: string) {
    super(message);
    this.name = 'ProcessorError';
  }
}

/** CardProcessorOptions configure the simulated processor; `random` and `sleep` are injectable so tests are deterministic. */
export interface CardProcessorOptions {
  /** faults at start. Default: no latency, no failures. */
  faults?: Partial<FaultSettings>;
  /** random returns a number in [0, 1) for the failure-rate draw. Default: Math.random. */
  random?: () => number;
  /** sleep waits `ms` milliseconds. Default: node:timers/promises setTimeout. */
  sleep?: (ms: number) => Promise<unknown>;
}

/**
 * CardProcessor is the simulated card network: it answers by test card
 * number (TEST_CARDS; other numbers succeed when they pass the Luhn check
 * and are declined `incorrect_number` otherwise), after `latencyMs`, and
 * fails a `failureRate` fraction of charges with a ProcessorError. The fault
 * knobs can be changed while it runs.
 */
export class CardProcessor {
  #faults: FaultSettings;
  readonly #random: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;

  constructor(options: CardProcessorOptions = {}) {
    this.#faults = validateFaults({ latencyMs: 0, failureRate: 0, ...options.faults });
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? ((ms) => sleep(ms));
  }

  /** faults returns the current fault settings. */
  get faults(): FaultSettings {
    return this.#faults;
  }

  /** setFaults changes some fault settings and returns all of them; a value out of range throws a RangeError naming it. */
  setFaults(change: Partial<FaultSettings>): FaultSettings {
    this.#faults = validateFaults({ ...this.#faults, ...change });
    return this.#faults;
  }

  /** charge asks the processor to charge `amount` minor units to `cardNumber`. */
  async charge(request: { amount: number; currency: string; cardNumber: string }): Promise<ChargeResult> {
    const { latencyMs, failureRate } = this.#faults;
    if (latencyMs > 0) await this.#sleep(latencyMs);
    if (failureRate > 0 && this.#random() < failureRate) {
      throw new ProcessorError('the card processor failed (simulated by PAYMENT_FAILURE_RATE)');
    }
    const behaviour =
      TEST_CARDS[request.cardNumber] ?? (luhnValid(request.cardNumber) ? { outcome: 'succeeded' } : null);
    if (behaviour === null) return { status: 'declined', reason: 'incorrect_number' };
    switch (behaviour.outcome) {
      case 'succeeded':
        return { status: 'succeeded' };
      case 'declined':
        return { status: 'declined', reason: behaviour.reason };
      case 'processing_error':
        throw new ProcessorError('the card processor could not process this card (test card 4000000000000119)');
    }
  }

  /** refund asks the processor to give back part of a charge; only the latency knob applies. */
  async refund(): Promise<void> {
    const { latencyMs } = this.#faults;
    if (latencyMs > 0) await this.#sleep(latencyMs);
  }
}

/** maskCard returns what may be logged or stored of a card number: its last 4 digits. */
export function maskCard(cardNumber: string): string {
  return cardNumber.slice(-4);
}

function validateFaults(f: FaultSettings): FaultSettings {
  if (!Number.isInteger(f.latencyMs) || f.latencyMs < 0 || f.latencyMs > MAX_LATENCY_MS) {
    throw new RangeError(`latency_ms must be an integer between 0 and ${MAX_LATENCY_MS}, got ${String(f.latencyMs)}`);
  }
  if (!Number.isFinite(f.failureRate) || f.failureRate < 0 || f.failureRate > 1) {
    throw new RangeError(`failure_rate must be a number between 0 and 1, got ${String(f.failureRate)}`);
  }
  return Object.freeze({ latencyMs: f.latencyMs, failureRate: f.failureRate });
}

function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}
