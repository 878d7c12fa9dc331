// The payment rules: charge an order at most once, refund at most what was
// charged, each under the caller's idempotency key, each ledger write in one
// store transaction with its key's answer. The routes (app.ts) only read the
// request and send what these return; the SQL is in store.ts.
import { randomUUID } from 'node:crypto';
import {
  CURRENCIES,
  PAYMENT_ERRORS,
  type ChargeBody,
  type ChargeResponse,
  type PaymentView,
  type RefundBody,
  type RefundResponse,
} from '@shop/contracts';
import { ServiceError, isUniqueViolation } from '@shop/service-kit';
import { paymentError } from './errors.ts';
import { IdempotencyKeys, fingerprint, keyHint } from './idempotency.ts';
import { DEFAULT_CARD, ProcessorError, maskCard, type CardProcessor } from './processor.ts';
import type { Payment, PaymentStore, Refund } from './store.ts';

/** AuditEntry is the one log line written per charge or refund (never a card number or a whole idempotency key). */
export interface AuditEntry {
  operation: 'charge' | 'refund';
  caller: string;
  result: string;
  payment_id?: string;
  refund_id?: string;
  order_id?: string;
  amount?: number;
  currency?: string;
  decline_reason?: string;
  card_last4?: string;
  idempotency_key_sha256: string;
}

/** Audit writes an AuditEntry (app.ts: to the request's log). */
export type Audit = (entry: AuditEntry) => void;

/** Answer is what a charge or refund answers: the status and the JSON body, byte for byte the same on a replay. */
export interface Answer {
  statusCode: number;
  json: string;
  /** replayed is true when the answer is the stored one of an earlier request under the same key. */
  replayed: boolean;
}

/** OperationRequest is a charge or refund as the routes hand it over: the verified caller, its key and the validated body. */
export interface OperationRequest<B> {
  caller: string;
  key: string;
  body: B;
}

/** PaymentServiceOptions configure a PaymentService; tests pass their own clock. */
export interface PaymentServiceOptions {
  /** now is the clock in ms since the epoch. Default: Date.now. */
  now?: () => number;
  /** staleAfterMs after which an in-progress idempotency key may be taken over. Default: 60 s. */
  staleAfterMs?: number;
}

/** newId returns a fresh opaque ID such as `pay_3f9c…`. */
export function newId(prefix: 'pay' | 're'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

/** chargeResponse is the body of a charge's answer: 201 when it succeeded, 402 CARD_DECLINED when declined. */
export function chargeResponse(p: Payment): { statusCode: 201 | 402; body: ChargeResponse } {
  const common = {
    payment_id: p.paymentId,
    order_id: p.orderId,
    amount: p.amount,
    currency: p.currency,
  };
  if (p.status === 'succeeded') return { statusCode: 201, body: { status: 'succeeded', ...common } };
  return {
    statusCode: 402,
    body: {
      code: 'CARD_DECLINED',
      message: `the card was declined (${p.declineReason ?? 'unknown'}); ask the customer for another card`,
      status: 'declined',
      ...common,
      decline_reason: p.declineReason,
    },
  };
}

function alreadyCharged(orderId: string, paymentId: string): ServiceError {
  return paymentError(
    'ORDER_ALREADY_CHARGED',
    `order ${orderId} was already charged by payment ${paymentId}; look it up instead of charging again`,
    { details: { payment_id: paymentId } },
  );
}

/**
 * PaymentService owns the ledger's rules: Stripe-style idempotency keys
 * (IdempotencyKeys), at most one successful payment per order, refunds
 * bounded by what is left of a charge, and the card processor called outside
 * any transaction but recorded inside one.
 */
export class PaymentService {
  readonly #store: PaymentStore;
  readonly #processor: CardProcessor;
  readonly #keys: IdempotencyKeys;
  readonly #now: () => number;

  constructor(store: PaymentStore, processor: CardProcessor, options: PaymentServiceOptions = {}) {
    this.#store = store;
    this.#processor = processor;
    this.#now = options.now ?? Date.now;
    this.#keys = new IdempotencyKeys(store, { now: this.#now, staleAfterMs: options.staleAfterMs });
  }

  /**
   * charge charges an order once under the caller's key: the stored answer
   * on a replay, else the processor's outcome (201 or 402 CARD_DECLINED),
   * recorded with the key in one transaction. Throws UNKNOWN_CURRENCY,
   * ORDER_ALREADY_CHARGED, PROCESSOR_ERROR or an idempotency error; any
   * throw frees the key for a retry.
   */
  async charge(req: OperationRequest<ChargeBody>, audit: Audit): Promise<Answer> {
    const { caller, key, body } = req;
    if (!(CURRENCIES as readonly string[]).includes(body.currency)) {
      throw paymentError(
        'UNKNOWN_CURRENCY',
        `currency must be one of ${CURRENCIES.join(', ')}, got ${JSON.stringify(body.currency)}`,
      );
    }
    const cardNumber = body.card_number ?? DEFAULT_CARD;
    const base = {
      operation: 'charge' as const,
      caller,
      order_id: body.order_id,
      amount: body.amount,
      currency: body.currency,
      card_last4: maskCard(cardNumber),
      idempotency_key_sha256: keyHint(key),
    };

    const begun = await this.#keys.begin({
      caller,
      key,
      operation: 'charge',
      fingerprint: fingerprint('charge', body),
      orderId: body.order_id,
    });
    if (begun.replay) {
      const stored = JSON.parse(begun.body) as { payment_id?: string };
      audit({ ...base, result: 'replayed', payment_id: stored.payment_id });
      return { statusCode: begun.statusCode, json: begun.body, replayed: true };
    }

    const { lock } = begun;
    try {
      const existing = await this.#store.succeededPaymentOf(body.order_id);
      if (existing) throw alreadyCharged(body.order_id, existing.paymentId);
      let result;
      try {
        result = await this.#processor.charge({ amount: body.amount, currency: body.currency, cardNumber });
      } catch (err) {
        if (!(err instanceof ProcessorError)) throw err;
        throw paymentError(
          'PROCESSOR_ERROR',
          `${err.message}; nothing was charged, retry with the same Idempotency-Key`,
          {
            headers: { 'retry-after': '1' },
            cause: err,
          },
        );
      }
      const payment: Payment = {
        paymentId: newId('pay'),
        orderId: body.order_id,
        userId: body.user_id,
        amount: body.amount,
        currency: body.currency,
        status: result.status,
        declineReason: result.status === 'declined' ? result.reason : null,
        cardLast4: maskCard(cardNumber),
        caller,
        createdAt: new Date(this.#now()).toISOString(),
      };
      const answer = chargeResponse(payment);
      const json = JSON.stringify(answer.body);
      try {
        await this.#store.transaction(async () => {
          // Another key may have charged this order while the processor was busy with ours;
          // the simulated processor only charges when this transaction commits, so refusing here charges nothing.
          const winner =
            payment.status === 'succeeded' ? await this.#store.succeededPaymentOf(body.order_id) : undefined;
          if (winner) throw alreadyCharged(body.order_id, winner.paymentId);
          await this.#store.insertPayment(payment);
          await this.#keys.complete(lock, answer.statusCode, json);
        });
      } catch (err) {
        // Another replica's charge of this order committed after our check: the unique index refused ours.
        if (!isUniqueViolation(err)) throw err;
        throw await this.#chargedMeanwhile(body.order_id, err);
      }
      audit({
        ...base,
        result: payment.status,
        payment_id: payment.paymentId,
        ...(payment.declineReason ? { decline_reason: payment.declineReason } : {}),
      });
      return { statusCode: answer.statusCode, json, replayed: false };
    } catch (err) {
      await this.#keys.release(lock).catch(() => undefined);
      const code = codeOf(err);
      const paymentId = detail(err, 'payment_id');
      audit({ ...base, result: code, ...(paymentId ? { payment_id: paymentId } : {}) });
      throw err;
    }
  }

  /**
   * refund gives back all (default) or part of a succeeded payment under the
   * caller's key: the stored answer on a replay, else 201, recorded with the
   * key in one transaction. Throws PAYMENT_NOT_FOUND, PAYMENT_NOT_REFUNDABLE,
   * REFUND_EXCEEDS_CHARGE or an idempotency error; any throw frees the key.
   */
  async refund(req: OperationRequest<RefundBody>, audit: Audit): Promise<Answer> {
    const { caller, key, body } = req;
    const base = {
      operation: 'refund' as const,
      caller,
      payment_id: body.payment_id,
      idempotency_key_sha256: keyHint(key),
    };

    const begun = await this.#keys.begin({
      caller,
      key,
      operation: 'refund',
      fingerprint: fingerprint('refund', body),
    });
    if (begun.replay) {
      const stored = JSON.parse(begun.body) as { refund_id?: string; amount?: number };
      audit({ ...base, result: 'replayed', refund_id: stored.refund_id, amount: stored.amount });
      return { statusCode: begun.statusCode, json: begun.body, replayed: true };
    }

    const { lock } = begun;
    try {
      const before = await this.#refundable(body.payment_id);
      const amount = checkAmount(body.payment_id, body.amount, before.remaining);
      await this.#processor.refund();
      const refund: Refund = {
        refundId: newId('re'),
        paymentId: body.payment_id,
        amount,
        reason: body.reason ?? null,
        caller,
        createdAt: new Date(this.#now()).toISOString(),
      };
      const answer: RefundResponse = {
        status: 'refunded',
        refund_id: refund.refundId,
        payment_id: refund.paymentId,
        amount,
      };
      const json = JSON.stringify(answer);
      await this.#store.transaction(async () => {
        // Checked again, holding the payment's row: a refund under another
        // key (on any replica) may have landed while the processor worked on ours.
        await this.#store.lockPayment(body.payment_id);
        checkAmount(body.payment_id, amount, (await this.#refundable(body.payment_id)).remaining);
        await this.#store.insertRefund(refund);
        await this.#keys.complete(lock, 201, json);
      });
      audit({
        ...base,
        result: 'refunded',
        refund_id: refund.refundId,
        order_id: before.payment.orderId,
        amount,
        currency: before.payment.currency,
      });
      return { statusCode: 201, json, replayed: false };
    } catch (err) {
      await this.#keys.release(lock).catch(() => undefined);
      audit({ ...base, result: codeOf(err), amount: body.amount });
      throw err;
    }
  }

  /** payment returns a payment with its refunds, or throws PAYMENT_NOT_FOUND. */
  async payment(paymentId: string): Promise<PaymentView> {
    const payment = await this.#store.getPayment(paymentId);
    if (!payment) throw paymentError('PAYMENT_NOT_FOUND', `no payment ${paymentId}`);
    return this.#view(payment);
  }

  /**
   * paymentOfOrder returns the order's successful payment, else its latest
   * attempt; PAYMENT_IN_PROGRESS while a charge of it still runs (a
   * reconciler must not read "no payment" then), else PAYMENT_NOT_FOUND.
   */
  async paymentOfOrder(orderId: string): Promise<PaymentView> {
    const succeeded = await this.#store.succeededPaymentOf(orderId);
    if (succeeded) return this.#view(succeeded);
    if (await this.#keys.chargeRunning(orderId)) {
      throw paymentError(
        'PAYMENT_IN_PROGRESS',
        `a charge of order ${orderId} is still being processed; retry after a second`,
        { headers: { 'retry-after': '1' } },
      );
    }
    const latest = await this.#store.latestPaymentOf(orderId);
    if (!latest) throw paymentError('PAYMENT_NOT_FOUND', `order ${orderId} has no payment`);
    return this.#view(latest);
  }

  /** #refundable returns what may still be refunded of a payment, or throws why nothing may. */
  async #refundable(paymentId: string): Promise<{ payment: Payment; remaining: number }> {
    const payment = await this.#store.getPayment(paymentId);
    if (!payment) throw paymentError('PAYMENT_NOT_FOUND', `no payment ${paymentId}`);
    if (payment.status !== 'succeeded') {
      throw paymentError(
        'PAYMENT_NOT_REFUNDABLE',
        `payment ${paymentId} was ${payment.status}, so nothing was charged and there is nothing to refund`,
      );
    }
    return { payment, remaining: payment.amount - (await this.#store.refundedAmount(paymentId)) };
  }

  async #chargedMeanwhile(orderId: string, cause: unknown): Promise<Error> {
    const winner = await this.#store.succeededPaymentOf(orderId);
    if (!winner) return cause as Error;
    return alreadyCharged(orderId, winner.paymentId);
  }

  async #view(p: Payment): Promise<PaymentView> {
    const refunds = await this.#store.refundsOf(p.paymentId);
    return {
      payment_id: p.paymentId,
      order_id: p.orderId,
      user_id: p.userId,
      status: p.status,
      amount: p.amount,
      currency: p.currency,
      ...(p.declineReason ? { decline_reason: p.declineReason } : {}),
      card_last4: p.cardLast4,
      created_at: p.createdAt,
      amount_refunded: refunds.reduce((sum, r) => sum + r.amount, 0),
      refunds: refunds.map((r) => ({
        refund_id: r.refundId,
        amount: r.amount,
        reason: r.reason,
        created_at: r.createdAt,
      })),
    };
  }
}

function checkAmount(paymentId: string, requested: number | undefined, remaining: number): number {
  const amount = requested ?? remaining;
  if (remaining === 0) {
    throw paymentError('REFUND_EXCEEDS_CHARGE', `payment ${paymentId} is already fully refunded`);
  }
  if (amount > remaining) {
    throw paymentError(
      'REFUND_EXCEEDS_CHARGE',
      `refund amount ${amount} exceeds the ${remaining} left to refund on payment ${paymentId}`,
    );
  }
  return amount;
}

// The audit line's result of a failed operation: its code when it is one of ours.
function codeOf(err: unknown): string {
  return err instanceof ServiceError && err.code in PAYMENT_ERRORS ? err.code : 'INTERNAL';
}

function detail(err: unknown, name: string): string | undefined {
  const value = err instanceof ServiceError ? err.details[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}
