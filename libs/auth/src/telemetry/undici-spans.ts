// Client spans for undici requests over the mTLS dispatcher. The undici
// instrumentation (@opentelemetry/instrumentation-undici) sees requests but
// not the connection's verified server, so the dispatcher traces its own.
import {
  context,
  isSpanContextValid,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
} from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import type { VerifiedPeer } from '../verify/x509-verify.ts';
import { serverAttributes, SPAN_ATTRIBUTES, tlsAttributes, type HandshakeInfo } from './attributes.ts';
import { authTracer } from './tracer.ts';

/** OriginFacts are what the connector last verified for an origin ("host:port"). */
export interface OriginFacts {
  server: VerifiedPeer;
  handshake: HandshakeInfo;
  /** self is our SPIFFE ID on that connection. */
  self: string;
}

type Handler = Dispatcher.DispatchHandler;

/** originKey is the "host:port" key of an undici origin, as the connector keys its connections. */
export function originKey(origin: string | URL | undefined): string {
  if (origin === undefined) return '';
  const url = typeof origin === 'string' ? new URL(origin) : origin;
  return `${url.hostname}:${url.port || (url.protocol === 'http:' ? '80' : '443')}`;
}

// The headers undici was given, with the trace context added; the three
// shapes undici takes (record, flat array, iterable of pairs) are kept.
function withTraceHeaders(headers: Dispatcher.DispatchOptions['headers'], extra: Record<string, string>) {
  if (Object.keys(extra).length === 0) return headers;
  if (headers == null) return extra;
  if (Array.isArray(headers)) return [...headers, ...Object.entries(extra).flat()];
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return [...(headers as Iterable<[string, string]>), ...Object.entries(extra)];
  }
  return { ...(headers as Record<string, string>), ...extra };
}

/**
 * traceDispatch starts the client span of one request, adds the W3C trace
 * context to its headers, and returns the options and handler to dispatch
 * with: the span ends with the response's status (ERROR on 5xx or a failure)
 * and carries the origin's verified server ID (from `factsOf`).
 */
export function traceDispatch(
  opts: Dispatcher.DispatchOptions,
  handler: Handler,
  factsOf: (key: string) => OriginFacts | undefined,
): [Dispatcher.DispatchOptions, Handler] {
  const ctx = context.active();
  const method = opts.method;
  const span: Span = authTracer().startSpan(
    method,
    {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': method, 'url.path': opts.path.split('?', 1)[0] ?? '' },
    },
    ctx,
  );
  // No SDK (or nothing to record or pass on): the request goes as it is.
  if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return [opts, handler];
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ctx, span), carrier);
  const key = originKey(opts.origin);
  let ended = false;
  const end = (status?: number, error?: Error): void => {
    if (ended) return;
    ended = true;
    if (span.isRecording()) {
      const facts = factsOf(key);
      if (facts) {
        span.setAttributes(serverAttributes(facts.server));
        span.setAttributes(tlsAttributes(facts.handshake));
        span.setAttribute(SPAN_ATTRIBUTES.selfId, facts.self);
      }
      if (status !== undefined) span.setAttribute('http.response.status_code', status);
      if (error) {
        span.recordException(error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      } else if (status !== undefined && status >= 500) {
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  };
  let status: number | undefined;
  const traced: Handler = {
    onRequestStart: (controller, ctx2) => handler.onRequestStart?.(controller, ctx2),
    onRequestUpgrade: (controller, statusCode, headers, socket) => {
      handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
    },
    onResponseStart: (controller, statusCode, headers, statusMessage) => {
      if (statusCode >= 200) status = statusCode;
      handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
    },
    onResponseData: (controller, chunk) => {
      handler.onResponseData?.(controller, chunk);
    },
    onResponseEnd: (controller, trailers) => {
      end(status);
      handler.onResponseEnd?.(controller, trailers);
    },
    onResponseError: (controller, error) => {
      end(status, error);
      handler.onResponseError?.(controller, error);
    },
    onResponseStarted: () => handler.onResponseStarted?.(),
    onBodySent: (chunk) => handler.onBodySent?.(chunk),
    onRequestSent: () => handler.onRequestSent?.(),
  };
  return [{ ...opts, headers: withTraceHeaders(opts.headers, carrier) }, traced];
}
