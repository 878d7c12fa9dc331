import * as grpc from '@grpc/grpc-js';
import type {
  CommitRequest,
  GetStockRequest,
  ListProductsRequest,
  ListProductsResponse,
  OrderReservations,
  ReleaseRequest,
  Reservation,
  ReserveRequest,
  Stock,
} from './messages.ts';
import { inventoryServiceDefinition, type InventoryMethod } from './proto.ts';

// Request and reply type of each method.
interface Messages {
  GetStock: [GetStockRequest, Stock];
  ListProducts: [ListProductsRequest, ListProductsResponse];
  Reserve: [ReserveRequest, Reservation];
  Release: [ReleaseRequest, OrderReservations];
  Commit: [CommitRequest, OrderReservations];
}

/** DEFAULT_DEADLINE_MS bounds a call that sets no deadline of its own, so a stuck server cannot hang the caller. */
export const DEFAULT_DEADLINE_MS = 5000;

/** InventoryCallOptions are per-call options. */
export interface InventoryCallOptions {
  /** deadline of the call. Default: DEFAULT_DEADLINE_MS from now. */
  deadline?: grpc.Deadline;
  /** metadata to send. Default: none. */
  metadata?: grpc.Metadata;
}

/**
 * InventoryGrpcClient calls the Inventory service; every method resolves to
 * the reply message or rejects with a `grpc.ServiceError` whose `details`
 * start with the error code (read it with inventoryErrorCode).
 */
export interface InventoryGrpcClient {
  /** getStock returns what is available and reserved of one product. */
  getStock(request: GetStockRequest, options?: InventoryCallOptions): Promise<Stock>;
  /** listProducts returns the catalogue with stock levels. */
  listProducts(request?: ListProductsRequest, options?: InventoryCallOptions): Promise<ListProductsResponse>;
  /** reserve holds stock for an order; replaying the same request returns the same reservation. */
  reserve(request: ReserveRequest, options?: InventoryCallOptions): Promise<Reservation>;
  /** release gives back every active reservation of an order; idempotent. */
  release(request: ReleaseRequest, options?: InventoryCallOptions): Promise<OrderReservations>;
  /** commit turns every reservation of an order into a sale; idempotent. */
  commit(request: CommitRequest, options?: InventoryCallOptions): Promise<OrderReservations>;
  /** client is the underlying grpc-js client (for waitForReady, getChannel). */
  readonly client: grpc.Client;
  /** close closes the channel. */
  close(): void;
}

/**
 * createInventoryGrpcClient returns a promise-based Inventory client for
 * `target` ("host:port"). Pass SPIFFE credentials, e.g.
 * `grpcChannelCredentials(source, authorizeId('spiffe://example.org/inventory'))`.
 */
export function createInventoryGrpcClient(
  target: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
): InventoryGrpcClient {
  const client = new grpc.Client(target, credentials, options);
  const service = inventoryServiceDefinition();
  const call =
    <M extends InventoryMethod>(method: M) =>
    (request: Messages[M][0], opts: InventoryCallOptions = {}): Promise<Messages[M][1]> => {
      const def = service[method] as grpc.MethodDefinition<Messages[M][0], Messages[M][1]>;
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          request,
          opts.metadata ?? new grpc.Metadata(),
          { deadline: opts.deadline ?? Date.now() + DEFAULT_DEADLINE_MS },
          (err, value) => {
            if (err) reject(err);
            else resolve(value as Messages[M][1]);
          },
        );
      });
    };
  const listProducts = call('ListProducts');
  return {
    getStock: call('GetStock'),
    listProducts: (request = {}, opts) => listProducts(request, opts),
    reserve: call('Reserve'),
    release: call('Release'),
    commit: call('Commit'),
    client,
    close: () => {
      client.close();
    },
  };
}

/**
 * inventoryErrorCode returns the stable code at the start of a failed call's
 * status details ("INSUFFICIENT_STOCK: only 3 …" → "INSUFFICIENT_STOCK"),
 * the auth library's AUTH_ERR_* codes included; undefined when there is none.
 */
export function inventoryErrorCode(err: unknown): string | undefined {
  const details = typeof err === 'object' && err !== null ? (err as { details?: unknown }).details : undefined;
  if (typeof details !== 'string') return undefined;
  return /^([A-Z][A-Z0-9_]*): /.exec(details)?.[1];
}
