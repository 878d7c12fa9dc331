// The contract's input rules (@shop/contracts limits, from which the HTTP
// JSON schemas are built) checked again in code, so gRPC callers (which have
// no schema validation) get the same answers.
import { MAX_QUANTITY, ORDER_ID_PATTERN, PRODUCT_ID_PATTERN } from '@shop/contracts';
import { quoteInput } from '@shop/service-kit';
import { inventoryError } from './errors.ts';

const productIdRe = new RegExp(PRODUCT_ID_PATTERN);
const orderIdRe = new RegExp(ORDER_ID_PATTERN);

/** checkProductId returns `value` if it is a well-formed product ID, else throws INVALID_REQUEST. */
export function checkProductId(value: unknown): string {
  if (typeof value === 'string' && productIdRe.test(value)) return value;
  throw inventoryError('INVALID_REQUEST', `product_id must match ${PRODUCT_ID_PATTERN}, got ${quoteInput(value)}`);
}

/** checkOrderId returns `value` if it is a well-formed order ID, else throws INVALID_REQUEST. */
export function checkOrderId(value: unknown): string {
  if (typeof value === 'string' && orderIdRe.test(value)) return value;
  throw inventoryError('INVALID_REQUEST', `order_id must match ${ORDER_ID_PATTERN}, got ${quoteInput(value)}`);
}

/** checkQuantity returns `value` if it is an integer from 1 to MAX_QUANTITY, else throws INVALID_REQUEST. */
export function checkQuantity(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_QUANTITY) return value;
  throw inventoryError(
    'INVALID_REQUEST',
    `quantity must be an integer from 1 to ${MAX_QUANTITY}, got ${quoteInput(value)}`,
  );
}
