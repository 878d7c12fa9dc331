import type { FastifyError, FastifyInstance, FastifyListenOptions, FastifyServerOptions } from 'fastify';
import { cutInput, ServiceError } from './errors.ts';
import type { ServiceMetrics } from './metrics.ts';

/** HTTP_LIMITS are the server timeouts and size limits every service applies against slow or greedy clients. */
export const HTTP_LIMITS = {
  /** bodyLimit in bytes; order bodies are small JSON. */
  bodyLimit: 64 * 1024,
  /** connectionTimeout closes a socket idle this long (ms). */
  connectionTimeout: 30_000,
  /** keepAliveTimeout for idle keep-alive connections (ms). */
  keepAliveTimeout: 10_000,
  /** requestTimeout bounds receiving one whole request (ms). */
  requestTimeout: 15_000,
  /** headersTimeout bounds receiving the headers (ms); Node's slowloris guard. */
  headersTimeout: 10_000,
} as const;

/** serviceFastifyOptions are fastify's options with the limits above (merge `https` in for mTLS). */
export function serviceFastifyOptions(extra: FastifyServerOptions = {}): FastifyServerOptions {
  return {
    bodyLimit: HTTP_LIMITS.bodyLimit,
    connectionTimeout: HTTP_LIMITS.connectionTimeout,
    keepAliveTimeout: HTTP_LIMITS.keepAliveTimeout,
    requestTimeout: HTTP_LIMITS.requestTimeout,
    // While draining, a request that arrives on an open keep-alive connection
    // is served (this instance still has all it needs) with `Connection:
    // close`, so the client reconnects to whoever holds the port now: a
    // hand-over to a new instance (npm run migrate) fails no request. With
    // fastify's default the client would get a bare 503 instead.
    return503OnClosing: false,
    // Unknown fields are an error the caller should hear about (a typo in
    // "quantity" must not silently order one), not something to strip.
    ajv: { customOptions: { removeAdditional: false } },
    ...extra,
  };
}

/**
 * installHttpBasics adds what every service's HTTP API needs: `{ code, message }`
 * error bodies (ServiceError as is, fastify's own 4xx with their code, 500s
 * without internals), the headers timeout, and per-request metrics labelled
 * with the caller's SPIFFE ID.
 */
export function installHttpBasics(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.server.headersTimeout = HTTP_LIMITS.headersTimeout;
  app.setErrorHandler((err: FastifyError | ServiceError, request, reply) => {
    if (err instanceof ServiceError) {
      void reply.code(err.statusCode).headers(err.headers).send({ code: err.code, message: err.message });
      return;
    }
    if (err.validation) {
      void reply.code(400).send({ code: 'INVALID_REQUEST', message: `request ${err.message}` });
      return;
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      void reply.code(status).send({ code: err.code, message: err.message });
      return;
    }
    request.log.error({ err }, 'request failed');
    void reply.code(500).send({ code: 'INTERNAL', message: 'internal error; see the service log' });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${request.method} ${cutInput(request.url)}` });
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const caller = request.peer?.id.toString() ?? 'none';
    metrics.requests.inc({ protocol: 'http', route, method: request.method, status: String(reply.statusCode), caller });
    metrics.requestSeconds.observe({ protocol: 'http', route }, reply.elapsedTime / 1000);
    done();
  });
}

/** ListenAddress is where a server listens. */
export interface ListenAddress {
  host: string;
  port: number;
  /** reusePort: SO_REUSEPORT, so a new instance can bind before this one drains. Default: false. */
  reusePort?: boolean;
}

/**
 * listen starts `app` on `where`. fastify hands its listen options to
 * net.Server.listen() unchanged, which takes reusePort (Node >= 22.12), but
 * fastify's types do not list it yet, hence the widening here.
 */
export async function listen(app: FastifyInstance, where: ListenAddress): Promise<void> {
  const options: FastifyListenOptions & { reusePort: boolean } = {
    host: where.host,
    port: where.port,
    reusePort: where.reusePort === true,
  };
  await app.listen(options);
}
