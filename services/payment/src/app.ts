import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchemaValidationError,
  type HookHandlerDoneFunction,
} from 'fastify';
import {
  chargeBodySchema,
  paymentParamsSchema,
  paymentQuerySchema,
  refundBodySchema,
  IDEMPOTENCY_KEY_HEADER,
  type ChargeBody,
  type RefundBody,
} from '@shop/contracts';
import { fastifyMtlsOptions, spiffeAuth, type SpiffeAuthOptions } from '@shop/auth/fastify';
import {
  auditSidecarCallers,
  authHooks,
  createServiceMetrics,
  SIDECAR_CALLER,
  cutInput,
  installHttpBasics,
  serviceFastifyOptions,
  type ListenerSecurity,
  type ServiceMetrics,
} from '@shop/service-kit';
import type { PaymentConfig } from './config.ts';
import { parseIdempotencyKey } from './idempotency.ts';
import type { Answer, AuditEntry, PaymentService } from './payments.ts';

/**
 * AppSecurity is how the API is secured: mTLS with `source` (the default), or
 * `transport: "sidecar"`: plaintext, no identity, callers authorized by the
 * sidecar in front (SHOP_TRANSPORT=sidecar).
 */
export type AppSecurity = ListenerSecurity;

/** AppDeps are what the API is built from; tests pass their own peer resolver. */
export type AppDeps = AppSecurity & AppOptions;

/** AppOptions are AppDeps beside the security. */
export interface AppOptions {
  config: Pick<PaymentConfig, 'orderId'>;
  /** payments owns the rules; the routes only read requests and send its answers. */
  payments: PaymentService;
  /** metrics the requests and auth decisions are counted in. Default: a fresh registry. */
  metrics?: ServiceMetrics;
  /** log is the process's logger (runService's). Default: no logging. */
  log?: FastifyBaseLogger;
  /** resolvePeer reads the caller from a header in `inject()` tests; never set in production. */
  resolvePeer?: SpiffeAuthOptions['resolvePeer'];
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
 * callerOf returns the verified caller's SPIFFE ID; the auth plugin has
 * already refused requests without one. Behind a sidecar the process does
 * not know the caller: SIDECAR_CALLER.
 */
function callerOf(request: FastifyRequest, sidecar: boolean): string {
  if (sidecar) return SIDECAR_CALLER;
  if (!request.peer) throw new Error('request reached a handler without a verified peer');
  return request.peer.id.toString();
}

/** auditTo writes the audit line of a charge or refund to the request's log. */
function auditTo(request: FastifyRequest): (entry: AuditEntry) => void {
  return (entry) => {
    request.log.info({ audit: entry }, `${entry.operation} ${entry.result}`);
  };
}

// Sends an already serialized JSON body, so a replay sends exactly the bytes of the first answer.
function send(reply: FastifyReply, answer: Answer): FastifyReply {
  if (answer.replayed) void reply.header('idempotent-replayed', 'true');
  return reply.code(answer.statusCode).type('application/json; charset=utf-8').send(answer.json);
}

// preValidation: a charge or refund without a valid key is refused before its body is looked at.
function requireIdempotencyKey(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  try {
    parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

/**
 * buildApp builds the payment API (not listening): mTLS with the caller
 * verified on every request and only ORDER_ID allowed, `{ code, message }`
 * errors, and the routes: `POST /api/charge`, `POST /api/refund`,
 * `GET /api/payments/:id` and `GET /api/payments?order_id=`. With
 * `transport: "sidecar"` it is plaintext and allows every request: the
 * sidecar in front allows ORDER_ID only.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? createServiceMetrics('payment');
  const { payments } = deps;
  const sidecar = deps.transport === 'sidecar';
  // serviceFastifyOptions is typed for plain HTTP but passes `https` through; a
  // variable (not a literal) keeps TypeScript's excess-property check out of the way.
  const options = {
    ...(deps.source ? { https: fastifyMtlsOptions(deps.source) } : {}),
    ...(deps.log ? { loggerInstance: deps.log } : { logger: false }),
    schemaErrorFormatter: formatSchemaErrors,
  };
  const app = Fastify(serviceFastifyOptions(options));
  installHttpBasics(app, metrics);
  if (deps.source) {
    await app.register(spiffeAuth, {
      source: deps.source,
      allow: [deps.config.orderId],
      ...authHooks(metrics),
      ...(deps.resolvePeer ? { resolvePeer: deps.resolvePeer } : {}),
    });
  } else {
    auditSidecarCallers(app);
  }

  app.post<{ Body: ChargeBody }>(
    '/api/charge',
    { schema: { body: chargeBodySchema }, preValidation: requireIdempotencyKey },
    async (request, reply) => {
      const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
      const answer = await payments.charge(
        { caller: callerOf(request, sidecar), key, body: request.body },
        auditTo(request),
      );
      return send(reply, answer);
    },
  );

  app.post<{ Body: RefundBody }>(
    '/api/refund',
    { schema: { body: refundBodySchema }, preValidation: requireIdempotencyKey },
    async (request, reply) => {
      const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
      const answer = await payments.refund(
        { caller: callerOf(request, sidecar), key, body: request.body },
        auditTo(request),
      );
      return send(reply, answer);
    },
  );

  app.get<{ Params: { id: string } }>('/api/payments/:id', { schema: { params: paymentParamsSchema } }, (request) =>
    payments.payment(request.params.id),
  );

  app.get<{ Querystring: { order_id: string } }>(
    '/api/payments',
    { schema: { querystring: paymentQuerySchema } },
    (request) => payments.paymentOfOrder(request.query.order_id),
  );
  return app;
}
