import type { X509BundleSetSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import type { X509SvidSource } from '../svid/x509-svid-source.ts';
import type { IdentityLifecycle } from './identity-lifecycle.ts';

/**
 * X509Source is one object that is all three small sources: our SVID, the
 * bundles, and the events that say when either changed (as go-spiffe's
 * `workloadapi.X509Source` is both an `x509svid.Source` and an
 * `x509bundle.Source`). Every identity source of this library is one.
 */
export interface X509Source extends X509SvidSource, X509BundleSetSource, IdentityLifecycle {}

/** X509Sources names each small source an mTLS builder uses, when they are not one object. */
export interface X509Sources {
  /** svidSource gives our current X.509-SVID. */
  svidSource: X509SvidSource;
  /** bundleSource gives the bundles peers are verified against. */
  bundleSource: X509BundleSetSource;
  /**
   * events tells a server when to present a rotated SVID, and grpc-js when
   * to take new material. Default: none (the SVID and bundles given at the
   * start are the ones a server presents and a grpc-js channel trusts).
   */
  events?: IdentityLifecycle;
}

/**
 * SourceOptions is how the adapters' options name their sources: either
 * `source`, one X509Source (any identity source) that provides all three, or
 * `svidSource` and `bundleSource` (and optionally `events`) separately.
 */
export type SourceOptions =
  { source: X509Source; svidSource?: never; bundleSource?: never; events?: never } | (X509Sources & { source?: never });

/** resolveSources returns the small sources `o` names, taking them from `o.source` when it is given. */
export function resolveSources(o: SourceOptions | X509Source): X509Sources {
  if ('source' in o && o.source !== undefined)
    return { svidSource: o.source, bundleSource: o.source, events: o.source };
  if ('svidSource' in o) {
    return { svidSource: o.svidSource, bundleSource: o.bundleSource, events: o.events };
  }
  const source = o as Partial<X509Source>;
  if (typeof source.getX509Svid !== 'function' || typeof source.getX509Bundles !== 'function') {
    throw new AuthError(
      'AUTH_ERR_CONFIG_INVALID',
      'no identity given: pass `source` (an identity source) or `svidSource` and `bundleSource`',
    );
  }
  return { svidSource: source as X509Source, bundleSource: source as X509Source, events: source as X509Source };
}
