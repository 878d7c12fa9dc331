// The server span of one HTTP request: started once per request (by the
// first hook that asks, the fastify plugin or service-kit's basics), its
// parent taken from the W3C `traceparent` the caller sent, and active for
// the rest of the request so calls its handler makes are its children.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  context,
  isSpanContextValid,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { authTracer } from './tracer.ts';

/** HttpServerSpan is a request's span and the context it is active in. */
export interface HttpServerSpan {
  span: Span;
  context: Context;
}

const spans = new WeakMap<IncomingMessage, HttpServerSpan>();

/** HttpRequestFacts are what names an HTTP server span. */
export interface HttpRequestFacts {
  method: string;
  /** route is the matched route's pattern, or "unmatched". */
  route: string;
  /** path is the URL's path, without the query. */
  path: string;
}

/**
 * httpServerSpan returns the span of the request `req`, starting it if it
 * has none yet; it ends when the response is sent (or the connection
 * closes), with the status code, ERROR on a 5xx or on a refusal.
 */
export function httpServerSpan(req: IncomingMessage, res: ServerResponse, facts: HttpRequestFacts): HttpServerSpan {
  const known = spans.get(req);
  if (known) return known;
  const parent = propagation.extract(context.active(), req.headers);
  const span = authTracer().startSpan(
    `${facts.method} ${facts.route}`,
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': facts.method, 'http.route': facts.route, 'url.path': facts.path },
    },
    parent,
  );
  const entry = { span, context: trace.setSpan(parent, span) };
  // No SDK (or nothing to record or pass on): nothing more to do for this request.
  if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return entry;
  spans.set(req, entry);
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };
  res.once('finish', end);
  res.once('close', end);
  // Listeners added from here on (body parsing) run in the request's context.
  context.bind(entry.context, req);
  return entry;
}

/** activeHttpServerSpan returns the span of `req` if one was started. */
export function activeHttpServerSpan(req: IncomingMessage): Span | undefined {
  return spans.get(req)?.span;
}
