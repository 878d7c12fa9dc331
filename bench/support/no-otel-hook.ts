// Preloaded (node --import) into a bench server for the "no OpenTelemetry"
// baseline: @opentelemetry/api resolves to support/otel-api-stub.ts.
import { registerHooks } from 'node:module';

const STUB = new URL('./otel-api-stub.ts', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === '@opentelemetry/api') return { url: STUB, shortCircuit: true };
    return nextResolve(specifier, context);
  },
});
