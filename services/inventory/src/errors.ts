import * as grpc from '@grpc/grpc-js';
import { ServiceError } from '@shop/service-kit';

/**
 * INVENTORY_ERRORS lists every error code the inventory service answers with,
 * with its HTTP status and gRPC status code. The same code string is the HTTP
 * body's `code` and the start of the gRPC status details ("CODE: message");
 * README.md#error-codes documents each one.
 */
export const INVENTORY_ERRORS = {
  INVALID_REQUEST: { http: 400, grpc: grpc.status.INVALID_ARGUMENT },
  UNKNOWN_PRODUCT: { http: 404, grpc: grpc.status.NOT_FOUND },
  RESERVATION_NOT_FOUND: { http: 404, grpc: grpc.status.NOT_FOUND },
  INSUFFICIENT_STOCK: { http: 409, grpc: grpc.status.FAILED_PRECONDITION },
  RESERVATION_CONFLICT: { http: 409, grpc: grpc.status.FAILED_PRECONDITION },
  RESERVATION_EXPIRED: { http: 409, grpc: grpc.status.FAILED_PRECONDITION },
  STORE_UNAVAILABLE: { http: 503, grpc: grpc.status.UNAVAILABLE },
} as const satisfies Record<string, { http: number; grpc: grpc.status }>;

/** InventoryErrorCode is one of the codes in INVENTORY_ERRORS. */
export type InventoryErrorCode = keyof typeof INVENTORY_ERRORS;

/** inventoryError makes the ServiceError for `code`, with its HTTP status and a message that says what to fix. */
export function inventoryError(
  code: InventoryErrorCode,
  message: string,
  options: { cause?: unknown } = {},
): ServiceError {
  const headers: Record<string, string> = code === 'STORE_UNAVAILABLE' ? { 'retry-after': '1' } : {};
  return new ServiceError(INVENTORY_ERRORS[code].http, code, message, { ...options, headers });
}

/** GrpcErrorStatus is what a gRPC handler answers with when a call fails. */
export interface GrpcErrorStatus {
  code: grpc.status;
  details: string;
}

/**
 * toGrpcStatus maps an error thrown by the store to a gRPC status: a known
 * code to its status with "CODE: message" as details, anything else to
 * INTERNAL without internals (the caller logs it).
 */
export function toGrpcStatus(err: unknown): GrpcErrorStatus {
  if (err instanceof ServiceError && err.code in INVENTORY_ERRORS) {
    return { code: INVENTORY_ERRORS[err.code as InventoryErrorCode].grpc, details: `${err.code}: ${err.message}` };
  }
  return { code: grpc.status.INTERNAL, details: 'INTERNAL: internal error; see the service log' };
}
