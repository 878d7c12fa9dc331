// @shop/auth/telemetry: the span attribute names @shop/auth writes (a
// contract, listed in docs/telemetry.md), what a TLS handshake negotiated,
// and request tracing for a fastify app without the plugin. Depends on
// @opentelemetry/api only: spans are no-ops unless the application
// registers an OpenTelemetry SDK.
export { SPAN_ATTRIBUTES, handshakeInfoOf, type HandshakeInfo } from './telemetry/attributes.ts';
export { TRACER_NAME } from './telemetry/tracer.ts';
export { traceRequests } from './telemetry/fastify-tracing.ts';
