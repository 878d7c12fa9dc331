import { ServiceError } from '@shop/service-kit';

/**
 * PAYMENT_ERROR_CODES lists every code this service answers with, beside
 * service-kit's (`INVALID_REQUEST`, `NOT_FOUND`, `INTERNAL`), fastify's body
 * errors (`FST_ERR_CTP_*`) and the auth plugin's (`AUTH_ERR_*`). The README
 * documents each one; a test keeps the two in step.
 */
export const PAYMENT_ERROR_CODES = [
  'IDEMPOTENCY_KEY_REQUIRED',
  'IDEMPOTENCY_KEY_INVALID',
  'IDEMPOTENCY_KEY_REUSED',
  'IDEMPOTENCY_KEY_IN_PROGRESS',
  'UNKNOWN_CURRENCY',
  'CARD_DECLINED',
  'PROCESSOR_ERROR',
  'ORDER_ALREADY_CHARGED',
  'PAYMENT_IN_PROGRESS',
  'PAYMENT_NOT_FOUND',
  'PAYMENT_NOT_REFUNDABLE',
  'REFUND_EXCEEDS_CHARGE',
] as const;

/** PaymentErrorCode is one of PAYMENT_ERROR_CODES. */
export type PaymentErrorCode = (typeof PAYMENT_ERROR_CODES)[number];

/**
 * PaymentError is a ServiceError whose JSON body carries `details` beside
 * `code` and `message` (e.g. the `payment_id` an order was already charged by).
 */
export class PaymentError extends ServiceError {
  /** details are extra fields of the error body. */
  readonly details: Record<string, unknown>;

  constructor(
    statusCode: number,
    code: PaymentErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(statusCode, code, message, { headers: options.headers, cause: options.cause });
    this.name = 'PaymentError';
    this.details = options.details ?? {};
  }
}
