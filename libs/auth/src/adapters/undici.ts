import { Agent, type buildConnector, type Dispatcher } from 'undici';
import type { Authorizer } from '../authorize/authorizer.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { resolveSources, type SourceOptions } from '../source/x509-sources.ts';
import { connectMtls, type ResumableSession } from '../tls/client-connect.ts';
import { handshakeInfoOf, type HandshakeInfo } from '../telemetry/attributes.ts';
import { traceDispatch, type OriginFacts } from '../telemetry/undici-spans.ts';

/**
 * MtlsDispatcherOptions configure createMtlsDispatcher: its sources
 * (`source`, or `svidSource` and `bundleSource`), the settings below, and
 * any other undici Agent option, passed through.
 */
export type MtlsDispatcherOptions = SourceOptions & MtlsDispatcherSettings;

/** MtlsDispatcherSettings are createMtlsDispatcher's own settings; other undici Agent options pass through. */
export interface MtlsDispatcherSettings extends Omit<Agent.Options, 'connect'> {
  /** authorize decides whether the server's SPIFFE ID is the one we meant to call. */
  authorize: Authorizer;
  /** maxCachedSessions is the number of TLS sessions kept for resumption. Default: 100; 0 disables resumption. */
  maxCachedSessions?: number;
  /** connectTimeoutMs bounds TCP connect + handshake. Default: 10000. */
  connectTimeoutMs?: number;
  /** onHandshakeError is called when a connection fails verification or authorization. */
  onHandshakeError?: (error: AuthError) => void;
  /** onHandshake is called once per completed and verified TLS handshake (for metrics). */
  onHandshake?: (info: HandshakeInfo) => void;
}

/** MtlsConnectorOptions configure createMtlsConnector: MtlsDispatcherOptions without undici's own. */
export type MtlsConnectorOptions = SourceOptions &
  Pick<
    MtlsDispatcherSettings,
    'authorize' | 'maxCachedSessions' | 'connectTimeoutMs' | 'onHandshakeError' | 'onHandshake'
  > & {
    /** onVerified receives each verified connection's facts, keyed "host:port" (the dispatcher's client spans read them). */
    onVerified?: (key: string, facts: OriginFacts) => void;
  };

/**
 * createMtlsConnector returns an undici connector that presents the SVID
 * source's current SVID on every new connection and verifies and authorizes
 * the server's X.509-SVID on every handshake, resumed or not.
 */
export function createMtlsConnector(o: MtlsConnectorOptions): buildConnector.connector {
  const { svidSource, bundleSource } = resolveSources(o);
  const maxSessions = o.maxCachedSessions ?? 100;
  const sessions = new Map<string, ResumableSession>();
  return (opts, callback) => {
    if (opts.protocol !== 'https:') {
      callback(
        new AuthError(
          'AUTH_ERR_CONFIG_INVALID',
          `mTLS dispatcher refuses ${opts.protocol}//${opts.hostname}: use an https:// URL`,
        ),
        null,
      );
      return;
    }
    const port = Number(opts.port) || 443;
    const key = `${opts.servername ?? opts.hostname}:${port}`;
    connectMtls({
      host: opts.hostname,
      port,
      servername: opts.servername ?? undefined,
      socket: opts.httpSocket,
      svidSource,
      bundleSource,
      authorize: o.authorize,
      session: maxSessions > 0 ? sessions.get(key) : undefined,
      ALPNProtocols: ['http/1.1'],
      timeoutMs: o.connectTimeoutMs,
      onSession:
        maxSessions > 0
          ? (session) => {
              sessions.delete(key);
              sessions.set(key, session);
              if (sessions.size > maxSessions) {
                const oldest = sessions.keys().next();
                if (!oldest.done) sessions.delete(oldest.value);
              }
            }
          : undefined,
    }).then(
      ({ socket, peer }) => {
        const handshake = handshakeInfoOf(socket, 'client');
        o.onHandshake?.(handshake);
        if (o.onVerified) o.onVerified(key, { server: peer, handshake, self: svidSource.getX509Svid().id.toString() });
        callback(null, socket);
      },
      (err: unknown) => {
        const error = isAuthError(err) ? err : new AuthError('AUTH_ERR_TLS_CONNECT', String(err), { cause: err });
        // A session whose server now fails verification must not be offered again.
        sessions.delete(key);
        o.onHandshakeError?.(error);
        callback(error, null);
      },
    );
  };
}

/**
 * TracingAgent is an undici Agent that starts a client span per request
 * (W3C trace context in its headers, the server's verified SPIFFE ID on the
 * span); a no-op unless the application registered an OpenTelemetry SDK.
 */
class TracingAgent extends Agent {
  readonly #facts: Map<string, OriginFacts>;

  constructor(options: Agent.Options, facts: Map<string, OriginFacts>) {
    super(options);
    this.#facts = facts;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const [tracedOpts, tracedHandler] = traceDispatch(opts, handler, (key) => this.#facts.get(key));
    return super.dispatch(tracedOpts, tracedHandler);
  }
}

/**
 * createMtlsDispatcher returns an undici Agent for SPIFFE mTLS calls:
 * `request(url, { dispatcher })` or `fetch(url, { dispatcher })`. Rotation
 * needs nothing from the caller: each new connection uses the current SVID
 * and bundles.
 */
export function createMtlsDispatcher(options: MtlsDispatcherOptions): Agent {
  const sources = resolveSources(options);
  /* eslint-disable @typescript-eslint/no-unused-vars -- the sources are taken out of undici's options */
  const {
    source,
    svidSource,
    bundleSource,
    events,
    authorize,
    maxCachedSessions,
    connectTimeoutMs,
    onHandshakeError,
    onHandshake,
    ...agentOptions
  } = options;
  /* eslint-enable @typescript-eslint/no-unused-vars */
  // One entry per origin: the server a client span names is the one its origin's latest connection verified.
  const facts = new Map<string, OriginFacts>();
  const connect = createMtlsConnector({
    ...sources,
    authorize,
    maxCachedSessions,
    connectTimeoutMs,
    onHandshakeError,
    onHandshake,
    onVerified: (key, f) => facts.set(key, f),
  });
  return new TracingAgent({ ...agentOptions, connect }, facts);
}
