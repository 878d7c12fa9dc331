import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import type { buildConnector } from 'undici';
import type { BundleWarning } from '../bundle/bundle-warning.ts';
import { parseSpiffeBundleJson, type ParsedSpiffeBundle } from '../bundle/spiffe-bundle.ts';
import type { X509Bundle, X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import { peerChainFromSocket } from '../tls/peer-chain.ts';
import { verifyX509Svid } from '../verify/x509-verify.ts';
import { Backoff, type BackoffOptions } from '../workloadapi/backoff.ts';
import {
  checkEndpointUrl,
  resolveBundleEndpoint,
  type BundleEndpointConfig,
  type ResolvedBundleEndpoint,
} from './bundle-endpoint.ts';

/** BundleEndpointClientOptions configure a BundleEndpointClient: the relationship, then the schedule. */
export interface BundleEndpointClientOptions extends BundleEndpointConfig {
  /** defaultRefreshSeconds is the polling interval when a bundle has no `spiffe_refresh_hint`. Default: 300 (SPIFFE Federation §4.1). */
  defaultRefreshSeconds?: number;
  /** minRefreshSeconds is the floor of the polling interval, whatever the hint says. Default: 1. */
  minRefreshSeconds?: number;
  /** maxRefreshSeconds is the ceiling of the polling interval, whatever the hint says. Default: 3600. */
  maxRefreshSeconds?: number;
  /** backoff shapes the retries after a failed fetch; a retry never waits longer than the polling interval. Default: 1 s doubling, equal jitter. */
  backoff?: BackoffOptions;
  /** timeoutMs bounds one fetch (connect, TLS, response). Default: 10000. */
  timeoutMs?: number;
  /** maxRedirects is how many temporary redirects one fetch follows (§5.2.1.4, §5.2.2.4); 0 follows none. Default: 3. */
  maxRedirects?: number;
  /** maxBytes bounds the response body. Default: 1 MiB. */
  maxBytes?: number;
}

/** BundleUpdatedEvent is emitted after every successful fetch. */
export interface BundleUpdatedEvent {
  /** bundle is the bundle now in use. */
  bundle: ParsedSpiffeBundle;
  /** previous is the bundle it replaced, undefined on the first fetch. */
  previous: ParsedSpiffeBundle | undefined;
  /** changed is false when the fetched bundle holds the same X.509 authorities as the previous one. */
  changed: boolean;
}

/** BundleEndpointClientEvents lists what a BundleEndpointClient emits. */
export interface BundleEndpointClientEvents {
  /** updated: a fetch succeeded and its bundle is in use. */
  updated: [BundleUpdatedEvent];
  /** fetchError: a fetch failed or its bundle was refused; the last good bundle stays in use. */
  fetchError: [AuthError];
  /** bundleWarning: the fetched bundle held key entries the standards say to ignore (see parseSpiffeBundleJson). */
  bundleWarning: [{ warnings: readonly BundleWarning[] }];
}

const DEFAULT_REFRESH_SECONDS = 300;
const DEFAULT_MIN_REFRESH_SECONDS = 1;
const DEFAULT_MAX_REFRESH_SECONDS = 3600;

// Node's codes for a TLS server certificate that does not verify (https_web).
const TLS_VERIFY_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * BundleEndpointClient keeps the bundle of one federated trust domain
 * current by polling its SPIFFE bundle endpoint (SPIFFE Federation §4–§6):
 * `https_web` (Web PKI) or `https_spiffe` (the endpoint's X.509-SVID must
 * carry the configured ID and verify against the bundle of the endpoint's
 * trust domain — for a self-serving endpoint, the bootstrap bundle until the
 * first fetch and the last fetched bundle after it).
 *
 * It polls on the bundle's `spiffe_refresh_hint` (bounded by
 * minRefreshSeconds and maxRefreshSeconds; defaultRefreshSeconds when
 * absent), retries a failure with a jittered backoff that never waits longer
 * than the polling interval, and keeps the last good bundle whenever a fetch
 * fails or its bundle is refused (wrong trust domain, older
 * `spiffe_sequence`, not a bundle): the failure is a `fetchError` and
 * `lastError`. It is the X509BundleSource of its one trust domain.
 *
 * Written here because no npm package speaks the SPIFFE Federation protocol;
 * go-spiffe's `federation` package is the model.
 */
export class BundleEndpointClient extends EventEmitter<BundleEndpointClientEvents> implements X509BundleSource {
  /** trustDomain is the federated trust domain whose bundle this client fetches. */
  readonly trustDomain: TrustDomain;
  /** endpoint is the checked configuration. */
  readonly endpoint: ResolvedBundleEndpoint;
  readonly #o: BundleEndpointClientOptions;
  readonly #backoff: Backoff;
  #bundle: ParsedSpiffeBundle | undefined;
  #lastError: AuthError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<ParsedSpiffeBundle> | undefined;
  #started = false;
  #closed = false;
  #lastFetchAt: number | undefined;

  constructor(options: BundleEndpointClientOptions) {
    super();
    this.endpoint = resolveBundleEndpoint(options);
    this.trustDomain = this.endpoint.trustDomain;
    this.#o = options;
    const min = seconds(options.minRefreshSeconds ?? DEFAULT_MIN_REFRESH_SECONDS, 'minRefreshSeconds');
    const max = seconds(options.maxRefreshSeconds ?? DEFAULT_MAX_REFRESH_SECONDS, 'maxRefreshSeconds');
    if (min > max) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `minRefreshSeconds (${min}) must not exceed maxRefreshSeconds (${max})`,
      );
    }
    seconds(options.defaultRefreshSeconds ?? DEFAULT_REFRESH_SECONDS, 'defaultRefreshSeconds');
    this.#backoff = new Backoff({ initialMs: 1000, ...options.backoff });
  }

  /** bundle is the last good bundle, or undefined before the first successful fetch. */
  get bundle(): ParsedSpiffeBundle | undefined {
    return this.#bundle;
  }

  /** lastError is the failure of the latest fetch, undefined after a success. */
  get lastError(): AuthError | undefined {
    return this.#lastError;
  }

  /** describe names the relationship for logs. */
  describe(): string {
    const p = this.endpoint.profile;
    const how = p.type === 'https_spiffe' ? `https_spiffe as ${p.endpointSpiffeId.toString()}` : 'https_web';
    return `bundle endpoint ${this.endpoint.url.href} of ${this.trustDomain.name} (${how})`;
  }

  /**
   * refreshIntervalMs is how long to wait after a successful fetch: the
   * bundle's refresh hint, or the default, bounded by the floor and ceiling.
   */
  refreshIntervalMs(bundle: ParsedSpiffeBundle | undefined = this.#bundle): number {
    const hint = bundle?.refreshHintSeconds ?? this.#o.defaultRefreshSeconds ?? DEFAULT_REFRESH_SECONDS;
    const min = this.#o.minRefreshSeconds ?? DEFAULT_MIN_REFRESH_SECONDS;
    const max = this.#o.maxRefreshSeconds ?? DEFAULT_MAX_REFRESH_SECONDS;
    return Math.min(max, Math.max(min, hint)) * 1000;
  }

  /** getX509BundleForTrustDomain returns the last good X.509 bundle of this client's trust domain, or throws AUTH_ERR_BUNDLE_NOT_FOUND. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle {
    if (!trustDomain.equals(this.trustDomain) || this.#bundle === undefined) {
      throw new AuthError(
        'AUTH_ERR_BUNDLE_NOT_FOUND',
        `no X.509 bundle for trust domain "${trustDomain.name}" from ${this.describe()}${this.#lastError ? `: ${this.#lastError.message}` : ''}`,
      );
    }
    return this.#bundle.x509Bundle;
  }

  /**
   * start fetches now and then keeps polling until close(). It resolves
   * after the first attempt, whether it succeeded or not (see `bundle` and
   * `lastError`).
   */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    await this.#poll();
  }

  /**
   * fetchNow fetches the bundle once, now: on success it is in use and
   * returned; on failure the last good bundle stays and the AuthError is
   * thrown (and emitted as `fetchError`). Concurrent calls share one fetch.
   */
  fetchNow(): Promise<ParsedSpiffeBundle> {
    this.#inFlight ??= this.#fetchAndAdopt().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** close stops polling; the last good bundle stays readable. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    return Promise.resolve();
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    let delay: number;
    try {
      await this.fetchNow();
      this.#backoff.reset();
      delay = this.refreshIntervalMs();
    } catch {
      // §6.2: no aggressive retries; a backoff that starts small (one missed
      // poll must not cost a whole interval) and never exceeds the interval.
      delay = Math.min(this.#backoff.next(), this.refreshIntervalMs());
    }
    // close() may have run while the fetch was in flight.
    if (this.isClosed) return;
    this.#timer = setTimeout(() => {
      void this.#poll();
    }, delay);
    this.#timer.unref();
  }

  async #fetchAndAdopt(): Promise<ParsedSpiffeBundle> {
    this.#lastFetchAt = Date.now();
    try {
      const bundle = this.#check(await this.#fetch());
      const previous = this.#bundle;
      const changed = previous === undefined || !previous.x509Bundle.equals(bundle.x509Bundle);
      if (!this.#closed) {
        this.#bundle = bundle;
        this.#lastError = undefined;
        if (bundle.warnings.length > 0) this.emit('bundleWarning', { warnings: bundle.warnings });
        this.emit('updated', { bundle, previous, changed });
      }
      return bundle;
    } catch (err) {
      const e = isAuthError(err)
        ? err
        : new AuthError('AUTH_ERR_FEDERATION_FETCH_FAILED', `${this.describe()}: ${(err as Error).message}`, {
            cause: err,
          });
      if (!this.#closed) {
        this.#lastError = e;
        this.emit('fetchError', e);
      }
      throw e;
    }
  }

  /** isClosed is true once close() was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** lastFetchAt is when the latest fetch started (ms since epoch), undefined before the first. */
  get lastFetchAt(): number | undefined {
    return this.#lastFetchAt;
  }

  /** #check refuses a bundle that cannot be this trust domain's latest. */
  #check(bundle: ParsedSpiffeBundle): ParsedSpiffeBundle {
    const td = this.trustDomain;
    for (const a of bundle.x509Bundle.parsedAuthorities()) {
      for (const uri of a.uriSans) {
        if (!uri.startsWith('spiffe://')) continue;
        let id: SpiffeId;
        try {
          id = SpiffeId.parse(uri);
        } catch {
          continue;
        }
        // A SPIRE CA names its trust domain in its URI SAN (X509-SVID §4.1 allows it); another name means another trust domain's bundle.
        if (!id.trustDomain.equals(td)) {
          throw new AuthError(
            'AUTH_ERR_FEDERATION_TRUST_DOMAIN_MISMATCH',
            `${this.describe()} served a bundle whose CA "${a.x509.subject.replaceAll('\n', ', ')}" names ${id.toString()}, not trust domain ${td.name}; bundles of different trust domains must never be mixed (SPIFFE Federation §4.2, §7.3); the last good bundle stays in use`,
          );
        }
      }
    }
    const last = this.#bundle?.sequence;
    if (last !== undefined && bundle.sequence !== undefined && BigInt(bundle.sequence) < BigInt(last)) {
      throw new AuthError(
        'AUTH_ERR_FEDERATION_BUNDLE_STALE',
        `${this.describe()} served spiffe_sequence ${String(bundle.sequence)}, older than ${String(last)} already in use (SPIFFE Federation §4.2); the last good bundle stays in use`,
      );
    }
    return bundle;
  }

  async #fetch(): Promise<ParsedSpiffeBundle> {
    const maxRedirects = this.#o.maxRedirects ?? 3;
    let url = this.endpoint.url;
    // Every fetch starts again from the configured URL (§5.2.1.4, §5.2.2.4): a redirect is never stored.
    for (let hop = 0; ; hop++) {
      const { status, location, body } = await this.#get(url);
      if (status >= 300 && status < 400 && location !== undefined) {
        if (hop >= maxRedirects) {
          throw new AuthError(
            'AUTH_ERR_FEDERATION_FETCH_FAILED',
            `${this.describe()}: more than ${String(maxRedirects)} redirect(s), the last to ${location}`,
          );
        }
        url = checkEndpointUrl(new URL(location, url), `redirect target of ${this.describe()}`);
        continue;
      }
      if (status !== 200) {
        throw new AuthError(
          'AUTH_ERR_FEDERATION_FETCH_FAILED',
          `${this.describe()} answered HTTP ${String(status)} at ${url.href}; the last good bundle stays in use`,
        );
      }
      return parseSpiffeBundleJson(this.trustDomain, body, { where: url.href });
    }
  }

  /** #get does one GET over a fresh connection authenticated by the profile. */
  async #get(url: URL): Promise<{ status: number; location?: string; body: string }> {
    const p = this.endpoint.profile;
    // Loaded on first use: the root entry stays free of undici for services that never federate.
    const { Agent, buildConnector, request } = await import('undici');
    const base = buildConnector(
      p.type === 'https_web'
        ? { ...(p.ca === undefined ? {} : { ca: p.ca as string[] }), maxCachedSessions: 0 }
        : // The SVID is checked below, per trust domain; OpenSSL's pooled CA list could not (X509-SVID §5).
          // No session cache: a resumed handshake shows no certificate to check.
          { rejectUnauthorized: false, maxCachedSessions: 0 },
    );
    const connect: buildConnector.connector = (opts, callback) => {
      base(opts, (err, socket) => {
        if (err !== null) {
          callback(err, null);
          return;
        }
        if (p.type === 'https_web') {
          callback(null, socket);
          return;
        }
        try {
          this.#verifyEndpoint(socket as TLSSocket);
          callback(null, socket);
        } catch (e) {
          socket.destroy();
          callback(e as Error, null);
        }
      });
    };
    // One connection per fetch: every connection is authenticated against the bundle of that moment.
    const agent = new Agent({ connect, pipelining: 0 });
    const timeoutMs = this.#o.timeoutMs ?? 10_000;
    try {
      const res = await request(url, {
        dispatcher: agent,
        method: 'GET',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      const location = res.headers.location;
      const body = await readLimited(res.body, this.#o.maxBytes ?? 1 << 20, this.describe());
      return { status: res.statusCode, ...(typeof location === 'string' ? { location } : {}), body };
    } catch (err) {
      throw this.#fetchError(err, url);
    } finally {
      await agent.destroy();
    }
  }

  #verifyEndpoint(socket: TLSSocket): void {
    const p = this.endpoint.profile;
    if (p.type !== 'https_spiffe') return;
    const endpointTd = p.endpointSpiffeId.trustDomain;
    // Self-serving: the latest fetched bundle, or the bootstrap one before the first fetch (§5.2.2.4).
    const own = this.endpoint.selfServing ? this.#bundle?.x509Bundle : undefined;
    const bundle = own ?? p.bundleSource?.getX509BundleForTrustDomain(endpointTd) ?? p.bundle;
    if (bundle === undefined) {
      throw new AuthError('AUTH_ERR_BUNDLE_NOT_FOUND', `no bundle of ${endpointTd.name} to verify ${this.describe()}`);
    }
    let peer;
    try {
      peer = verifyX509Svid(
        peerChainFromSocket(socket),
        { getX509BundleForTrustDomain: () => bundle },
        { peerRole: 'server' },
      );
    } catch (cause) {
      throw new AuthError(
        'AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED',
        `${this.describe()} presented no valid X.509-SVID of ${endpointTd.name}: ${(cause as Error).message}`,
        { cause },
      );
    }
    if (!peer.id.equals(p.endpointSpiffeId)) {
      throw new AuthError(
        'AUTH_ERR_FEDERATION_ENDPOINT_ID_MISMATCH',
        `${this.describe()} presented the X.509-SVID of ${peer.id.toString()}, not ${p.endpointSpiffeId.toString()} (SPIFFE Federation §5.2.2.4); the last good bundle stays in use`,
      );
    }
  }

  #fetchError(err: unknown, url: URL): AuthError {
    if (isAuthError(err)) return err;
    const e = err as NodeJS.ErrnoException;
    if (e.code !== undefined && TLS_VERIFY_CODES.has(e.code)) {
      return new AuthError(
        'AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED',
        `${this.describe()}: the server certificate at ${url.host} does not verify with Web PKI (${e.code}: ${e.message})`,
        { cause: err },
      );
    }
    const what = e.name === 'TimeoutError' ? `no answer within ${String(this.#o.timeoutMs ?? 10_000)} ms` : e.message;
    return new AuthError(
      'AUTH_ERR_FEDERATION_FETCH_FAILED',
      `${this.describe()}: ${what}; the last good bundle stays in use`,
      {
        cause: err,
      },
    );
  }
}

async function readLimited(body: AsyncIterable<Buffer>, maxBytes: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new AuthError(
        'AUTH_ERR_FEDERATION_FETCH_FAILED',
        `${what}: response larger than ${String(maxBytes)} bytes`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function seconds(v: number, name: string): number {
  if (!Number.isFinite(v) || v <= 0) {
    throw new AuthError('AUTH_ERR_CONFIG_INVALID', `${name} must be a positive number of seconds (got ${String(v)})`);
  }
  return v;
}
