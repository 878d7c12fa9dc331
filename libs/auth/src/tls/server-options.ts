import {
  createSecureContext,
  type SecureContext,
  type SecureContextOptions,
  type Server,
  type TlsOptions,
} from 'node:tls';
import type { IdentityLifecycle, RotatedEvent } from '../source/identity-lifecycle.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import type { X509SvidSource } from '../svid/x509-svid-source.ts';

// TLS 1.3 only: no renegotiation, encrypted certificates, and one handshake
// shape to reason about.
const MIN_VERSION = 'TLSv1.3';

/** identityContextOptions are the TLS key/cert options presenting `svid`. */
export function identityContextOptions(svid: X509Svid): SecureContextOptions {
  return { key: svid.privateKeyPem(), cert: svid.certChainPem(), minVersion: MIN_VERSION };
}

const contexts = new WeakMap<X509Svid, SecureContext>();

/** secureContextFor returns a SecureContext presenting `svid`, built once per SVID. */
export function secureContextFor(svid: X509Svid): SecureContext {
  let ctx = contexts.get(svid);
  if (!ctx) {
    ctx = createSecureContext(identityContextOptions(svid));
    contexts.set(svid, ctx);
  }
  return ctx;
}

/**
 * mtlsServerOptions are the options for `tls.createServer` / `https.createServer`
 * (and fastify's `https`): present the SVID source's current SVID, ask every client
 * for a certificate, TLS 1.3 minimum.
 *
 * OpenSSL is told not to reject clients (`rejectUnauthorized: false`) because
 * it could only check them against one pooled CA list; the SPIFFE check, per
 * trust domain, is done by ConnectionVerifier on every connection, and
 * unverified connections are answered 401 / UNAUTHENTICATED.
 */
export function mtlsServerOptions(svidSource: X509SvidSource, extra: TlsOptions = {}): TlsOptions {
  return {
    ...extra,
    ...identityContextOptions(svidSource.getX509Svid()),
    requestCert: true,
    rejectUnauthorized: false,
  };
}

/**
 * keepServerIdentityCurrent swaps the server's certificate whenever `events`
 * says the SVID rotated (`server.setSecureContext`); new handshakes present
 * the new SVID, open connections keep theirs. When the SVID is withdrawn
 * (`withdrawn`), the server is left with no certificate, so new handshakes
 * fail until the next `rotated`. Returns a function that stops it.
 */
export function keepServerIdentityCurrent(
  server: Server,
  events: IdentityLifecycle,
  extra: TlsOptions = {},
): () => void {
  const onRotated = (e: RotatedEvent): void => {
    if (e.previous?.svid === e.svid) return;
    server.setSecureContext({ ...extra, ...identityContextOptions(e.svid) });
  };
  const onWithdrawn = (): void => {
    server.setSecureContext({ ...extra, minVersion: MIN_VERSION });
  };
  events.on('rotated', onRotated);
  events.on('withdrawn', onWithdrawn);
  return () => {
    events.off('rotated', onRotated);
    events.off('withdrawn', onWithdrawn);
  };
}
