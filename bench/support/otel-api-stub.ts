// An empty stand-in for @opentelemetry/api, for the bench's "no OpenTelemetry"
// baseline (support/no-otel-hook.ts): every call @shop/auth makes returns at
// once, so the difference to the real no-op API is what the API costs.
const INVALID = { traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 };
interface StubSpan {
  isRecording(): boolean;
  spanContext(): typeof INVALID;
  setAttribute(): StubSpan;
  setAttributes(): StubSpan;
  setStatus(): StubSpan;
  recordException(): void;
  end(): void;
}
const span: StubSpan = {
  isRecording: (): boolean => false,
  spanContext: () => INVALID,
  setAttribute(): StubSpan {
    return span;
  },
  setAttributes(): StubSpan {
    return span;
  },
  setStatus(): StubSpan {
    return span;
  },
  recordException(): void {},
  end(): void {},
};
const ROOT = {};
export const ROOT_CONTEXT = ROOT;
export const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2, PRODUCER: 3, CONSUMER: 4 };
export const SpanStatusCode = { UNSET: 0, OK: 1, ERROR: 2 };
export const isSpanContextValid = (): boolean => false;
export const trace = { getTracer: () => ({ startSpan: () => span }), setSpan: (c: object) => c };
export const propagation = { extract: (c: object) => c, inject: (): void => {} };
export const context = {
  active: () => ROOT,
  with: (_c: object, fn: (...a: unknown[]) => unknown, thisArg?: unknown, ...args: unknown[]) =>
    fn.apply(thisArg, args),
  bind: <T>(_c: object, target: T): T => target,
};
