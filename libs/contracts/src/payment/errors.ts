import type { ErrorTable } from '../errors.ts';

/**
 * PAYMENT_ERRORS lists every error code the payment service answers with,
 * beside service-kit's (`INVALID_REQUEST`, `NOT_FOUND`, `INTERNAL`, the
 * HTTP-layer ones), fastify's body errors (`FST_ERR_CTP_*`) and the auth
 * plugin's (`AUTH_ERR_*`). services/payment/README.md#error-codes documents each.
 */
export const PAYMENT_ERRORS = Object.freeze({
  IDEMPOTENCY_KEY_REQUIRED: {
    http: 400,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'a charge or refund came without an Idempotency-Key header',
  },
  IDEMPOTENCY_KEY_INVALID: {
    http: 400,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'the Idempotency-Key is not 1 to 255 printable ASCII characters',
  },
  UNKNOWN_CURRENCY: { http: 400, grpc: 'INVALID_ARGUMENT', meaning: 'the currency is not one the service accepts' },
  CARD_DECLINED: {
    http: 402,
    grpc: 'FAILED_PRECONDITION',
    meaning: 'the processor declined the card; the payment is recorded as declined',
  },
  PAYMENT_NOT_FOUND: { http: 404, grpc: 'NOT_FOUND', meaning: 'no payment has this ID, or the order has none' },
  IDEMPOTENCY_KEY_IN_PROGRESS: {
    http: 409,
    grpc: 'ABORTED',
    meaning: 'a request under the same key is still running; retry to get its answer',
  },
  ORDER_ALREADY_CHARGED: {
    http: 409,
    grpc: 'ALREADY_EXISTS',
    meaning: 'the order was already charged by another payment (its payment_id is in the body)',
  },
  PAYMENT_IN_PROGRESS: {
    http: 409,
    grpc: 'ABORTED',
    meaning: 'a charge of the order is still at the processor; retry',
  },
  PAYMENT_NOT_REFUNDABLE: {
    http: 409,
    grpc: 'FAILED_PRECONDITION',
    meaning: 'the payment was declined, so there is nothing to refund',
  },
  REFUND_EXCEEDS_CHARGE: {
    http: 409,
    grpc: 'FAILED_PRECONDITION',
    meaning: 'the refund is more than what is left of the charge',
  },
  IDEMPOTENCY_KEY_REUSED: {
    http: 422,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'the key was first used for another endpoint or another body',
  },
  PROCESSOR_ERROR: {
    http: 502,
    grpc: 'UNAVAILABLE',
    meaning: 'the card processor failed; nothing was charged, retry with the same key',
  },
} as const satisfies ErrorTable);

/** PaymentErrorCode is one of the codes in PAYMENT_ERRORS. */
export type PaymentErrorCode = keyof typeof PAYMENT_ERRORS;
