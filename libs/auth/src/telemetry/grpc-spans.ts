// Spans of gRPC calls, both ends, with W3C trace context in the metadata.
// @opentelemetry/instrumentation-grpc would need grpc-js patched at load
// time (a loader hook under ESM); an interceptor needs nothing of the kind.
import * as grpc from '@grpc/grpc-js';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import type { VerifiedPeer } from '../verify/x509-verify.ts';
import { serverAttributes, SPAN_ATTRIBUTES } from './attributes.ts';
import { authTracer } from './tracer.ts';

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key);
    return values.length === 0 ? undefined : values.map(String);
  },
};

const metadataSetter: TextMapSetter<grpc.Metadata> = {
  set: (carrier, key, value) => {
    carrier.set(key, value);
  },
};

/** HeadersCarrier is an HTTP/2 header block (a gRPC call's metadata before grpc-js parses it). */
type HeadersCarrier = Record<string, string | string[] | undefined>;

function rpcAttributes(path: string): Record<string, string> {
  const [, service = '', method = ''] = path.split('/');
  return { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method };
}

/**
 * startGrpcServerSpan starts the server span of a call to `path`, child of
 * the trace context in the call's metadata (or raw HTTP/2 headers).
 */
export function startGrpcServerSpan(path: string, carrier: grpc.Metadata | HeadersCarrier): Span {
  const parent =
    carrier instanceof grpc.Metadata
      ? propagation.extract(ROOT_CONTEXT, carrier, metadataGetter)
      : propagation.extract(ROOT_CONTEXT, carrier);
  return authTracer().startSpan(
    path.slice(1) || 'grpc',
    { kind: SpanKind.SERVER, attributes: rpcAttributes(path) },
    parent,
  );
}

/** endGrpcSpan ends a call's span with its gRPC status (ERROR unless OK; a refusal already set its own). */
export function endGrpcSpan(span: Span, code: grpc.status, details?: string): void {
  span.setAttribute('rpc.grpc.status_code', code);
  if (code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: details });
  span.end();
}

/** ServerOf returns the SPIFFE ID of the server a channel last verified, with our own ID. */
export type ServerOf = () => { server?: VerifiedPeer; self?: string };

/**
 * grpcClientSpans returns a client interceptor that starts a client span per
 * call, sends the trace context in the call's metadata, and puts on the span
 * the server's verified SPIFFE ID (from `serverOf`, the channel credentials'
 * last verified server) and the status.
 */
export function grpcClientSpans(serverOf: ServerOf): grpc.Interceptor {
  return (options, nextCall) => {
    const path = options.method_definition.path;
    const ctx = context.active();
    const span = authTracer().startSpan(path.slice(1), { kind: SpanKind.CLIENT, attributes: rpcAttributes(path) }, ctx);
    let ended = false;
    const end = (code: grpc.status, details?: string): void => {
      if (ended) return;
      ended = true;
      if (span.isRecording()) {
        const { server, self } = serverOf();
        if (server) span.setAttributes(serverAttributes(server));
        if (self !== undefined) span.setAttribute(SPAN_ATTRIBUTES.selfId, self);
      }
      endGrpcSpan(span, code, details);
    };
    return new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, _listener, next) => {
        propagation.inject(trace.setSpan(ctx, span), metadata, metadataSetter);
        // grpc-js fills in the listener methods left out.
        next(metadata, {
          onReceiveStatus: (status, nextStatus) => {
            end(status.code, status.details);
            nextStatus(status);
          },
        });
      },
    });
  };
}
