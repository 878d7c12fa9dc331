import { PAYMENT_ERRORS, type PaymentErrorCode } from '@shop/contracts';
import { serviceErrors } from '@shop/service-kit';

/**
 * PAYMENT_ERRORS (from @shop/contracts) lists every code this service answers
 * with, its HTTP status and the gRPC status a translating client would use;
 * README.md#error-codes documents each one, and test/errors-doc.test.ts
 * keeps the two in step.
 */
export { PAYMENT_ERRORS, type PaymentErrorCode };

/**
 * paymentError makes the ServiceError of a code of PAYMENT_ERRORS, with its
 * HTTP status; `details` (e.g. the `payment_id` an order was already charged
 * by) go into the JSON body beside `code` and `message`.
 */
export const paymentError = serviceErrors(PAYMENT_ERRORS);
