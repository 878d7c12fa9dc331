import type { BundleWarningEvent } from '../bundle/bundle-warning.ts';
import type { X509BundleSet } from '../bundle/x509-bundle.ts';
import type { AuthError } from '../errors.ts';
import type { X509Svid } from '../svid/x509-svid.ts';

/** X509Material is one consistent snapshot of our SVID and the bundles we trust. */
export interface X509Material {
  svid: X509Svid;
  bundles: X509BundleSet;
}

/** RotatedEvent is emitted when new material replaces the old. */
export interface RotatedEvent extends X509Material {
  previous: X509Material | undefined;
}

/** ExpiringEvent is emitted when the SVID has less than the configured threshold left. */
export interface ExpiringEvent {
  svid: X509Svid;
  secondsToExpiry: number;
}

/** WithdrawnEvent is emitted when a source stops using its SVID (the Workload API answered PermissionDenied). */
export interface WithdrawnEvent {
  /** svid is the SVID no longer in use. */
  svid: X509Svid;
  /** reason says why (code AUTH_ERR_SVID_WITHDRAWN, with the agent's answer as `cause`). */
  reason: AuthError;
}

/** IdentitySourceEvents lists the lifecycle events every identity source emits. */
export interface IdentitySourceEvents {
  /** rotated: new SVID and/or bundles are in use (also fires for the first material). */
  rotated: [RotatedEvent];
  /** loadError: an update could not be used; the last good material stays in use. */
  loadError: [AuthError];
  /** expiring: the SVID is within `expiryWarningSeconds` of expiry and no new one has arrived. */
  expiring: [ExpiringEvent];
  /**
   * bundleWarning: a new bundle held key entries the SPIFFE standards say to
   * ignore; they were left out and the rest of the bundle is in use. Emitted
   * once per distinct set of warnings, not on every identical update.
   */
  bundleWarning: [BundleWarningEvent];
  /**
   * withdrawn: the source stopped using its SVID (see WithdrawnEvent); it is
   * not ready, and servers stop presenting the SVID, until a new one arrives
   * (`rotated`). Bundles stay in use.
   */
  withdrawn: [WithdrawnEvent];
}

/**
 * IdentityLifecycle is the events side of a source: what a server needs to
 * present a rotated SVID (`setSecureContext`), or grpc-js's certificate
 * provider to push new material, without depending on the whole source.
 */
export interface IdentityLifecycle {
  on<E extends keyof IdentitySourceEvents>(event: E, listener: (...args: IdentitySourceEvents[E]) => void): this;
  off<E extends keyof IdentitySourceEvents>(event: E, listener: (...args: IdentitySourceEvents[E]) => void): this;
  once<E extends keyof IdentitySourceEvents>(event: E, listener: (...args: IdentitySourceEvents[E]) => void): this;
}
