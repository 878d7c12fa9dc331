import { createHash } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { installHttpBasics, serviceFastifyOptions, type ServiceMetrics } from '@shop/service-kit';
import { orderError } from './errors.ts';
import type { OrderService, PlaceOrderInput } from './orders.ts';

/** CURRENCIES the shop sells in. */
export const CURRENCIES = ['EUR', 'USD', 'GBP'] as const;

const placeOrderSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['customer_id', 'currency', 'items'],
    properties: {
      customer_id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$' },
      currency: { type: 'string', minLength: 3, maxLength: 3 },
      expected_total_cents: { type: 'integer', minimum: 1 },
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 20,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['product_id', 'quantity'],
          properties: {
            product_id: { type: 'string', minLength: 1, maxLength: 64 },
            quantity: { type: 'integer', minimum: 1, maximum: 100 },
          },
        },
      },
    },
  },
  headers: {
    type: 'object',
    properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 } },
  },
} as const;

/**
 * requestFingerprint is the SHA-256 of a validated order request in
 * canonical form (fixed field order, lines sorted by product), so a retry
 * under the same Idempotency-Key matches however its JSON is laid out, and
 * any other customer, currency, line or expected total does not.
 */
export function requestFingerprint(body: PlaceOrderInput): string {
  const lines = body.items
    .map((i): [string, number] => [i.product_id, i.quantity])
    .sort(([a, qa], [b, qb]) => (a < b ? -1 : a > b ? 1 : qa - qb));
  const canonical = [body.customer_id, body.currency, lines, body.expected_total_cents ?? null];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** AppDeps are what the public API needs. */
export interface AppDeps {
  orders: OrderService;
  metrics: ServiceMetrics;
  /** log is the process's logger (runService's). Default: no logging. */
  log?: FastifyBaseLogger;
}

/**
 * buildApp builds the shop's public API (plain HTTP: in production it sits
 * behind an ingress that terminates the shoppers' TLS). Testable with inject().
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const options = deps.log ? { loggerInstance: deps.log } : { logger: false };
  const app = Fastify(serviceFastifyOptions(options));
  installHttpBasics(app, deps.metrics);

  app.get('/products', async () => ({ products: await deps.orders.catalogue() }));

  app.post<{ Body: PlaceOrderInput; Headers: { 'idempotency-key'?: string } }>(
    '/orders',
    { schema: placeOrderSchema },
    async (req, reply) => {
      const body = req.body;
      if (!(CURRENCIES as readonly string[]).includes(body.currency)) {
        throw orderError(
          'UNKNOWN_CURRENCY',
          `currency must be one of ${CURRENCIES.join(', ')}, got ${JSON.stringify(body.currency)}`,
        );
      }
      const key = req.headers['idempotency-key'];
      const { order, created } = await deps.orders.place(
        body,
        key,
        key === undefined ? undefined : requestFingerprint(body),
      );
      req.log.info(
        { orderId: order.order_id, status: order.status, reason: order.failure_reason, total: order.total_cents },
        'order placed',
      );
      return reply
        .code(created ? 201 : 200)
        .header('location', `/orders/${order.order_id}`)
        .send(order);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/orders/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } },
    (req) => deps.orders.get(req.params.id),
  );
  await app.ready();
  return app;
}
