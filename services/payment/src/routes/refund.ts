import type { FastifyInstance } from 'fastify';
import { PaymentError } from '../errors.ts';
import { IDEMPOTENCY_KEY_HEADER, fingerprint, keyHint, parseIdempotencyKey } from '../idempotency.ts';
import { refundBodySchema, type RefundBody } from '../schemas.ts';
import type { Payment, PaymentStore, Refund } from '../store.ts';
import { audit, callerOf, newId, requireIdempotencyKey, sendJson, type RouteContext } from './context.ts';

/** refundableAmount returns what may still be refunded of `payment`, or throws why nothing may. */
function refundableAmount(store: PaymentStore, paymentId: string): { payment: Payment; remaining: number } {
  const payment = store.getPayment(paymentId);
  if (!payment) throw new PaymentError(404, 'PAYMENT_NOT_FOUND', `no payment ${paymentId}`);
  if (payment.status !== 'succeeded') {
    throw new PaymentError(
      409,
      'PAYMENT_NOT_REFUNDABLE',
      `payment ${paymentId} was ${payment.status}, so nothing was charged and there is nothing to refund`,
    );
  }
  return { payment, remaining: payment.amount - store.refundedAmount(paymentId) };
}

function checkAmount(paymentId: string, requested: number | undefined, remaining: number): number {
  const amount = requested ?? remaining;
  if (remaining === 0) {
    throw new PaymentError(409, 'REFUND_EXCEEDS_CHARGE', `payment ${paymentId} is already fully refunded`);
  }
  if (amount > remaining) {
    throw new PaymentError(
      409,
      'REFUND_EXCEEDS_CHARGE',
      `refund amount ${amount} exceeds the ${remaining} left to refund on payment ${paymentId}`,
    );
  }
  return amount;
}

/**
 * registerRefundRoute adds `POST /api/refund`: refund all (default) or part
 * of a succeeded payment, under the caller's Idempotency-Key.
 */
export function registerRefundRoute(app: FastifyInstance, ctx: RouteContext): void {
  app.post<{ Body: RefundBody }>(
    '/api/refund',
    {
      schema: { body: refundBodySchema },
      preValidation: requireIdempotencyKey,
    },
    async (request, reply) => {
      const body = request.body;
      const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
      const caller = callerOf(request);
      const base = {
        operation: 'refund' as const,
        caller,
        payment_id: body.payment_id,
        idempotency_key_sha256: keyHint(key),
      };

      const begun = ctx.keys.begin({ caller, key, operation: 'refund', fingerprint: fingerprint('refund', body) });
      if (begun.replay) {
        const stored = JSON.parse(begun.body) as { refund_id?: string; amount?: number };
        audit(request, { ...base, result: 'replayed', refund_id: stored.refund_id, amount: stored.amount });
        return sendJson(reply, begun.statusCode, begun.body, true);
      }

      const { lock } = begun;
      let json: string;
      try {
        const before = refundableAmount(ctx.store, body.payment_id);
        const amount = checkAmount(body.payment_id, body.amount, before.remaining);
        await ctx.processor.refund();
        const refund: Refund = {
          refundId: newId('re'),
          paymentId: body.payment_id,
          amount,
          reason: body.reason ?? null,
          caller,
          createdAt: new Date(ctx.now()).toISOString(),
        };
        json = JSON.stringify({ status: 'refunded', refund_id: refund.refundId, payment_id: refund.paymentId, amount });
        ctx.store.transaction(() => {
          // Checked again: a refund under another key may have landed while the processor worked on ours.
          checkAmount(body.payment_id, amount, refundableAmount(ctx.store, body.payment_id).remaining);
          ctx.store.insertRefund(refund);
          ctx.keys.complete(lock, 201, json);
        });
        audit(request, {
          ...base,
          result: 'refunded',
          refund_id: refund.refundId,
          order_id: before.payment.orderId,
          amount,
          currency: before.payment.currency,
        });
      } catch (err) {
        ctx.keys.release(lock);
        audit(request, { ...base, result: err instanceof PaymentError ? err.code : 'INTERNAL', amount: body.amount });
        throw err;
      }
      return sendJson(reply, 201, json);
    },
  );
}
