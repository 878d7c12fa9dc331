import { EventEmitter } from 'node:events';
import { warningSignature, type BundleWarning } from '../bundle/bundle-warning.ts';
import type { X509Bundle, X509BundleSet, X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import type { IdentitySourceEvents, X509Material } from './identity-lifecycle.ts';
import type { X509Source } from './x509-sources.ts';

export type {
  ExpiringEvent,
  IdentityLifecycle,
  IdentitySourceEvents,
  RotatedEvent,
  WithdrawnEvent,
  X509Material,
} from './identity-lifecycle.ts';

/** IdentityKind names where an identity source gets its material. */
export type IdentityKind = 'spiffe' | 'files';

/** IdentitySourceOptions are the options every identity source shares. */
export interface IdentitySourceOptions {
  /** expiryWarningSeconds: emit `expiring` when less than this is left. Default: 600 (or half the SVID lifetime if shorter). */
  expiryWarningSeconds?: number;
}

/**
 * IdentitySource is a whole identity source as a service holds it: the small
 * sources the TLS builders take (X509SvidSource, X509BundleSetSource,
 * X509BundleSource), its lifecycle events (IdentityLifecycle), and what
 * start-up and health checks need (ready, isReady, lastError, close).
 * Implemented by the Workload API source, the file source and the trust
 * bridge, so any of them can back a service.
 */
export interface IdentitySource extends X509Source, X509BundleSource {
  /** kind says where material comes from. */
  readonly kind: IdentityKind;
  /** describe says, for logs, which source this is and where it reads from. */
  describe(): string;
  /** ready resolves once the first material is loaded (rejects on timeout or close). */
  ready(): Promise<void>;
  /** isReady is true while an SVID is in use: after the first material, and not while it is withdrawn. */
  readonly isReady: boolean;
  /** lastError is the most recent problem (a `loadError`) since the last good update, for health endpoints; undefined when there is none. */
  readonly lastError?: AuthError | undefined;
  /** bundleWarnings lists the bundle key entries the material in use was read without (see the `bundleWarning` event); empty when none. */
  readonly bundleWarnings?: readonly BundleWarning[];
  /** getX509Svid returns the current SVID; throws if not ready. */
  getX509Svid(): X509Svid;
  /** getX509Bundles returns all current bundles (ours and federated). */
  getX509Bundles(): X509BundleSet;
  /** getX509BundleForTrustDomain returns the bundle of `trustDomain` or throws AUTH_ERR_BUNDLE_NOT_FOUND. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle;
  /** secondsToExpiry is how long the current SVID stays valid (for a gauge); NaN before ready. */
  secondsToExpiry(): number;
  /** close stops watching; the source keeps its last material but emits nothing more. */
  close(): Promise<void>;
}

const DEFAULT_EXPIRY_WARNING_SECONDS = 600;

/**
 * IdentitySourceBase holds the current material, emits lifecycle events and
 * watches expiry; concrete sources only call `publish()` and `fail()`.
 */
export abstract class IdentitySourceBase extends EventEmitter<IdentitySourceEvents> implements IdentitySource {
  abstract readonly kind: IdentityKind;
  abstract describe(): string;

  #material: X509Material | undefined;
  #readyPromise: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (err: Error) => void;
  #expiryTimer: NodeJS.Timeout | undefined;
  #warnedFor: X509Svid | undefined;
  #lastError: AuthError | undefined;
  #withdrawn: AuthError | undefined;
  #warned = '';
  #warnings: readonly BundleWarning[] = [];
  #closed = false;
  readonly #expiryWarningSeconds: number | undefined;

  protected constructor(options: IdentitySourceOptions = {}) {
    super();
    this.#expiryWarningSeconds = options.expiryWarningSeconds;
    this.#readyPromise = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A rejection nobody awaits must not crash the process.
    this.#readyPromise.catch(() => undefined);
  }

  get isReady(): boolean {
    return this.#material !== undefined && this.#withdrawn === undefined;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  get lastError(): AuthError | undefined {
    return this.#lastError;
  }

  /** bundleWarnings lists the bundle key entries the material in use was read without (see `bundleWarning`); empty when none. */
  get bundleWarnings(): readonly BundleWarning[] {
    return this.#warnings;
  }

  ready(): Promise<void> {
    return this.#readyPromise;
  }

  /** current returns the current material, or undefined before ready. */
  protected current(): X509Material | undefined {
    return this.#material;
  }

  getX509Svid(): X509Svid {
    if (!this.#material) {
      throw new AuthError('AUTH_ERR_SOURCE_NOT_READY', `${this.describe()} has no X.509-SVID yet`);
    }
    if (this.#withdrawn) {
      throw new AuthError('AUTH_ERR_SVID_WITHDRAWN', `${this.describe()}: ${this.#withdrawn.message}`, {
        cause: this.#withdrawn,
      });
    }
    return this.#material.svid;
  }

  getX509Bundles(): X509BundleSet {
    if (!this.#material) {
      throw new AuthError('AUTH_ERR_SOURCE_NOT_READY', `${this.describe()} has no bundles yet`);
    }
    return this.#material.bundles;
  }

  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle {
    return this.getX509Bundles().getX509BundleForTrustDomain(trustDomain);
  }

  secondsToExpiry(now: Date = new Date()): number {
    return this.#material && !this.#withdrawn ? this.#material.svid.secondsToExpiry(now) : Number.NaN;
  }

  /** publish makes `material` current and emits `rotated`. */
  protected publish(material: X509Material): void {
    if (this.#closed) return;
    // After a withdrawal nothing is in use: the next SVID is presented again even if it is the same one.
    const previous = this.#withdrawn ? undefined : this.#material;
    this.#material = material;
    this.#withdrawn = undefined;
    this.#lastError = undefined;
    this.#armExpiryWatch();
    this.#resolveReady();
    this.emit('rotated', { ...material, previous });
  }

  /** fail reports an update that could not be used (it becomes `lastError`); the last good material stays. */
  protected fail(err: AuthError): void {
    if (this.#closed) return;
    this.#lastError = err;
    this.emit('loadError', err);
  }

  /**
   * warn emits `bundleWarning` for the bundle entries a new update ignored,
   * once per distinct set: an agent resends the same bundle with every
   * rotation, and a user needs to hear about it once, and again when it changes.
   */
  protected warn(warnings: readonly BundleWarning[]): void {
    if (this.#closed) return;
    this.#warnings = warnings;
    const signature = warningSignature(warnings);
    if (signature === this.#warned) return;
    this.#warned = signature;
    if (warnings.length > 0) this.emit('bundleWarning', { warnings });
  }

  /**
   * withdraw stops using the current SVID, as the Workload API standard asks
   * when the agent no longer grants one (§5.2.1): `reason` becomes
   * `lastError` and a `loadError`, `withdrawn` is emitted, `isReady` turns
   * false and getX509Svid throws AUTH_ERR_SVID_WITHDRAWN until `publish()`
   * brings a new SVID. Bundles stay readable. Without an SVID in use it only
   * reports `reason`.
   */
  protected withdraw(reason: AuthError): void {
    if (this.#closed) return;
    const material = this.#material;
    if (material === undefined || this.#withdrawn !== undefined) {
      this.fail(reason);
      return;
    }
    this.#withdrawn = reason;
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    // A wrapping source (the trust bridge) has already forwarded the inner source's loadError.
    if (this.#lastError !== reason) this.fail(reason);
    this.emit('withdrawn', { svid: material.svid, reason });
  }

  /** failReady rejects `ready()` if no material has arrived yet (e.g. a start-up timeout). */
  protected failReady(err: Error): void {
    if (!this.#material) this.#rejectReady(err);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.failReady(
      new AuthError('AUTH_ERR_SOURCE_CLOSED', `${this.describe()} was closed before it had an X.509-SVID`),
    );
    await this.onClose();
  }

  /** onClose releases what the concrete source holds (watchers, streams). */
  protected abstract onClose(): Promise<void>;

  #thresholdSeconds(svid: X509Svid): number {
    if (this.#expiryWarningSeconds !== undefined) return this.#expiryWarningSeconds;
    const lifetime = (svid.expiresAt.getTime() - svid.notBefore.getTime()) / 1000;
    return Math.min(DEFAULT_EXPIRY_WARNING_SECONDS, lifetime / 2);
  }

  #armExpiryWatch(): void {
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    const material = this.#material;
    if (!material) return;
    const svid = material.svid;
    const warnAt = svid.expiresAt.getTime() - this.#thresholdSeconds(svid) * 1000;
    const delay = Math.max(0, Math.min(warnAt - Date.now(), 2 ** 31 - 1));
    this.#expiryTimer = setTimeout(() => {
      if (this.#closed || this.#material?.svid !== svid || this.#warnedFor === svid) return;
      this.#warnedFor = svid;
      this.emit('expiring', { svid, secondsToExpiry: svid.secondsToExpiry() });
    }, delay);
    this.#expiryTimer.unref();
  }
}
