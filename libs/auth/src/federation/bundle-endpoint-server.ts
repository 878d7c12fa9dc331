import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import { JwtBundle, type JwtBundleSource } from '../bundle/jwt-bundle.ts';
import { marshalSpiffeBundleJson } from '../bundle/spiffe-bundle.ts';
import type { X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import type { IdentityLifecycle, RotatedEvent } from '../source/identity-lifecycle.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import type { X509SvidSource } from '../svid/x509-svid-source.ts';

/** ServeHttpsSpiffe serves the endpoint with our own X.509-SVID (SPIFFE Federation §5.2.2.3). */
export interface ServeHttpsSpiffe {
  type: 'https_spiffe';
  /** svidSource gives the X.509-SVID the server presents, looked up again whenever `events` says it rotated. */
  svidSource: X509SvidSource;
  /** events tells the server when the SVID rotated (any identity source). Default: none (the SVID at start stays). */
  events?: IdentityLifecycle;
}

/** ServeHttpsWeb serves the endpoint with a Web PKI certificate (SPIFFE Federation §5.2.1.3). */
export interface ServeHttpsWeb {
  type: 'https_web';
  /** cert is the PEM certificate chain naming the endpoint's host. */
  cert: string | Buffer;
  /** key is its PEM private key. */
  key: string | Buffer;
}

/** BundleEndpointServerOptions configure a BundleEndpointServer. */
export interface BundleEndpointServerOptions {
  /** trustDomain is the trust domain whose bundle is served (ours). */
  trustDomain: string | TrustDomain;
  /** bundleSource gives the X.509 bundle served, looked up on every request (any identity source). */
  bundleSource: X509BundleSource;
  /** jwtBundleSource gives the JWT authorities served beside it. Default: none (no jwt-svid keys). */
  jwtBundleSource?: JwtBundleSource;
  /** profile is how the server authenticates itself. */
  profile: ServeHttpsSpiffe | ServeHttpsWeb;
  /** refreshHintSeconds is the `spiffe_refresh_hint` served. Default: 300. */
  refreshHintSeconds?: number;
  /** path the bundle is served at; other paths answer 404. Default: "/". */
  path?: string;
  /** host to listen on. Default: "127.0.0.1". */
  host?: string;
  /** port to listen on; 0 picks a free one (see `port` after listen()). Default: 0. */
  port?: number;
}

// Mozilla's "intermediate" configuration, which SPIFFE Federation §5 asks of a bundle endpoint: TLS 1.2 and 1.3.
const MIN_VERSION = 'TLSv1.2';

function svidContext(svid: X509Svid): SecureContextOptions {
  return { key: svid.privateKeyPem(), cert: svid.certChainPem(), minVersion: MIN_VERSION };
}

/**
 * BundleEndpointServer serves our trust domain's bundle as SPIFFE bundle
 * JSON with a refresh hint (SPIFFE Federation §5.2.1.3, §5.2.2.3) over HTTPS:
 * `https_spiffe` with our own X.509-SVID (a rotated SVID is presented from
 * the next handshake on) or `https_web` with a given certificate. It asks no
 * client for a certificate or credentials (§5.2.1.3, §5.2.2.3) and reads the
 * bundle from its source on every request, so the answer is always the
 * latest. `spiffe_sequence` starts at 1 and grows whenever the served X.509
 * authorities change.
 */
export class BundleEndpointServer {
  readonly #o: BundleEndpointServerOptions;
  readonly #td: TrustDomain;
  readonly #server: Server;
  #stopRotation: (() => void) | undefined;
  #sequence = 0;
  #lastDer: Buffer | undefined;

  constructor(options: BundleEndpointServerOptions) {
    this.#o = options;
    this.#td = typeof options.trustDomain === 'string' ? TrustDomain.parse(options.trustDomain) : options.trustDomain;
    const hint = options.refreshHintSeconds ?? 300;
    if (!Number.isSafeInteger(hint) || hint < 1) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `refreshHintSeconds must be a whole number of seconds ≥ 1 (got ${String(hint)})`,
      );
    }
    const p = options.profile;
    const tls: SecureContextOptions =
      p.type === 'https_spiffe'
        ? svidContext(p.svidSource.getX509Svid())
        : { cert: p.cert, key: p.key, minVersion: MIN_VERSION };
    this.#server = createServer({ ...tls, requestCert: false }, (req, res) => {
      this.#handle(req, res);
    });
    if (p.type === 'https_spiffe' && p.events) {
      const events = p.events;
      const onRotated = (e: RotatedEvent): void => {
        if (e.previous?.svid !== e.svid) this.#server.setSecureContext(svidContext(e.svid));
      };
      events.on('rotated', onRotated);
      this.#stopRotation = () => events.off('rotated', onRotated);
    }
  }

  /** listen starts serving; it resolves with the URL of the bundle. */
  async listen(): Promise<string> {
    this.#server.listen(this.#o.port ?? 0, this.#o.host ?? '127.0.0.1');
    await once(this.#server, 'listening');
    return this.url;
  }

  /** port is the port listened on (after listen()). */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** url is where the bundle is served (after listen()). */
  get url(): string {
    const host = this.#o.host ?? '127.0.0.1';
    return `https://${host.includes(':') ? `[${host}]` : host}:${String(this.port)}${this.#o.path ?? '/'}`;
  }

  /** close stops listening and ends open connections. */
  async close(): Promise<void> {
    this.#stopRotation?.();
    if (!this.#server.listening) return;
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
  }

  /** body returns the SPIFFE bundle JSON served now. */
  body(): string {
    const x509Bundle = this.#o.bundleSource.getX509BundleForTrustDomain(this.#td);
    const der = x509Bundle.toDer();
    if (this.#lastDer === undefined || !der.equals(this.#lastDer)) {
      this.#lastDer = der;
      this.#sequence++;
    }
    let jwtBundle: JwtBundle;
    try {
      jwtBundle = this.#o.jwtBundleSource?.getJwtBundleForTrustDomain(this.#td) ?? new JwtBundle(this.#td, []);
    } catch {
      jwtBundle = new JwtBundle(this.#td, []);
    }
    return marshalSpiffeBundleJson({
      x509Bundle,
      jwtBundle,
      sequence: this.#sequence,
      refreshHintSeconds: this.#o.refreshHintSeconds ?? 300,
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'https://endpoint.invalid').pathname;
    if (path !== (this.#o.path ?? '/')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('method not allowed\n');
      return;
    }
    let body: string;
    try {
      body = this.body();
    } catch (err) {
      // No bundle yet (a source not ready): nothing to serve, and nothing stale either.
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' });
      res.end(`${(err as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
