import type { ErrorTable } from '../errors.ts';

/**
 * ORDER_ERRORS lists every error code the order service answers with,
 * beside service-kit's (`INVALID_REQUEST`, `NOT_FOUND`, `INTERNAL`, the
 * HTTP-layer ones) and fastify's body errors (`FST_ERR_CTP_*`).
 * services/order/README.md#error-codes documents each.
 */
export const ORDER_ERRORS = Object.freeze({
  UNKNOWN_PRODUCT: {
    http: 400,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'an item names a product that is not in the catalogue',
  },
  DUPLICATE_ITEM: { http: 400, grpc: 'INVALID_ARGUMENT', meaning: 'a product appears on two lines' },
  UNKNOWN_CURRENCY: { http: 400, grpc: 'INVALID_ARGUMENT', meaning: 'the currency is not one the shop sells in' },
  CURRENCY_MISMATCH: {
    http: 400,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'a product is priced in another currency than the order',
  },
  AMOUNT_MISMATCH: {
    http: 400,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'expected_total_cents differs from what the items cost now',
  },
  ORDER_NOT_FOUND: { http: 404, grpc: 'NOT_FOUND', meaning: 'no order has this ID' },
  IDEMPOTENCY_KEY_REUSED: {
    http: 422,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'the Idempotency-Key was first used with another body or customer',
  },
  UPSTREAM_UNAVAILABLE: {
    http: 503,
    grpc: 'UNAVAILABLE',
    meaning: 'inventory or payment is unavailable; Retry-After says when to try again',
  },
} as const satisfies ErrorTable);

/** OrderErrorCode is one of the codes in ORDER_ERRORS. */
export type OrderErrorCode = keyof typeof ORDER_ERRORS;
