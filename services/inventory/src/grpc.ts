import * as grpc from '@grpc/grpc-js';
import { createGrpcMtls, type AuditLogger, type GrpcMtls } from '@shop/auth/grpc';
import { authHooks, SIDECAR_CALLER, type ListenerSecurity, type ServiceMetrics } from '@shop/service-kit';
import {
  INVENTORY_METHODS,
  inventoryServiceDefinition,
  type GetStockRequest,
  type InventoryMethod,
  type ListProductsRequest,
  type ListProductsResponse,
  type OrderRequest,
  type OrderReservations,
  type Reservation,
  type ReserveRequest,
  type Stock,
} from '@shop/contracts';
import { toGrpcStatus } from './errors.ts';
import type { StockService } from './stock.ts';
import { authorizeStockReaders } from './stock-readers.ts';
import { checkOrderId, checkProductId, checkQuantity } from './validation.ts';

/**
 * MAX_GRPC_MESSAGE_BYTES is the largest request message the gRPC server
 * accepts (larger ones get RESOURCE_EXHAUSTED unread). The biggest valid
 * request is a few hundred bytes; grpc-js would take 4 MiB.
 */
export const MAX_GRPC_MESSAGE_BYTES = 64 * 1024;

/**
 * GrpcSecurity is how the gRPC API is secured: mTLS with `source` (the
 * default), or `transport: "sidecar"`: plaintext h2c, no identity, callers
 * authorized by the sidecar in front (SHOP_TRANSPORT=sidecar).
 */
export type GrpcSecurity = ListenerSecurity;

/** GrpcServerDeps is what the gRPC API is built from. */
export type GrpcServerDeps = GrpcSecurity & GrpcServerOptions;

/** GrpcServerOptions are GrpcServerDeps beside the security. */
export interface GrpcServerOptions {
  stock: StockService;
  metrics: ServiceMetrics;
  /** orderId is the SPIFFE ID allowed to call Reserve, Release and Commit. */
  orderId: string;
  /** partnerStockReaders are SPIFFE IDs of other trust domains that may also call GetStock, and nothing else. Default: none. */
  partnerStockReaders?: readonly string[];
  /**
   * log receives an audit line per call and per refused handshake, and the
   * failed calls that were not the caller's fault. Default: none.
   */
  log?: AuditLogger;
}

/** InventoryGrpcServer is a running gRPC API. */
export interface InventoryGrpcServer {
  server: grpc.Server;
  /** mtls is the mTLS layer; undefined behind a sidecar. */
  mtls: GrpcMtls | undefined;
  /** port is the bound port (useful when 0 was asked for). */
  port: number;
  /** close stops accepting calls, lets in-flight ones finish for `graceMs`, then shuts the server down. */
  close(graceMs?: number): Promise<void>;
}

/** CallOutcome is what inventoryGrpcHandlers reports about each call it served. */
export interface CallOutcome {
  method: InventoryMethod;
  call: { getPeer(): string };
  code: grpc.status;
  seconds: number;
  /** err is what the domain threw, when the call failed. */
  err?: unknown;
}

/**
 * inventoryGrpcHandlers implements the Inventory service on StockService: each
 * handler checks the request's fields against the contract (the HTTP API's
 * rules: lengths, patterns, range), then maps a failure to its status code.
 */
export function inventoryGrpcHandlers(
  stock: StockService,
  observe: (call: CallOutcome) => void = () => undefined,
): grpc.UntypedServiceImplementation {
  function unary<Req, Res>(
    method: InventoryMethod,
    fn: (request: Req) => Res | Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const start = performance.now();
      const seconds = (): number => (performance.now() - start) / 1000;
      // Sync throws (input checks) and async rejections (the store) end the same way.
      void (async () => {
        let result: Res;
        try {
          result = await fn(call.request);
        } catch (err) {
          const status = toGrpcStatus(err);
          observe({ method, call, code: status.code, seconds: seconds(), err });
          callback(status);
          return;
        }
        observe({ method, call, code: grpc.status.OK, seconds: seconds() });
        callback(null, result);
      })();
    };
  }
  return {
    GetStock: unary<GetStockRequest, Stock>('GetStock', (req) => stock.getStock(checkProductId(req.product_id))),
    ListProducts: unary<ListProductsRequest, ListProductsResponse>('ListProducts', async () => ({
      products: await stock.listProducts(),
    })),
    Reserve: unary<ReserveRequest, Reservation>(
      'Reserve',
      async (req) =>
        (
          await stock.reserve(checkProductId(req.product_id), {
            quantity: checkQuantity(req.quantity),
            order_id: checkOrderId(req.order_id),
          })
        ).reservation,
    ),
    Release: unary<OrderRequest, OrderReservations>('Release', (req) => stock.release(checkOrderId(req.order_id))),
    Commit: unary<OrderRequest, OrderReservations>('Commit', (req) => stock.commit(checkOrderId(req.order_id))),
  };
}

/**
 * startGrpcServer serves the Inventory service over SPIFFE mTLS on
 * host:port: GetStock and ListProducts for any workload of our trust domain,
 * GetStock also for `partnerStockReaders`, Reserve, Release and Commit for
 * `orderId` only. Calls are counted in
 * `shop_requests_total{protocol="grpc"}`; refusals in the auth metrics; every
 * decision and refused handshake is written to `log` as an audit line.
 * Request messages above MAX_GRPC_MESSAGE_BYTES are refused unread. With
 * `transport: "sidecar"` it serves plaintext (h2c) and every method to
 * whoever connects: the sidecar in front decides who that is.
 */
export async function startGrpcServer(
  deps: GrpcServerDeps & { host: string; port: number; reusePort?: boolean },
): Promise<InventoryGrpcServer> {
  const { stock, source, metrics, orderId, log } = deps;
  if (!source) return startPlainGrpcServer(deps);
  const orderOnly = [orderId];
  const mtls = createGrpcMtls({
    source,
    methods: {
      [INVENTORY_METHODS.GetStock]: authorizeStockReaders(
        source.getX509Svid().id.trustDomain,
        deps.partnerStockReaders,
      ),
      [INVENTORY_METHODS.Reserve]: orderOnly,
      [INVENTORY_METHODS.Release]: orderOnly,
      [INVENTORY_METHODS.Commit]: orderOnly,
    },
    ...authHooks(metrics),
    log,
  });
  const server = new grpc.Server({
    interceptors: [mtls.interceptor],
    'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
  });
  server.addService(
    inventoryServiceDefinition(),
    inventoryGrpcHandlers(stock, ({ method, call, code, seconds, err }) => {
      const route = INVENTORY_METHODS[method];
      const caller = mtls.peerOf(call)?.id.toString() ?? 'none';
      metrics.requests.inc({ protocol: 'grpc', route, method: 'unary', status: grpc.status[code], caller });
      metrics.requestSeconds.observe({ protocol: 'grpc', route }, seconds);
      if (code === grpc.status.INTERNAL) log?.error({ err, method: route, caller }, 'gRPC call failed');
    }),
  );
  const port = await mtls.listen(server, { host: deps.host, port: deps.port, reusePort: deps.reusePort });
  return {
    server,
    mtls,
    port,
    async close(graceMs = 5000) {
      await mtls.close(graceMs);
      server.forceShutdown();
    },
  };
}

// Behind a sidecar: plaintext h2c, no interceptor, one audit line per call
// naming the caller as not known to the process (where mTLS writes "authz allow").
async function startPlainGrpcServer(
  deps: GrpcServerOptions & { host: string; port: number; reusePort?: boolean },
): Promise<InventoryGrpcServer> {
  const { stock, metrics, log } = deps;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
    'grpc.so_reuseport': deps.reusePort === true ? 1 : 0,
  });
  server.addService(
    inventoryServiceDefinition(),
    inventoryGrpcHandlers(stock, ({ method, code, seconds, err }) => {
      const route = INVENTORY_METHODS[method];
      log?.info({ authz: { decision: 'sidecar', caller: SIDECAR_CALLER, method: route } }, 'authz by sidecar');
      metrics.requests.inc({ protocol: 'grpc', route, method: 'unary', status: grpc.status[code], caller: 'none' });
      metrics.requestSeconds.observe({ protocol: 'grpc', route }, seconds);
      if (code === grpc.status.INTERNAL) log?.error({ err, method: route, caller: SIDECAR_CALLER }, 'gRPC call failed');
    }),
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${deps.host}:${String(deps.port)}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(err);
      else resolve(bound);
    });
  });
  return {
    server,
    mtls: undefined,
    port,
    async close(graceMs = 5000) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
