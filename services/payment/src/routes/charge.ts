import type { FastifyInstance } from 'fastify';
import { PaymentError } from '../errors.ts';
import { IDEMPOTENCY_KEY_HEADER, fingerprint, keyHint, parseIdempotencyKey } from '../idempotency.ts';
import { DEFAULT_CARD, ProcessorError, maskCard } from '../processor.ts';
import { CURRENCIES, chargeBodySchema, type ChargeBody } from '../schemas.ts';
import type { Payment } from '../store.ts';
import { audit, callerOf, newId, requireIdempotencyKey, sendJson, type RouteContext } from './context.ts';

/** chargeResponse is the body of a charge's answer: 201 when it succeeded, 402 CARD_DECLINED when declined. */
export function chargeResponse(p: Payment): { statusCode: 201 | 402; body: Record<string, unknown> } {
  const common = {
    status: p.status,
    payment_id: p.paymentId,
    order_id: p.orderId,
    amount: p.amount,
    currency: p.currency,
  };
  if (p.status === 'succeeded') return { statusCode: 201, body: common };
  return {
    statusCode: 402,
    body: {
      code: 'CARD_DECLINED',
      message: `the card was declined (${p.declineReason ?? 'unknown'}); ask the customer for another card`,
      ...common,
      decline_reason: p.declineReason,
    },
  };
}

function alreadyCharged(orderId: string, paymentId: string): PaymentError {
  return new PaymentError(
    409,
    'ORDER_ALREADY_CHARGED',
    `order ${orderId} was already charged by payment ${paymentId}; look it up instead of charging again`,
    { details: { payment_id: paymentId } },
  );
}

/**
 * registerChargeRoute adds `POST /api/charge`: charge an order once, under
 * the caller's Idempotency-Key, at most one successful payment per order.
 */
export function registerChargeRoute(app: FastifyInstance, ctx: RouteContext): void {
  app.post<{ Body: ChargeBody }>(
    '/api/charge',
    {
      schema: { body: chargeBodySchema },
      preValidation: requireIdempotencyKey,
    },
    async (request, reply) => {
      const body = request.body;
      const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
      if (!(CURRENCIES as readonly string[]).includes(body.currency)) {
        throw new PaymentError(
          400,
          'UNKNOWN_CURRENCY',
          `currency must be one of ${CURRENCIES.join(', ')}, got ${JSON.stringify(body.currency)}`,
        );
      }
      const caller = callerOf(request);
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

      const begun = ctx.keys.begin({
        caller,
        key,
        operation: 'charge',
        fingerprint: fingerprint('charge', body),
        orderId: body.order_id,
      });
      if (begun.replay) {
        const stored = JSON.parse(begun.body) as { payment_id?: string };
        audit(request, { ...base, result: 'replayed', payment_id: stored.payment_id });
        return sendJson(reply, begun.statusCode, begun.body, true);
      }

      const { lock } = begun;
      let sent: { statusCode: number; json: string };
      try {
        const existing = ctx.store.succeededPaymentOf(body.order_id);
        if (existing) throw alreadyCharged(body.order_id, existing.paymentId);
        let result;
        try {
          result = await ctx.processor.charge({ amount: body.amount, currency: body.currency, cardNumber });
        } catch (err) {
          if (!(err instanceof ProcessorError)) throw err;
          throw new PaymentError(
            502,
            'PROCESSOR_ERROR',
            `${err.message}; nothing was charged, retry with the same Idempotency-Key`,
            { headers: { 'retry-after': '1' }, cause: err },
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
          createdAt: new Date(ctx.now()).toISOString(),
        };
        const answer = chargeResponse(payment);
        const json = JSON.stringify(answer.body);
        ctx.store.transaction(() => {
          // Another key may have charged this order while the processor was busy with ours;
          // the simulated processor only charges when this transaction commits, so refusing here charges nothing.
          const winner = payment.status === 'succeeded' ? ctx.store.succeededPaymentOf(body.order_id) : undefined;
          if (winner) throw alreadyCharged(body.order_id, winner.paymentId);
          ctx.store.insertPayment(payment);
          ctx.keys.complete(lock, answer.statusCode, json);
        });
        audit(request, {
          ...base,
          result: payment.status,
          payment_id: payment.paymentId,
          ...(payment.declineReason ? { decline_reason: payment.declineReason } : {}),
        });
        sent = { statusCode: answer.statusCode, json };
      } catch (err) {
        ctx.keys.release(lock);
        const code = err instanceof PaymentError ? err.code : 'INTERNAL';
        const paymentId = err instanceof PaymentError ? (err.details.payment_id as string | undefined) : undefined;
        audit(request, { ...base, result: code, ...(paymentId ? { payment_id: paymentId } : {}) });
        throw err;
      }
      return sendJson(reply, sent.statusCode, sent.json);
    },
  );
}
