// A minimal OTLP/HTTP receiver for tests: takes JSON export requests on
// /v1/traces and keeps the spans, flattened, with their resource's
// attributes. Protobuf bodies are acknowledged and only counted.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** OtlpValue is an OTLP AnyValue in its JSON encoding. */
type OtlpValue = { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
type OtlpAttribute = { key: string; value: OtlpValue };

/** ReceivedSpan is one span as a test reads it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** kind: 2 server, 3 client (OTLP's SpanKind). */
  kind: number;
  /** status: 0 unset, 1 ok, 2 error. */
  status: { code: number; message?: string };
  attributes: Record<string, string | boolean | number>;
  resource: Record<string, string | boolean | number>;
}

function plain(attrs: OtlpAttribute[] | undefined): Record<string, string | boolean | number> {
  const out: Record<string, string | boolean | number> = {};
  for (const { key, value } of attrs ?? []) {
    const v = value.stringValue ?? value.boolValue ?? value.doubleValue ?? value.intValue;
    if (v !== undefined) out[key] = typeof v === 'string' && value.intValue !== undefined ? Number(v) : v;
  }
  return out;
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        status?: { code?: number; message?: string };
        attributes?: OtlpAttribute[];
      }[];
    }[];
  }[];
}

/** OtlpReceiver is a running receiver. */
export interface OtlpReceiver {
  /** url is the base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** requests counts the export requests received (any path). */
  requests: number;
  /** contentTypes are the content types of the requests to /v1/traces, in order. */
  contentTypes: string[];
  close(): Promise<void>;
}

/** startOtlpReceiver listens on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const receiver: OtlpReceiver = { url: '', spans: [], requests: 0, contentTypes: [], close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    receiver.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      receiver.contentTypes.push(String(req.headers['content-type']));
      // Protobuf is acknowledged (its content type is kept) but not decoded.
      if (!String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest;
      for (const rs of body.resourceSpans ?? []) {
        const resource = plain(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            receiver.spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: s.kind,
              status: { code: s.status?.code ?? 0, message: s.status?.message },
              attributes: plain(s.attributes),
              resource,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  receiver.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => {
        resolve();
      });
    });
  return receiver;
}
