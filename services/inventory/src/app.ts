import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { fastifyMtlsOptions, spiffeAuth, type SpiffeAuthOptions } from '@shop/auth/fastify';
import {
  auditSidecarCallers,
  authHooks,
  installHttpBasics,
  serviceFastifyOptions,
  type ListenerSecurity,
  type ServiceMetrics,
} from '@shop/service-kit';
import {
  orderParams,
  orderReservationsReply,
  productParams,
  productsReply,
  reservationReply,
  reserveBody,
  stockReply,
  type ReserveBody,
} from '@shop/contracts';
import type { StockService } from './stock.ts';
import { authorizeStockReaders } from './stock-readers.ts';

/**
 * AppSecurity is how the APIs are secured: mTLS with `source` (the default),
 * or `transport: "sidecar"`: plaintext, no identity, callers authorized by
 * the sidecar in front (SHOP_TRANSPORT=sidecar).
 */
export type AppSecurity = ListenerSecurity;

/** AppDeps is what the HTTP API is built from. */
export type AppDeps = AppSecurity & AppOptions;

/** AppOptions are AppDeps beside the security. */
export interface AppOptions {
  stock: StockService;
  metrics: ServiceMetrics;
  /** orderId is the SPIFFE ID allowed to reserve, release and commit. */
  orderId: string;
  /** partnerStockReaders are SPIFFE IDs of other trust domains that may also read stock, and nothing else. Default: none. */
  partnerStockReaders?: readonly string[];
  /** log is the process's logger (runService's). Default: no logging. */
  log?: FastifyBaseLogger;
  /** resolvePeer replaces the TLS client certificate in `inject()` tests; never set it in production. */
  resolvePeer?: SpiffeAuthOptions['resolvePeer'];
}

// A reserve body is two small fields; anything near this is not a reserve.
const RESERVE_BODY_LIMIT = 1024;

/**
 * buildApp builds the inventory HTTP API over SPIFFE mTLS without listening:
 * reads are open to any workload of our trust domain (the plugin's default
 * rule), stock reads also to `partnerStockReaders`, writes to the order
 * service only. Test it with `app.inject()`. With `transport: "sidecar"` it
 * is plaintext and every route is open: the sidecar in front decides who
 * connects.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { stock, source, metrics } = deps;
  if (!source) {
    const app = Fastify(serviceFastifyOptions(deps.log ? { loggerInstance: deps.log } : { logger: false }));
    installHttpBasics(app, metrics);
    auditSidecarCallers(app);
    addRoutes(app, stock, {}, {});
    return app;
  }
  // serviceFastifyOptions is typed for a plain HTTP server but passes `https`
  // through; a variable (not a literal) keeps TypeScript's excess-property
  // check out of the way, and the instance keeps the type service-kit expects.
  const options = {
    https: fastifyMtlsOptions(source),
    ...(deps.log ? { loggerInstance: deps.log } : { logger: false }),
  };
  const app = Fastify(serviceFastifyOptions(options));
  installHttpBasics(app, metrics);
  await app.register(spiffeAuth, { source, resolvePeer: deps.resolvePeer, ...authHooks(metrics) });

  const orderOnly = { spiffe: { allow: [deps.orderId] } };
  const stockReaders = {
    spiffe: { allow: authorizeStockReaders(source.getX509Svid().id.trustDomain, deps.partnerStockReaders) },
  };
  addRoutes(app, stock, orderOnly, stockReaders);
  return app;
}

// The routes, with the route config that carries their allow-lists (empty behind a sidecar).
function addRoutes(app: FastifyInstance, stock: StockService, orderOnly: object, stockReaders: object): void {
  app.get('/api/products', { schema: { response: { 200: productsReply } } }, () => stock.listProducts());

  app.get<{ Params: { productId: string } }>(
    '/api/stock/:productId',
    { config: stockReaders, schema: { params: productParams, response: { 200: stockReply } } },
    (req) => stock.getStock(req.params.productId),
  );

  app.post<{ Params: { productId: string }; Body: ReserveBody }>(
    '/api/stock/:productId/reserve',
    {
      config: orderOnly,
      bodyLimit: RESERVE_BODY_LIMIT,
      schema: { params: productParams, body: reserveBody, response: { 200: reservationReply, 201: reservationReply } },
    },
    async (req, reply) => {
      const { reservation, created } = await stock.reserve(req.params.productId, req.body);
      return reply.code(created ? 201 : 200).send(reservation);
    },
  );

  app.post<{ Params: { orderId: string } }>(
    '/api/reservations/:orderId/release',
    { config: orderOnly, schema: { params: orderParams, response: { 200: orderReservationsReply } } },
    (req) => stock.release(req.params.orderId),
  );

  app.post<{ Params: { orderId: string } }>(
    '/api/reservations/:orderId/commit',
    { config: orderOnly, schema: { params: orderParams, response: { 200: orderReservationsReply } } },
    (req) => stock.commit(req.params.orderId),
  );
}
