import type { ErrorTable } from '../errors.ts';

/**
 * INVENTORY_ERRORS lists every error code the inventory service answers
 * with, beside service-kit's HTTP-layer ones. The same code string is the
 * HTTP body's `code` and the start of the gRPC status details
 * ("CODE: message"); services/inventory/README.md#error-codes documents each.
 */
export const INVENTORY_ERRORS = Object.freeze({
  INVALID_REQUEST: {
    http: 400,
    grpc: 'INVALID_ARGUMENT',
    meaning: 'a field is missing, unknown, of the wrong type or out of range',
  },
  UNKNOWN_PRODUCT: { http: 404, grpc: 'NOT_FOUND', meaning: 'no product has this ID' },
  RESERVATION_NOT_FOUND: { http: 404, grpc: 'NOT_FOUND', meaning: 'the order has no reservations to commit' },
  INSUFFICIENT_STOCK: { http: 409, grpc: 'FAILED_PRECONDITION', meaning: 'less is available than was asked for' },
  RESERVATION_CONFLICT: {
    http: 409,
    grpc: 'FAILED_PRECONDITION',
    meaning: 'the order already holds another quantity, or its reservation is released or committed',
  },
  RESERVATION_EXPIRED: {
    http: 409,
    grpc: 'FAILED_PRECONDITION',
    meaning: 'the reservation passed its expiry before it was committed',
  },
  STORE_UNAVAILABLE: {
    http: 503,
    grpc: 'UNAVAILABLE',
    meaning: 'the store is closed (shutting down), stayed locked, or its database cannot be reached; retry',
  },
} as const satisfies ErrorTable);

/** InventoryErrorCode is one of the codes in INVENTORY_ERRORS. */
export type InventoryErrorCode = keyof typeof INVENTORY_ERRORS;
