import type { FastifyInstance } from 'fastify';
import { PaymentError } from '../errors.ts';
import { paymentParamsSchema, paymentQuerySchema } from '../schemas.ts';
import type { Payment, PaymentStore } from '../store.ts';
import type { RouteContext } from './context.ts';

/** paymentView is a payment as the API shows it, with its refunds. */
export function paymentView(store: PaymentStore, p: Payment): Record<string, unknown> {
  const refunds = store.refundsOf(p.paymentId);
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

/**
 * registerPaymentRoutes adds the reads: `GET /api/payments/:id` and
 * `GET /api/payments?order_id=` (the order's successful payment, else its
 * latest attempt; 409 PAYMENT_IN_PROGRESS while a charge of it still runs).
 */
export function registerPaymentRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Params: { id: string } }>('/api/payments/:id', { schema: { params: paymentParamsSchema } }, (request) => {
    const payment = ctx.store.getPayment(request.params.id);
    if (!payment) throw new PaymentError(404, 'PAYMENT_NOT_FOUND', `no payment ${request.params.id}`);
    return paymentView(ctx.store, payment);
  });

  app.get<{ Querystring: { order_id: string } }>(
    '/api/payments',
    { schema: { querystring: paymentQuerySchema } },
    (request) => {
      const orderId = request.query.order_id;
      const succeeded = ctx.store.succeededPaymentOf(orderId);
      if (succeeded) return paymentView(ctx.store, succeeded);
      // A reconciler must not read "no payment" while a charge is still at the processor.
      if (ctx.keys.chargeRunning(orderId)) {
        throw new PaymentError(
          409,
          'PAYMENT_IN_PROGRESS',
          `a charge of order ${orderId} is still being processed; retry after a second`,
          { headers: { 'retry-after': '1' } },
        );
      }
      const latest = ctx.store.latestPaymentOf(orderId);
      if (!latest) throw new PaymentError(404, 'PAYMENT_NOT_FOUND', `order ${orderId} has no payment`);
      return paymentView(ctx.store, latest);
    },
  );
}
