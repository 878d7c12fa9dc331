// OpenTelemetry tracing for a service process, configured only by the
// standard OTEL_* variables. Off (and the SDK never loaded) unless an OTLP
// endpoint is set: the spans @shop/auth starts then stay no-ops.
import { SPAN_ATTRIBUTES } from '@shop/auth/telemetry';
import type { Logger } from './metrics.ts';

/** TracingSettings say whether tracing is on, read once from the environment. */
export interface TracingSettings {
  readonly enabled: boolean;
  /** reason says why it is off, or where spans go when it is on. */
  readonly reason: string;
}

const TRUE = /^\s*true\s*$/i;

/**
 * tracingSettings reads OTEL_SDK_DISABLED and the OTLP endpoints:
 * tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT is set (non-empty) and the SDK is not disabled.
 * Everything else (protocol, service name, sampler, headers) is read by the
 * SDK itself, as the OpenTelemetry specification defines it.
 */
export function tracingSettings(env: NodeJS.ProcessEnv = process.env): TracingSettings {
  if (TRUE.test(env.OTEL_SDK_DISABLED ?? ''))
    return Object.freeze({ enabled: false, reason: 'OTEL_SDK_DISABLED=true' });
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!traces && !base) {
    return Object.freeze({
      enabled: false,
      reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set',
    });
  }
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  return Object.freeze({
    enabled: true,
    reason: `OTLP ${protocol} to ${traces ? traces : `${base ?? ''}/v1/traces`}`,
  });
}

/** Tracing is a started SDK. */
export interface Tracing {
  /** shutdown exports the spans still buffered and stops the SDK; a failed export is logged, never thrown. */
  shutdown(): Promise<void>;
}

/** StartTracingOptions configure startTracing. */
export interface StartTracingOptions {
  /** serviceName is `service.name` unless OTEL_SERVICE_NAME is set. */
  serviceName: string;
  /** selfId is our SPIFFE ID, put on the resource as `spiffe.self.id`. */
  selfId?: string;
  /** env decides whether tracing is on (tracingSettings); the SDK itself reads process.env. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Pick<Logger, 'info' | 'warn'>;
}

/**
 * startTracing starts the OpenTelemetry Node SDK when tracingSettings says
 * tracing is on, and resolves to undefined (having loaded nothing) when it
 * is off. The SDK reads OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (http/protobuf,
 * http/json or grpc), OTEL_TRACES_SAMPLER(_ARG) and the rest itself; it sets
 * the W3C trace-context propagator and the AsyncLocalStorage context
 * manager the spans of @shop/auth need to chain across services. No
 * instrumentation is loaded: @shop/auth traces its own transports (see
 * libs/auth/docs/telemetry.md for why).
 */
export async function startTracing(o: StartTracingOptions): Promise<Tracing | undefined> {
  const env = o.env ?? process.env;
  const settings = tracingSettings(env);
  if (!settings.enabled) return undefined;
  // Loaded only now: a process without an exporter never loads the SDK.
  const [{ NodeSDK }, { defaultResource, resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/resources'),
  ]);
  const own = o.selfId === undefined ? {} : { [SPAN_ATTRIBUTES.selfId]: o.selfId };
  const sdk = new NodeSDK({
    resource: defaultResource().merge(resourceFromAttributes(own)),
    // OTEL_SERVICE_NAME, read by the SDK's env detector, wins over our name.
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: o.serviceName }),
    instrumentations: [],
    // Traces only: metrics are scraped from the ops port, and logs go to stdout.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  o.log?.info({ tracing: settings.reason }, 'tracing on');
  // A collector that is gone must not turn a clean shutdown into a failed one.
  return {
    shutdown: () =>
      sdk.shutdown().catch((err: unknown) => {
        o.log?.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'last spans not exported');
      }),
  };
}
