import { createHash, randomUUID } from 'node:crypto';
import { paymentError } from './errors.ts';
import type { IdempotencyOperation, PaymentStore } from './store.ts';

/** IDEMPOTENCY_KEY_HEADER is the request header that carries the key (lower case, as Node gives headers); the contract defines it. */
export { IDEMPOTENCY_KEY_HEADER } from '@shop/contracts';

/** STALE_AFTER_MS is how long an in-progress key is held before a retry may take it over (its request is presumed dead). */
export const STALE_AFTER_MS = 60_000;

const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/**
 * parseIdempotencyKey returns the `Idempotency-Key` header's value or throws
 * IDEMPOTENCY_KEY_REQUIRED (absent) or IDEMPOTENCY_KEY_INVALID (not 1–255
 * printable ASCII characters).
 */
export function parseIdempotencyKey(value: unknown): string {
  if (value === undefined || value === '') {
    throw paymentError(
      'IDEMPOTENCY_KEY_REQUIRED',
      'header Idempotency-Key is required: send a unique value (e.g. a UUID) per charge or refund and reuse it on retries',
    );
  }
  if (typeof value !== 'string' || !KEY_PATTERN.test(value)) {
    throw paymentError('IDEMPOTENCY_KEY_INVALID', 'header Idempotency-Key must be 1 to 255 printable ASCII characters');
  }
  return value;
}

/**
 * fingerprint is the hash of a request's canonical form (operation plus the
 * validated body with its keys sorted), so a retry matches regardless of
 * property order.
 */
export function fingerprint(operation: IdempotencyOperation, body: object): string {
  const canonical = JSON.stringify(body, Object.keys(body).sort());
  return createHash('sha256').update(`${operation}\n${canonical}`).digest('hex');
}

/** keyHint identifies a key in logs without revealing it: the first 12 hex digits of its SHA-256. */
export function keyHint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** IdempotencyLock is held by the one request that executes under a key. */
export interface IdempotencyLock {
  readonly caller: string;
  readonly key: string;
  readonly token: string;
}

/** BeginResult says whether to execute the request (holding the lock) or to replay the stored answer. */
export type BeginResult =
  | { readonly replay: false; readonly lock: IdempotencyLock }
  | { readonly replay: true; readonly statusCode: number; readonly body: string };

/** IdempotencyRequest describes a request about to run under a key. */
export interface IdempotencyRequest {
  /** caller is the SPIFFE ID the key belongs to; keys of different callers never meet. */
  caller: string;
  key: string;
  operation: IdempotencyOperation;
  fingerprint: string;
  /** orderId of a charge, so a reconciler can tell a running charge from none. */
  orderId?: string;
}

/**
 * IdempotencyKeys implements Stripe's idempotency semantics over the store:
 * a key is scoped to its caller; the first request under it runs, and its
 * answer is stored (`complete`, in the same transaction as the ledger write);
 * a retry with the same body gets that answer back, with a different body
 * IDEMPOTENCY_KEY_REUSED, while the first still runs
 * IDEMPOTENCY_KEY_IN_PROGRESS. A request that ends without an answer worth
 * keeping (an error) `release`s the key so it can be retried. A lock older
 * than `staleAfterMs` belongs to a crashed request and is taken over.
 */
export class IdempotencyKeys {
  readonly #store: PaymentStore;
  readonly #now: () => number;
  readonly #staleAfterMs: number;

  constructor(store: PaymentStore, options: { now?: () => number; staleAfterMs?: number } = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#staleAfterMs = options.staleAfterMs ?? STALE_AFTER_MS;
  }

  /**
   * begin claims the key for this request, or returns the stored answer, or
   * throws 422/409. Two replicas beginning the same key at once: the
   * database's primary key lets one insert; the other's insert waits for it
   * and then finds the row, in progress (409) or done (its answer).
   */
  async begin(req: IdempotencyRequest): Promise<BeginResult> {
    return this.#store.transaction(async (): Promise<BeginResult> => {
      const now = this.#now();
      const token = randomUUID();
      const lock: IdempotencyLock = { caller: req.caller, key: req.key, token };
      let rec = await this.#store.getKey(req.caller, req.key);
      if (!rec) {
        const inserted = await this.#store.insertKey(
          {
            caller: req.caller,
            key: req.key,
            operation: req.operation,
            fingerprint: req.fingerprint,
            orderId: req.orderId ?? null,
            state: 'in_progress',
            lockToken: token,
            lockedAt: now,
            statusCode: null,
            response: null,
          },
          new Date(now).toISOString(),
        );
        if (inserted) return { replay: false, lock };
        rec = await this.#store.getKey(req.caller, req.key);
        if (!rec) throw inProgress();
      }
      if (rec.operation !== req.operation) {
        throw paymentError(
          'IDEMPOTENCY_KEY_REUSED',
          `this Idempotency-Key was already used for POST /api/${rec.operation}; use a new key for a new request`,
        );
      }
      if (rec.fingerprint !== req.fingerprint) {
        throw paymentError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was already used with a different request body; retry with the same body, or use a new key for a new request',
        );
      }
      if (rec.state === 'done' && rec.statusCode !== null && rec.response !== null) {
        return { replay: true, statusCode: rec.statusCode, body: rec.response };
      }
      if (rec.lockedAt !== null && now - rec.lockedAt < this.#staleAfterMs) throw inProgress();
      // Taken over only if nobody else took it over first (the lock token is compared in the UPDATE).
      if (!(await this.#store.relockKey(req.caller, req.key, rec.lockToken, token, now))) throw inProgress();
      return { replay: false, lock };
    });
  }

  /**
   * complete stores the final answer under the key. Call it inside the
   * store transaction that writes the ledger, so both land or neither does;
   * it throws if the lock was taken over meanwhile, which rolls back the write.
   */
  async complete(lock: IdempotencyLock, statusCode: number, body: string): Promise<void> {
    if (!(await this.#store.completeKey(lock.caller, lock.key, lock.token, statusCode, body))) {
      throw paymentError(
        'IDEMPOTENCY_KEY_IN_PROGRESS',
        `this request ran longer than ${this.#staleAfterMs / 1000} s and a retry took over its Idempotency-Key; nothing was recorded by this one`,
        { headers: { 'retry-after': '1' } },
      );
    }
  }

  /** release frees a key whose request ends without a stored answer; a no-op once completed or taken over. */
  async release(lock: IdempotencyLock): Promise<void> {
    if (!this.#store.isOpen) return;
    await this.#store.deleteKey(lock.caller, lock.key, lock.token);
  }

  /** chargeRunning says whether a live (not stale) charge of `orderId` is in progress. */
  chargeRunning(orderId: string): Promise<boolean> {
    return this.#store.chargeRunningFor(orderId, this.#now() - this.#staleAfterMs);
  }
}

function inProgress(): Error {
  return paymentError(
    'IDEMPOTENCY_KEY_IN_PROGRESS',
    'a request with this Idempotency-Key is still being processed; retry after a second to get its answer',
    { headers: { 'retry-after': '1' } },
  );
}
