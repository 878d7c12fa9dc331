// Public API of @shop/inventory: what a client of the inventory service
// needs (the order service): the proto, a typed gRPC client, the message
// types and the error codes. The server itself is src/server.ts.
export type * from './messages.ts';
export {
  createInventoryGrpcClient,
  inventoryErrorCode,
  DEFAULT_DEADLINE_MS,
  type InventoryGrpcClient,
  type InventoryCallOptions,
} from './grpc-client.ts';
export {
  INVENTORY_PROTO_PATH,
  PROTO_LOADER_OPTIONS,
  INVENTORY_SERVICE,
  INVENTORY_METHODS,
  inventoryServiceDefinition,
  type InventoryMethod,
} from './proto.ts';
export { INVENTORY_ERRORS, type InventoryErrorCode } from './errors.ts';
export { MAX_QUANTITY, ORDER_ID_PATTERN, PRODUCT_ID_PATTERN } from './validation.ts';
