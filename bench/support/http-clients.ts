// The HTTP clients of the bench, all undici: a plain Agent, raw Node TLS and
// mTLS through `connect` options, and @shop/auth's mTLS dispatcher.
import { createSecureContext } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { authorizeId, type Authorizer, type IdentitySource, type VerdictCache } from '@shop/auth';
import { createMtlsConnector, createMtlsDispatcher } from '@shop/auth/undici';
import type { Cleanup } from './cleanup.ts';
import { SERVER_ID, checkSpiffeUri, type BenchPki } from './pki.ts';

/** ConnectionCounter counts the connections a client opened, and how many resumed a TLS session. */
export interface ConnectionCounter {
  connections: number;
  resumed: number;
}

/** ClientOptions shape one client. */
export interface ClientOptions {
  /** connections per origin; each carries one request at a time. */
  connections: number;
  /** maxCachedSessions for TLS resumption; 0 disables it. Default: undici's / @shop/auth's 100. */
  maxCachedSessions?: number;
  counter?: ConnectionCounter;
}

function countingConnector(inner: buildConnector.connector, counter?: ConnectionCounter): buildConnector.connector {
  if (!counter) return inner;
  return (opts, callback) => {
    inner(opts, (...args) => {
      const [err, socket] = args;
      if (err === null) {
        counter.connections++;
        if ('isSessionReused' in socket && socket.isSessionReused()) counter.resumed++;
        callback(null, socket);
      } else {
        callback(err, null);
      }
    });
  };
}

function track<D extends Dispatcher>(cleanup: Cleanup, what: string, d: D): D {
  cleanup.add(what, () => d.destroy());
  return d;
}

/** plainClient is an undici Agent for http:// URLs. */
export function plainClient(cleanup: Cleanup, o: ClientOptions): Agent {
  return track(cleanup, 'plain client', new Agent({ connections: o.connections, pipelining: 1 }));
}

/**
 * rawTlsClient is an undici Agent doing what Node alone offers: the CA for the
 * server, the URI SAN checked by hand, and (mTLS) our certificate. The
 * SecureContext is built once, as @shop/auth does: handing undici PEM
 * options instead would parse them again on every connection.
 */
export function rawTlsClient(cleanup: Cleanup, pki: BenchPki, o: ClientOptions & { mutual: boolean }): Agent {
  const secureContext = createSecureContext({
    ca: pki.caPem,
    ...(o.mutual ? { cert: pki.client.certPem, key: pki.client.keyPem } : {}),
    minVersion: 'TLSv1.3',
  });
  const connector = buildConnector({
    secureContext,
    // HTTP/1.1 only, like every server and client here: undici would offer h2,
    // and a Go server would take it.
    allowH2: false,
    checkServerIdentity: checkSpiffeUri(SERVER_ID),
    maxCachedSessions: o.maxCachedSessions ?? 100,
  });
  return track(
    cleanup,
    'raw TLS client',
    new Agent({ connections: o.connections, pipelining: 1, connect: countingConnector(connector, o.counter) }),
  );
}

/** authClient is @shop/auth's `createMtlsDispatcher`, or the same Agent around its connector when counting connections. */
export function authClient(
  cleanup: Cleanup,
  source: IdentitySource,
  o: ClientOptions & { authorize?: Authorizer; verdicts?: VerdictCache },
): Agent {
  const options = {
    source,
    authorize: o.authorize ?? authorizeId(SERVER_ID),
    ...(o.verdicts === undefined ? {} : { verdicts: o.verdicts }),
    ...(o.maxCachedSessions === undefined ? {} : { maxCachedSessions: o.maxCachedSessions }),
  };
  if (!o.counter) {
    return track(
      cleanup,
      '@shop/auth client',
      createMtlsDispatcher({ ...options, connections: o.connections, pipelining: 1 }),
    );
  }
  const connector = createMtlsConnector(options);
  return track(
    cleanup,
    '@shop/auth client',
    new Agent({ connections: o.connections, pipelining: 1, connect: countingConnector(connector, o.counter) }),
  );
}

/** countingAuthorizer wraps an authorizer and counts its calls: one per verified connection, resumed or not. */
export function countingAuthorizer(inner: Authorizer): Authorizer & { calls: number } {
  const counted = Object.assign(
    (...args: Parameters<Authorizer>) => {
      counted.calls++;
      return inner(...args);
    },
    { rule: inner.rule, calls: 0 },
  );
  return counted;
}
