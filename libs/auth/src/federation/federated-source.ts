import type { BundleWarningEvent } from '../bundle/bundle-warning.ts';
import { AuthError } from '../errors.ts';
import {
  IdentitySourceBase,
  type IdentitySource,
  type IdentitySourceOptions,
  type WithdrawnEvent,
} from '../source/identity-source.ts';
import {
  BundleEndpointClient,
  type BundleEndpointClientOptions,
  type BundleUpdatedEvent,
} from './bundle-endpoint-client.ts';

/** FederatedSourceOptions configure a FederatedSource. */
export interface FederatedSourceOptions extends IdentitySourceOptions {
  /** inner is the source of our SVID and our own bundle (Workload API or files); the federated source owns and closes it. */
  inner: IdentitySource;
  /**
   * federatesWith lists one bundle endpoint per federated trust domain, as
   * BundleEndpointClient options or clients made by the caller (then owned
   * and closed here too).
   */
  federatesWith: readonly (BundleEndpointClientOptions | BundleEndpointClient)[];
}

/**
 * FederatedSource adds the bundles of federated trust domains, each kept
 * current by its own BundleEndpointClient, to another identity source: a
 * workload federates through SPIFFE bundle endpoints without a SPIRE server
 * of its own (e.g. our file identity, or a partner we fetch directly). Each
 * trust domain keeps its own bundle (SPIFFE Federation §4.2, §7.3): a peer
 * from partner.example is verified against partner.example's bundle only.
 *
 * A fetched bundle replaces whatever bundle `inner` has for that trust
 * domain (the endpoint is the configured authority for it); our own trust
 * domain's bundle always comes from `inner`, and a relationship naming it
 * is refused. A failed fetch is a `loadError` and keeps the last good bundle;
 * before the first good one the trust domain has no bundle and its peers are
 * refused (AUTH_ERR_BUNDLE_NOT_FOUND).
 */
export class FederatedSource extends IdentitySourceBase {
  readonly kind: IdentitySource['kind'];
  readonly #inner: IdentitySource;
  /** clients are the bundle endpoint clients, one per federated trust domain. */
  readonly clients: readonly BundleEndpointClient[];
  readonly #onRotated = (): void => {
    this.#republish();
  };
  readonly #onLoadError = (err: AuthError): void => {
    this.fail(err);
  };
  readonly #onWithdrawn = (e: WithdrawnEvent): void => {
    this.withdraw(e.reason);
  };
  readonly #onBundleWarning = (e: BundleWarningEvent): void => {
    this.warn(e.warnings);
  };
  readonly #onUpdated = (e: BundleUpdatedEvent): void => {
    if (e.changed) this.#republish();
  };

  private constructor(o: FederatedSourceOptions) {
    super(o);
    this.#inner = o.inner;
    this.kind = o.inner.kind;
    const clients = o.federatesWith.map((c) => (c instanceof BundleEndpointClient ? c : new BundleEndpointClient(c)));
    const seen = new Set<string>();
    for (const c of clients) {
      if (seen.has(c.trustDomain.name)) {
        throw new AuthError(
          'AUTH_ERR_CONFIG_INVALID',
          `two bundle endpoints given for trust domain ${c.trustDomain.name}`,
        );
      }
      seen.add(c.trustDomain.name);
    }
    this.clients = clients;
  }

  /**
   * create waits for inner's first material and for one fetch attempt of
   * every endpoint (a failure there is a `loadError`, not a failed start),
   * then keeps all of them current.
   */
  static async create(o: FederatedSourceOptions): Promise<FederatedSource> {
    const s = new FederatedSource(o);
    await o.inner.ready();
    const own = o.inner.getX509Svid().id.trustDomain;
    const clash = s.clients.find((c) => c.trustDomain.equals(own));
    if (clash) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `${clash.describe()} would replace the bundle of our own trust domain ${own.name}; federate with other trust domains only`,
      );
    }
    for (const c of s.clients) {
      c.on('updated', s.#onUpdated);
      c.on('fetchError', s.#onLoadError);
      c.on('bundleWarning', s.#onBundleWarning);
    }
    await Promise.all(s.clients.map((c) => c.start()));
    s.#republish();
    o.inner.on('rotated', s.#onRotated);
    o.inner.on('loadError', s.#onLoadError);
    o.inner.on('withdrawn', s.#onWithdrawn);
    o.inner.on('bundleWarning', s.#onBundleWarning);
    const firstError = s.clients.find((c) => c.lastError !== undefined)?.lastError;
    if (firstError) s.fail(firstError);
    return s;
  }

  describe(): string {
    return `${this.#inner.describe()}, federated with ${this.clients.map((c) => c.trustDomain.name).join(', ')} through bundle endpoints`;
  }

  #republish(): void {
    if (!this.#inner.isReady) return;
    let bundles = this.#inner.getX509Bundles();
    for (const c of this.clients) {
      const b = c.bundle;
      if (b !== undefined) bundles = bundles.with(b.x509Bundle);
    }
    this.publish({ svid: this.#inner.getX509Svid(), bundles });
  }

  protected async onClose(): Promise<void> {
    this.#inner.off('rotated', this.#onRotated);
    this.#inner.off('loadError', this.#onLoadError);
    this.#inner.off('withdrawn', this.#onWithdrawn);
    this.#inner.off('bundleWarning', this.#onBundleWarning);
    for (const c of this.clients) {
      c.off('updated', this.#onUpdated);
      c.off('fetchError', this.#onLoadError);
      c.off('bundleWarning', this.#onBundleWarning);
      await c.close();
    }
    await this.#inner.close();
  }
}
