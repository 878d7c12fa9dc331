// How a service's public listeners and upstream clients are secured: mTLS
// in-process through @shop/auth (the default), or "sidecar": plaintext on
// loopback only, with a SPIFFE-aware proxy (ghostunnel) in front of each
// listener and beside each client doing the mTLS and the authorization.
import { BlockList, isIP } from 'node:net';
import type { IdentitySource } from '@shop/auth';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from './errors.ts';
import type { IdentityView } from './identity-view.ts';

/** TRANSPORT_ENV names the variable that picks the transport: SHOP_TRANSPORT, prefixed so that no unrelated "TRANSPORT" turns mTLS off. */
export const TRANSPORT_ENV = 'SHOP_TRANSPORT';

/** TRANSPORTS are the values SHOP_TRANSPORT takes; "mtls" is the default. */
export const TRANSPORTS = ['mtls', 'sidecar'] as const;

/** Transport is one of TRANSPORTS. */
export type Transport = (typeof TRANSPORTS)[number];

/**
 * ListenerSecurity is how a service's API listener is secured: mTLS with
 * `source` (the default: our identity, and the bundles callers are verified
 * against), or `transport: "sidecar"`: plaintext, no identity in the process,
 * callers authorized by the sidecar in front (SHOP_TRANSPORT=sidecar).
 */
export type ListenerSecurity =
  { transport?: 'mtls'; source: IdentitySource } | { transport: 'sidecar'; source?: undefined };

/**
 * SIDECAR_CALLER is the caller a service in sidecar mode names in its audit
 * lines and records (payment's ledger): the sidecar verified and authorized
 * the caller, but the process never sees who it was. (ghostunnel 1.8.4's
 * `--proxy-protocol` sends a PROXY v2 header with the connection's
 * addresses only, no TLV with the client certificate: proxy/proxy.go.)
 */
export const SIDECAR_CALLER = 'unknown: authorized by the sidecar';

/** SIDECAR_AUTHORIZATION is what the start-up log line and /identity say about callers in sidecar mode. */
export const SIDECAR_AUTHORIZATION =
  'plaintext on loopback; mTLS and caller authorization are the job of the sidecar in front (ghostunnel --allow-uri), this process neither verifies nor knows its callers';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** isLoopbackHost tells whether `host` (an IP literal, bracketed IPv6 allowed, or "localhost") is a loopback address. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  const family = isIP(h);
  // BlockList maps IPv4-mapped IPv6 (::ffff:127.0.0.1) onto the IPv4 subnet.
  return family !== 0 && loopback.check(h, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * requireLoopback throws a ConfigError with code SVC_ERR_SIDECAR_NOT_LOOPBACK
 * naming `variable` when `host` is not a loopback address: with
 * SHOP_TRANSPORT=sidecar the traffic there is plaintext and unauthorized.
 */
export function requireLoopback(variable: string, host: string, what: string): void {
  if (isLoopbackHost(host)) return;
  throw new ConfigError(
    variable,
    `must be a loopback address (127.0.0.0/8, ::1 or localhost) when ${TRANSPORT_ENV}=sidecar: ${what} is plaintext and only the sidecar on this machine may reach it; got ${JSON.stringify(host)}`,
    'SVC_ERR_SIDECAR_NOT_LOOPBACK',
  );
}

/** requireLoopbackUrl is requireLoopback for the host of a URL or a "host:port" target. */
export function requireLoopbackUrl(variable: string, target: string, what: string): void {
  const host = target.includes('://') ? new URL(target).hostname : target.replace(/:\d+$/, '');
  requireLoopback(variable, host, what);
}

/** sidecarIdentityView is GET /identity of a service in sidecar mode: no identity in the process, and why. */
export function sidecarIdentityView(): IdentityView {
  return {
    mode: 'sidecar',
    source: SIDECAR_AUTHORIZATION,
    ready: true,
    spiffeId: null,
    serial: null,
    notBefore: null,
    notAfter: null,
    secondsToExpiry: null,
    rotations: 0,
    history: [],
    trustRoots: {},
    lastError: null,
  };
}

/**
 * auditSidecarCallers writes one audit line per request of a plaintext API
 * in sidecar mode ("authz by sidecar"), naming the caller as SIDECAR_CALLER,
 * where an mTLS API writes "authz allow" with the verified SPIFFE ID.
 */
export function auditSidecarCallers(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    request.log.info(
      {
        authz: {
          decision: 'sidecar',
          caller: SIDECAR_CALLER,
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
        },
      },
      'authz by sidecar',
    );
    done();
  });
}
