import { ORDER_ERRORS, type OrderErrorCode } from '@shop/contracts';
import { serviceErrors } from '@shop/service-kit';

/**
 * ORDER_ERRORS (from @shop/contracts) lists every code this service answers
 * with, its HTTP status and the gRPC status a translating client would use;
 * README.md#error-codes documents each one, and test/errors-doc.test.ts
 * keeps the two in step.
 */
export { ORDER_ERRORS, type OrderErrorCode };

/** orderError makes the ServiceError of a code of ORDER_ERRORS, with its HTTP status. */
export const orderError = serviceErrors(ORDER_ERRORS);
