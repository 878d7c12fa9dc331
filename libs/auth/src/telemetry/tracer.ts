// The one tracer of @shop/auth. It depends on @opentelemetry/api only: with
// no SDK registered by the application every span is a no-op, and nothing is
// exported (see libs/auth/docs/telemetry.md).
import { trace, type Tracer } from '@opentelemetry/api';

/** TRACER_NAME is the instrumentation scope of the spans @shop/auth starts. */
export const TRACER_NAME = '@shop/auth';

// A ProxyTracer: it forwards to whatever provider is registered later.
const tracer: Tracer = trace.getTracer(TRACER_NAME, '0.1.0');

/** authTracer returns the tracer @shop/auth starts its spans with. */
export function authTracer(): Tracer {
  return tracer;
}
