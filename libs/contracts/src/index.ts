// Public API of @shop/contracts: what the shop's services agree on, and
// nothing of how any of them is built. A client of a service imports from
// here, never from the service.
export {
  SHARED_CODE_EXCEPTIONS,
  type ErrorSpec,
  type ErrorTable,
  type ErrorBody,
  type GrpcStatusName,
} from './errors.ts';

// inventory
export type * from './inventory/messages.ts';
export { INVENTORY_ERRORS, type InventoryErrorCode } from './inventory/errors.ts';
export { MAX_QUANTITY, ORDER_ID_PATTERN, PRODUCT_ID_PATTERN } from './inventory/limits.ts';
export {
  INVENTORY_PROTO_PATH,
  PROTO_LOADER_OPTIONS,
  INVENTORY_SERVICE,
  INVENTORY_METHODS,
  inventoryServiceDefinition,
  type InventoryMethod,
} from './inventory/proto.ts';
export {
  createInventoryGrpcClient,
  inventoryErrorCode,
  DEFAULT_DEADLINE_MS,
  type InventoryGrpcClient,
  type InventoryCallOptions,
} from './inventory/grpc-client.ts';
export {
  orderParams,
  orderReservationsReply,
  productParams,
  productsReply,
  reservationReply,
  reserveBody,
  stockReply,
} from './inventory/http-schemas.ts';

// payment
export type * from './payment/messages.ts';
export { PAYMENT_ERRORS, type PaymentErrorCode } from './payment/errors.ts';
export {
  IDEMPOTENCY_KEY_HEADER,
  CURRENCIES,
  MAX_AMOUNT,
  chargeBodySchema,
  refundBodySchema,
  paymentParamsSchema,
  paymentQuerySchema,
  type ChargeBody,
  type RefundBody,
  type Currency,
} from './payment/schemas.ts';

// order
export { ORDER_ERRORS, type OrderErrorCode } from './order/errors.ts';
