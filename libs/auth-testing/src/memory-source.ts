import {
  type AuthError,
  X509BundleSet,
  type X509Bundle,
  type IdentityKind,
  type IdentitySourceOptions,
  type X509Svid,
} from '@shop/auth';
// The base class of the library's own sources is no public export; test
// support, a workspace-only package, reaches into the sources for it.
import { IdentitySourceBase } from '../../auth/src/source/identity-source.ts';

/**
 * MemorySource is an identity source a test sets by hand: `set()` publishes
 * new material exactly as a real source does on rotation, so adapters can be
 * tested without files or a Workload API.
 */
export class MemorySource extends IdentitySourceBase {
  readonly kind: IdentityKind;

  constructor(options: IdentitySourceOptions & { kind?: IdentityKind } = {}) {
    super(options);
    this.kind = options.kind ?? 'files';
  }

  /** create returns a ready source holding `svid` and `bundles`. */
  static create(
    svid: X509Svid,
    bundles: X509Bundle[],
    options: IdentitySourceOptions & { kind?: IdentityKind } = {},
  ): MemorySource {
    const s = new MemorySource(options);
    s.set(svid, bundles);
    return s;
  }

  describe(): string {
    return 'memory source (tests)';
  }

  /** set publishes new material, as a rotation does. */
  set(svid: X509Svid, bundles: X509Bundle[]): void {
    this.publish({ svid, bundles: new X509BundleSet(bundles) });
  }

  /** reportError emits `loadError` with `err` (it becomes `lastError`), as a real source does for an update it cannot use. */
  reportError(err: AuthError): void {
    this.fail(err);
  }

  protected onClose(): Promise<void> {
    return Promise.resolve();
  }
}
