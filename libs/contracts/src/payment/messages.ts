// The payment API's answers, as they are on the wire (snake_case). The
// request bodies and their JSON schemas are in schemas.ts.
import type { ErrorBody } from '../errors.ts';

/** PaymentStatus is the outcome of a charge at the processor. */
export type PaymentStatus = 'succeeded' | 'declined';

/** ChargeResult is what a charge and a replay of it have in common. */
interface ChargeCommon {
  status: PaymentStatus;
  payment_id: string;
  order_id: string;
  amount: number;
  currency: string;
}

/** ChargeSucceeded is the body of `201` to `POST /api/charge`. */
export interface ChargeSucceeded extends ChargeCommon {
  status: 'succeeded';
}

/** ChargeDeclined is the body of `402 CARD_DECLINED` to `POST /api/charge`: an error body that is also a recorded payment. */
export interface ChargeDeclined extends ChargeCommon, ErrorBody {
  code: 'CARD_DECLINED';
  status: 'declined';
  decline_reason: string | null;
}

/** ChargeResponse is the body of a charge's answer that recorded a payment: 201 or 402. */
export type ChargeResponse = ChargeSucceeded | ChargeDeclined;

/** AlreadyChargedError is the body of `409 ORDER_ALREADY_CHARGED`: it names the payment that charged the order. */
export interface AlreadyChargedError extends ErrorBody {
  code: 'ORDER_ALREADY_CHARGED';
  payment_id: string;
}

/** RefundResponse is the body of `201` to `POST /api/refund`. */
export interface RefundResponse {
  status: 'refunded';
  refund_id: string;
  payment_id: string;
  amount: number;
}

/** RefundView is one refund of a payment, as PaymentView lists it. */
export interface RefundView {
  refund_id: string;
  amount: number;
  reason: string | null;
  created_at: string;
}

/** PaymentView is the body of `GET /api/payments/:id` and `GET /api/payments?order_id=`. */
export interface PaymentView {
  payment_id: string;
  order_id: string;
  user_id: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  /** decline_reason is there when status is "declined". */
  decline_reason?: string;
  card_last4: string;
  created_at: string;
  amount_refunded: number;
  refunds: RefundView[];
}
