// The console's OTLP/HTTP JSON receiver keeps the last traces here, in memory.
// The JSON mapping of OTLP is protobuf's: ids are hex strings, times are
// nanoseconds as decimal strings, attribute values are one-key objects
// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).

/** AttributeValue is a span attribute's value, flattened. */
export type AttributeValue = string | number | boolean | null;

/** SpanView is one span as the page shows it. */
export interface SpanView {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer' | 'unspecified';
  /** service is the resource's `service.name`. */
  service: string;
  /** start is the span's start in milliseconds since the epoch. */
  start: number;
  durationMs: number;
  status: 'unset' | 'ok' | 'error';
  attributes: Record<string, AttributeValue>;
}

/** TraceView is one trace: its spans, oldest first. */
export interface TraceView {
  traceId: string;
  /** receivedAt is when its latest span arrived (ms since the epoch). */
  receivedAt: number;
  spans: SpanView[];
}

/** MAX_SPANS_PER_TRACE bounds one trace's memory. */
export const MAX_SPANS_PER_TRACE = 200;

const KINDS: readonly SpanView['kind'][] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function flatten(value: unknown): AttributeValue {
  if (!isObject(value)) return null;
  if (typeof value.stringValue === 'string') return value.stringValue;
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (isObject(value.arrayValue) && Array.isArray(value.arrayValue.values))
    return value.arrayValue.values.map((v) => String(flatten(v))).join(', ');
  return null;
}

function attributes(list: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  if (!Array.isArray(list)) return out;
  for (const kv of list) if (isObject(kv) && typeof kv.key === 'string') out[kv.key] = flatten(kv.value);
  return out;
}

function kindOf(k: unknown): SpanView['kind'] {
  if (typeof k === 'number') return KINDS[k] ?? 'unspecified';
  if (typeof k === 'string') {
    const name = k.replace(/^SPAN_KIND_/, '').toLowerCase();
    return (KINDS as readonly string[]).includes(name) ? (name as SpanView['kind']) : 'unspecified';
  }
  return 'unspecified';
}

function statusOf(s: unknown): SpanView['status'] {
  const code = isObject(s) ? s.code : undefined;
  if (code === 1 || code === 'STATUS_CODE_OK') return 'ok';
  if (code === 2 || code === 'STATUS_CODE_ERROR') return 'error';
  return 'unset';
}

function nanosToMs(v: unknown): number {
  if (typeof v === 'number') return v / 1e6;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(BigInt(v) / 1000n) / 1000;
  return 0;
}

/**
 * spansOfExport reads an OTLP ExportTraceServiceRequest in JSON; it returns
 * undefined when `body` does not have that shape (no resourceSpans array).
 */
export function spansOfExport(body: unknown): SpanView[] | undefined {
  if (!isObject(body) || !Array.isArray(body.resourceSpans)) return undefined;
  const out: SpanView[] = [];
  for (const rs of body.resourceSpans) {
    if (!isObject(rs)) continue;
    const resource = attributes(isObject(rs.resource) ? rs.resource.attributes : undefined);
    const service = typeof resource['service.name'] === 'string' ? resource['service.name'] : 'unknown';
    const scopes = Array.isArray(rs.scopeSpans) ? rs.scopeSpans : [];
    for (const ss of scopes) {
      if (!isObject(ss) || !Array.isArray(ss.spans)) continue;
      for (const s of ss.spans) {
        if (!isObject(s) || typeof s.traceId !== 'string' || typeof s.spanId !== 'string') continue;
        const start = nanosToMs(s.startTimeUnixNano);
        const end = nanosToMs(s.endTimeUnixNano);
        out.push({
          traceId: s.traceId.toLowerCase(),
          spanId: s.spanId.toLowerCase(),
          parentSpanId:
            typeof s.parentSpanId === 'string' && s.parentSpanId !== '' ? s.parentSpanId.toLowerCase() : null,
          name: typeof s.name === 'string' ? s.name : '',
          kind: kindOf(s.kind),
          service,
          start,
          durationMs: Math.max(0, end - start),
          status: statusOf(s.status),
          attributes: attributes(s.attributes),
        });
      }
    }
  }
  return out;
}

/** DENIED_KEPT is how many traces with a denied hop are kept apart, so busy traffic does not push them out. */
export const DENIED_KEPT = 10;

function hasDeny(t: TraceView): boolean {
  return t.spans.some((s) => s.attributes['spiffe.authz.decision'] === 'deny');
}

/** TraceStore keeps the `limit` most recently updated traces, and the last DENIED_KEPT with a denied hop. */
export class TraceStore {
  readonly #limit: number;
  readonly #traces = new Map<string, TraceView>();
  readonly #denied = new Map<string, TraceView>();
  #spansReceived = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** spansReceived counts every span accepted since start. */
  get spansReceived(): number {
    return this.#spansReceived;
  }

  /** add files spans under their traces, dropping the least recently updated traces beyond the limit. */
  add(spans: readonly SpanView[], now = Date.now()): void {
    for (const span of spans) {
      const t = this.#traces.get(span.traceId) ?? { traceId: span.traceId, receivedAt: now, spans: [] };
      this.#traces.delete(span.traceId);
      t.receivedAt = now;
      if (t.spans.length < MAX_SPANS_PER_TRACE && !t.spans.some((s) => s.spanId === span.spanId)) t.spans.push(span);
      t.spans.sort((a, b) => a.start - b.start);
      this.#traces.set(span.traceId, t);
      if (this.#denied.has(span.traceId) || hasDeny(t)) {
        this.#denied.delete(span.traceId);
        this.#denied.set(span.traceId, t);
      }
      this.#spansReceived++;
    }
    while (this.#denied.size > DENIED_KEPT) {
      const oldest = this.#denied.keys().next().value;
      if (oldest === undefined) break;
      this.#denied.delete(oldest);
    }
    while (this.#traces.size > this.#limit) {
      const oldest = this.#traces.keys().next().value;
      if (oldest === undefined) break;
      this.#traces.delete(oldest);
    }
  }

  /**
   * shown returns the traces the page lists: up to `denied` with a denied
   * hop (`spiffe.authz.decision` deny; kept even once older than the last
   * `limit`), then up to `n` others that cross a
   * service boundary (a span with a peer's or a server's SPIFFE ID), the most
   * recently updated first.
   */
  shown(n: number, denied: number): TraceView[] {
    const all = this.recent(this.#limit);
    const withDeny = [...this.#denied.values()].reverse();
    const hops = all.filter(
      (t) =>
        !withDeny.includes(t) &&
        t.spans.some(
          (s) => s.attributes['spiffe.peer.id'] !== undefined || s.attributes['spiffe.server.id'] !== undefined,
        ),
    );
    return [...withDeny.slice(0, denied), ...hops.slice(0, n)];
  }

  /** recent returns up to `n` traces, the most recently updated first. */
  recent(n: number): TraceView[] {
    return [...this.#traces.values()].reverse().slice(0, n);
  }
}
