import type { Dispatcher } from 'undici';
import {
  IDEMPOTENCY_KEY_HEADER,
  type ChargeBody,
  type ChargeResponse,
  type PaymentView,
  type RefundBody,
} from '@shop/contracts';
import { callJson, errorOf } from './http-call.ts';
import type { ChargeOutcome, ChargeRequest, PaymentClient } from './types.ts';
import { UpstreamError } from './upstream-error.ts';

const UPSTREAM = 'payment';

// A charge's answer (201, or 402 CARD_DECLINED) and a payment's view carry the
// outcome in the same fields (@shop/contracts ChargeResponse, PaymentView).
function outcomeOf(body: ChargeResponse | PaymentView): ChargeOutcome {
  const declineReason = 'decline_reason' in body ? body.decline_reason : undefined;
  return {
    status: body.status,
    payment_id: body.payment_id,
    ...(typeof declineReason === 'string' ? { decline_reason: declineReason } : {}),
  };
}

/** createPaymentHttpClient talks to payment's HTTP API over the given mTLS dispatcher. */
export function createPaymentHttpClient(baseUrl: string, dispatcher: Dispatcher, timeoutMs: number): PaymentClient {
  return {
    async charge(req: ChargeRequest): Promise<ChargeOutcome> {
      const body: ChargeBody = {
        order_id: req.orderId,
        amount: req.amount,
        currency: req.currency,
        user_id: req.userId,
      };
      const res = await callJson(UPSTREAM, dispatcher, `${baseUrl}/api/charge`, {
        method: 'POST',
        headers: { [IDEMPOTENCY_KEY_HEADER]: req.idempotencyKey },
        body,
        timeoutMs,
        sideEffects: true,
      });
      // 201 charged, 402 declined: both recorded a payment (a replay answers the same).
      if (res.status === 201 || res.status === 402) return outcomeOf(res.body as ChargeResponse);
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
      return outcomeOf(res.body as PaymentView);
    },

    async refund(paymentId: string, idempotencyKey: string): Promise<void> {
      const res = await callJson(UPSTREAM, dispatcher, `${baseUrl}/api/refund`, {
        method: 'POST',
        headers: { [IDEMPOTENCY_KEY_HEADER]: idempotencyKey },
        body: { payment_id: paymentId, reason: 'order failed' } satisfies RefundBody,
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
