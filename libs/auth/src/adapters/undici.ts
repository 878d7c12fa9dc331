import { Agent, type buildConnector } from 'undici';
import type { Authorizer } from '../authorize/authorizer.ts';
import { AuthError, isAuthError } from '../errors.ts';
import type { IdentitySource } from '../source/identity-source.ts';
import { connectMtls, type ResumableSession } from '../tls/client-connect.ts';

/** MtlsDispatcherOptions configure createMtlsDispatcher; other undici Agent options pass through. */
export interface MtlsDispatcherOptions extends Omit<Agent.Options, 'connect'> {
  /** source gives our SVID and the bundles servers are verified against. */
  source: IdentitySource;
  /** authorize decides whether the server's SPIFFE ID is the one we meant to call. */
  authorize: Authorizer;
  /** maxCachedSessions is the number of TLS sessions kept for resumption. Default: 100; 0 disables resumption. */
  maxCachedSessions?: number;
  /** connectTimeoutMs bounds TCP connect + handshake. Default: 10000. */
  connectTimeoutMs?: number;
  /** onHandshakeError is called when a connection fails verification or authorization. */
  onHandshakeError?: (error: AuthError) => void;
}

/**
 * createMtlsConnector returns an undici connector that presents the source's
 * current SVID on every new connection and verifies and authorizes the
 * server's X.509-SVID on every handshake, resumed or not.
 */
export function createMtlsConnector(
  o: Omit<MtlsDispatcherOptions, keyof Agent.Options> & { maxCachedSessions?: number },
): buildConnector.connector {
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
      source: o.source,
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
      ({ socket }) => {
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
 * createMtlsDispatcher returns an undici Agent for SPIFFE mTLS calls:
 * `request(url, { dispatcher })` or `fetch(url, { dispatcher })`. Rotation
 * needs nothing from the caller: each new connection uses the current SVID
 * and bundles.
 */
export function createMtlsDispatcher(options: MtlsDispatcherOptions): Agent {
  const { source, authorize, maxCachedSessions, connectTimeoutMs, onHandshakeError, ...agentOptions } = options;
  return new Agent({
    ...agentOptions,
    connect: createMtlsConnector({ source, authorize, maxCachedSessions, connectTimeoutMs, onHandshakeError }),
  });
}
