// One server span per fastify request, active while the request runs.
import { context } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { httpServerSpan } from './http-server-span.ts';

const traced = new WeakSet<FastifyInstance>();

/**
 * traceRequests gives every request of `app` a server span (see
 * httpServerSpan), continuing the caller's trace, and runs the request's
 * later hooks and handler in its context. The fastify plugin calls it; an
 * app without the plugin (a plain HTTP API) calls it itself. Calling it
 * again on the same instance adds nothing.
 */
export function traceRequests(app: FastifyInstance): void {
  if (traced.has(app)) return;
  traced.add(app);
  app.addHook('onRequest', (request, reply, done) => {
    const { context: ctx } = httpServerSpan(request.raw, reply.raw, {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      path: request.url.split('?', 1)[0] ?? '',
    });
    context.with(ctx, done);
  });
}
