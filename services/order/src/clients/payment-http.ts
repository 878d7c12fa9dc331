import type { Dispatcher } from 'undici';
import { callJson, errorOf } from './http-call.ts';
import type { ChargeOutcome, ChargeRequest, PaymentClient } from './types.ts';
import { UpstreamError } from './upstream-error.ts';

const UPSTREAM = 'payment';

function outcomeOf(body: unknown): ChargeOutcome {
  const b = body as { status?: unknown; payment_id?: unknown; id?: unknown; decline_reason?: unknown };
  const paymentId = typeof b.payment_id === 'string' ? b.payment_id : typeof b.id === 'string' ? b.id : '';
  const status = b.status === 'declined' ? 'declined' : 'succeeded';
  return {
    status,
    payment_id: paymentId,
    ...(typeof b.decline_reason === 'string' ? { decline_reason: b.decline_reason } : {}),
  };
}

/** createPaymentHttpClient talks to payment's HTTP API over the given mTLS dispatcher. */
export function createPaymentHttpClient(baseUrl: string, dispatcher: Dispatcher, timeoutMs: number): PaymentClient {
  return {
    async charge(req: ChargeRequest): Promise<ChargeOutcome> {
      const res = await callJson(UPSTREAM, dispatcher, `${baseUrl}/api/charge`, {
        method: 'POST',
        headers: { 'idempotency-key': req.idempotencyKey },
        body: { order_id: req.orderId, amount: req.amount, currency: req.currency, user_id: req.userId },
        timeoutMs,
        sideEffects: true,
      });
      if (res.status === 200 || res.status === 201 || res.status === 402) {
        const b = res.body as { status?: unknown; code?: unknown; message?: unknown };
        if (res.status === 402 && b.status === undefined) {
          return {
            status: 'declined',
            payment_id: outcomeOf(res.body).payment_id,
            decline_reason: typeof b.message === 'string' ? b.message : 'declined',
          };
        }
        return outcomeOf(res.body);
      }
      const { code, message } = errorOf(res.body, res.status);
      // The same key is still being processed: the outcome is not known yet.
      if (code === 'IDEMPOTENCY_KEY_IN_PROGRESS')
        throw new UpstreamError(UPSTREAM, 'unknown', code, message, { status: res.status });
      throw new UpstreamError(UPSTREAM, 'rejected', code, message, { status: res.status });
    },

    async findByOrder(orderId: string): Promise<ChargeOutcome | null> {
      const res = await callJson(
        UPSTREAM,
        dispatcher,
        `${baseUrl}/api/payments?order_id=${encodeURIComponent(orderId)}`,
        { timeoutMs },
      );
      if (res.status === 404) return null;
      if (res.status !== 200) {
        const { code, message } = errorOf(res.body, res.status);
        throw new UpstreamError(UPSTREAM, 'rejected', code, message, { status: res.status });
      }
      return outcomeOf(res.body);
    },

    async refund(paymentId: string, idempotencyKey: string): Promise<void> {
      const res = await callJson(UPSTREAM, dispatcher, `${baseUrl}/api/refund`, {
        method: 'POST',
        headers: { 'idempotency-key': idempotencyKey },
        body: { payment_id: paymentId, reason: 'order failed' },
        timeoutMs,
        sideEffects: true,
      });
      if (res.status >= 400) {
        const { code, message } = errorOf(res.body, res.status);
        throw new UpstreamError(UPSTREAM, 'rejected', code, message, { status: res.status });
      }
    },

    async close(): Promise<void> {
      await dispatcher.close();
    },
  };
}
