import * as grpc from '@grpc/grpc-js';
import { createInventoryGrpcClient, inventoryErrorCode } from '@shop/contracts';
import type { InventoryClient } from './types.ts';
import { UpstreamError } from './upstream-error.ts';

const UPSTREAM = 'inventory';
// Inventory's considered answers; anything else means it could not answer.
const REJECTIONS = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ALREADY_EXISTS,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
]);

function classify(err: unknown): UpstreamError {
  const e = err as grpc.ServiceError;
  // An unknown numeric status has no name in the enum's reverse mapping.
  const statusNames = grpc.status as unknown as Record<number, string | undefined>;
  const code = inventoryErrorCode(e) ?? statusNames[e.code] ?? 'UNKNOWN';
  const kind = REJECTIONS.has(e.code) ? 'rejected' : 'unavailable';
  return new UpstreamError(UPSTREAM, kind, code, e.details || e.message, { cause: err });
}

/** createInventoryGrpcClientAdapter puts inventory's gRPC client behind the InventoryClient interface. */
export function createInventoryGrpcClientAdapter(
  target: string,
  credentials: grpc.ChannelCredentials,
  timeoutMs: number,
  options?: grpc.ClientOptions,
): InventoryClient {
  // grpc-js backs off reconnects up to 120 s by default: an order pod that started before inventory had
  // its SVID could stay without inventory for minutes (seen once on Kubernetes). 5 s bounds that wait.
  const c = createInventoryGrpcClient(target, credentials, { 'grpc.max_reconnect_backoff_ms': 5_000, ...options });
  const opts = (): { deadline: number } => ({ deadline: Date.now() + timeoutMs });
  const guard = async <T>(p: () => Promise<T>): Promise<T> => {
    try {
      return await p();
    } catch (err) {
      throw classify(err);
    }
  };
  return {
    protocol: 'grpc',
    listProducts: () => guard(async () => (await c.listProducts({}, opts())).products),
    reserve: (orderId, productId, quantity) =>
      guard(async () => {
        await c.reserve({ order_id: orderId, product_id: productId, quantity }, opts());
      }),
    release: (orderId) =>
      guard(async () => {
        await c.release({ order_id: orderId }, opts());
      }),
    commit: (orderId) =>
      guard(async () => {
        await c.commit({ order_id: orderId }, opts());
      }),
    close: () => {
      c.close();
      return Promise.resolve();
    },
  };
}
