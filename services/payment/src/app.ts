import Fastify, { type FastifyInstance, type FastifySchemaValidationError, type FastifyServerOptions } from 'fastify';
import { fastifyMtlsOptions, spiffeAuth, type SpiffeAuthOptions } from '@shop/auth/fastify';
import type { IdentitySource } from '@shop/auth';
import {
  authHooks,
  createServiceMetrics,
  cutInput,
  installHttpBasics,
  loggerOptions,
  serviceFastifyOptions,
  type ServiceMetrics,
} from '@shop/service-kit';
import type { PaymentConfig } from './config.ts';
import { PaymentError } from './errors.ts';
import { IdempotencyKeys } from './idempotency.ts';
import type { CardProcessor } from './processor.ts';
import { registerChargeRoute } from './routes/charge.ts';
import type { RouteContext } from './routes/context.ts';
import { registerPaymentRoutes } from './routes/payments.ts';
import { registerRefundRoute } from './routes/refund.ts';
import type { PaymentStore } from './store.ts';

/** AppDeps are what the API is built from; tests pass their own clock, processor and peer resolver. */
export interface AppDeps {
  config: Pick<PaymentConfig, 'orderId' | 'logLevel'>;
  /** source is our identity (a ready source) and the bundles callers are verified against. */
  source: IdentitySource;
  store: PaymentStore;
  processor: CardProcessor;
  /** metrics the requests and auth decisions are counted in. Default: a fresh registry. */
  metrics?: ServiceMetrics;
  /** now is the clock in ms since the epoch. Default: Date.now. */
  now?: () => number;
  /** logger is fastify's logger option. Default: service-kit's loggerOptions('payment'). */
  logger?: FastifyServerOptions['logger'];
  /** resolvePeer reads the caller from a header in `inject()` tests; never set in production. */
  resolvePeer?: SpiffeAuthOptions['resolvePeer'];
  /** staleAfterMs after which an in-progress idempotency key may be taken over. Default: 60 s. */
  staleAfterMs?: number;
}

/**
 * formatSchemaErrors words fastify's validation errors so the client sees
 * what to fix, naming an unexpected property (which ajv's message omits).
 */
function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const text = errors
    .map((e) => {
      const unexpected =
        e.keyword === 'additionalProperties' ? `: ${cutInput(String(e.params.additionalProperty))}` : '';
      return `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}${unexpected}`;
    })
    .join('; ');
  return new Error(text);
}

/**
 * buildApp builds the payment API (not listening): mTLS with the caller
 * verified on every request and only ORDER_ID allowed, `{ code, message }`
 * errors, and the charge, refund and payment routes.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? createServiceMetrics('payment');
  const now = deps.now ?? Date.now;
  // serviceFastifyOptions is typed for plain HTTP but passes `https` through; a
  // variable (not a literal) keeps TypeScript's excess-property check out of the way.
  const options = {
    https: fastifyMtlsOptions(deps.source),
    logger: deps.logger ?? loggerOptions('payment', deps.config.logLevel),
    schemaErrorFormatter: formatSchemaErrors,
  };
  const app = Fastify(serviceFastifyOptions(options));
  installHttpBasics(app, metrics);
  await app.register(spiffeAuth, {
    source: deps.source,
    allow: [deps.config.orderId],
    ...authHooks(metrics),
    ...(deps.resolvePeer ? { resolvePeer: deps.resolvePeer } : {}),
  });

  const ctx: RouteContext = {
    store: deps.store,
    processor: deps.processor,
    keys: new IdempotencyKeys(deps.store, { now, staleAfterMs: deps.staleAfterMs }),
    now,
  };
  await app.register((api, _opts, done) => {
    // Errors with details (e.g. the payment_id an order was charged by) keep them in the body;
    // every other error goes on to service-kit's handler.
    api.setErrorHandler((err, _request, reply) => {
      if (!(err instanceof PaymentError)) throw err;
      void reply
        .code(err.statusCode)
        .headers(err.headers)
        .send({ code: err.code, message: err.message, ...err.details });
    });
    registerChargeRoute(api, ctx);
    registerRefundRoute(api, ctx);
    registerPaymentRoutes(api, ctx);
    done();
  });
  return app;
}
