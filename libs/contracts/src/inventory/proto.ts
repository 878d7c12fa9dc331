import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** INVENTORY_PROTO_PATH is the absolute path of `inventory/v1/inventory.proto`. */
export const INVENTORY_PROTO_PATH = fileURLToPath(new URL('../../proto/inventory/v1/inventory.proto', import.meta.url));

/**
 * PROTO_LOADER_OPTIONS are how both ends load the proto: field names as
 * written (snake_case, like the HTTP bodies), int64 as JS numbers, and
 * defaults filled in so a zero `available` arrives as 0, not undefined.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** INVENTORY_SERVICE is the fully qualified gRPC service name. */
export const INVENTORY_SERVICE = 'inventory.v1.Inventory';

/** INVENTORY_METHODS are the full method paths, as `createGrpcMtls({ methods })` keys them. */
export const INVENTORY_METHODS = Object.freeze({
  GetStock: `/${INVENTORY_SERVICE}/GetStock`,
  ListProducts: `/${INVENTORY_SERVICE}/ListProducts`,
  Reserve: `/${INVENTORY_SERVICE}/Reserve`,
  Release: `/${INVENTORY_SERVICE}/Release`,
  Commit: `/${INVENTORY_SERVICE}/Commit`,
});

/** InventoryMethod is the name of one of the service's methods. */
export type InventoryMethod = keyof typeof INVENTORY_METHODS;

let definition: grpc.ServiceDefinition | undefined;

/** inventoryServiceDefinition loads the proto once and returns the service's definition (paths, (de)serializers). */
export function inventoryServiceDefinition(): grpc.ServiceDefinition {
  definition ??= protoLoader.loadSync(INVENTORY_PROTO_PATH, PROTO_LOADER_OPTIONS)[
    INVENTORY_SERVICE
  ] as grpc.ServiceDefinition;
  return definition;
}
