import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { installHttpBasics, type ServiceMetrics } from '@shop/service-kit';
import { MAX_LATENCY_MS } from './config.ts';
import type { CardProcessor, FaultSettings } from './processor.ts';

/** ADMIN_HOST is where the admin server listens: loopback only, since it is plaintext and unauthenticated. */
export const ADMIN_HOST = '127.0.0.1';

interface FaultsBody {
  latency_ms?: number;
  failure_rate?: number;
}

const faultsBodySchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    latency_ms: { type: 'integer', minimum: 0, maximum: MAX_LATENCY_MS },
    failure_rate: { type: 'number', minimum: 0, maximum: 1 },
  },
} as const;

function view(f: FaultSettings): { latency_ms: number; failure_rate: number } {
  return { latency_ms: f.latencyMs, failure_rate: f.failureRate };
}

/**
 * buildAdminApp builds the fault-injection server (not listening):
 * `GET /admin/faults` shows the processor's knobs, `POST /admin/faults`
 * changes them at run time, so a demo can make payments slow or flaky.
 */
export function buildAdminApp(
  processor: CardProcessor,
  metrics: ServiceMetrics,
  log?: FastifyBaseLogger,
): FastifyInstance {
  const app = Fastify({
    ...(log ? { loggerInstance: log } : { logger: false }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  });
  installHttpBasics(app, metrics);
  app.get('/admin/faults', () => view(processor.faults));
  app.post<{ Body: FaultsBody }>('/admin/faults', { schema: { body: faultsBodySchema } }, (request) => {
    const { latency_ms: latencyMs, failure_rate: failureRate } = request.body;
    const before = view(processor.faults);
    const after = view(
      processor.setFaults({
        ...(latencyMs !== undefined ? { latencyMs } : {}),
        ...(failureRate !== undefined ? { failureRate } : {}),
      }),
    );
    request.log.warn({ before, after }, 'processor faults changed');
    return after;
  });
  return app;
}
