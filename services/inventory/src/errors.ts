import * as grpc from '@grpc/grpc-js';
import { INVENTORY_ERRORS, type InventoryErrorCode } from '@shop/contracts';
import { ServiceError, serviceErrors, type ServiceErrorOptions } from '@shop/service-kit';

/**
 * INVENTORY_ERRORS (from @shop/contracts) lists every code this service
 * answers with, its HTTP status and its gRPC status; README.md#error-codes
 * documents each one, and test/errors-doc.test.ts keeps the two in step.
 */
export { INVENTORY_ERRORS, type InventoryErrorCode };

const make = serviceErrors(INVENTORY_ERRORS);

/** inventoryError makes the ServiceError for `code`, with its HTTP status and a message that says what to fix. */
export function inventoryError(
  code: InventoryErrorCode,
  message: string,
  options: ServiceErrorOptions = {},
): ServiceError {
  const headers: Record<string, string> = code === 'STORE_UNAVAILABLE' ? { 'retry-after': '1' } : {};
  return make(code, message, { ...options, headers: { ...headers, ...options.headers } });
}

/** GrpcErrorStatus is what a gRPC handler answers with when a call fails. */
export interface GrpcErrorStatus {
  code: grpc.status;
  details: string;
}

/**
 * toGrpcStatus maps an error thrown by the domain to a gRPC status: a known
 * code to its status with "CODE: message" as details, anything else to
 * INTERNAL without internals (the caller logs it).
 */
export function toGrpcStatus(err: unknown): GrpcErrorStatus {
  if (err instanceof ServiceError && err.code in INVENTORY_ERRORS) {
    const spec = INVENTORY_ERRORS[err.code as InventoryErrorCode];
    return { code: grpc.status[spec.grpc], details: `${err.code}: ${err.message}` };
  }
  return { code: grpc.status.INTERNAL, details: 'INTERNAL: internal error; see the service log' };
}
