import { readFile, stat } from 'node:fs/promises';
import type { BundleWarningEvent } from '../bundle/bundle-warning.ts';
import { X509Bundle } from '../bundle/x509-bundle.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { decodePem } from '../x509/pem.ts';
import {
  IdentitySourceBase,
  type IdentitySource,
  type IdentitySourceOptions,
  type WithdrawnEvent,
  type X509Material,
} from './identity-source.ts';

/** TrustBridgeOptions configure a TrustBridgeSource. */
export interface TrustBridgeOptions extends IdentitySourceOptions {
  /** inner is the source of our SVID and bundles (Workload API or files); the bridge owns and closes it. */
  inner: IdentitySource;
  /** caFile holds PEM CA certificates trusted for our own trust domain in addition to inner's bundle; an empty file adds none. */
  caFile: string;
  /** reloadIntervalMs is how often the file is checked for changes. Default: 1000. */
  reloadIntervalMs?: number;
  /** waitForInner: create() resolves only once inner has material; with false it resolves at once and the bridge becomes ready with inner. Default: true. */
  waitForInner?: boolean;
}

/**
 * TrustBridgeSource adds the CA certificates of a file to the bundle of our
 * own trust domain, on top of another source: the bridge of a migration
 * between two CAs of one trust domain (static files → SPIRE), where a service
 * on either side must accept peers from both. Only our own trust domain's
 * bundle grows; federated bundles are untouched, so verification stays per
 * trust domain. The file is reloaded when it changes; emptying it ends the
 * bridge without a restart. A file that cannot be read or parsed keeps the
 * last good roots and emits `loadError`.
 *
 * Written here because no library bridges SPIFFE bundles; SPIRE's own answer
 * (an UpstreamAuthority signing with the old CA) is in docs/migration.md.
 */
export class TrustBridgeSource extends IdentitySourceBase {
  readonly kind: IdentitySource['kind'];
  readonly #o: TrustBridgeOptions;
  #extra: Buffer[] = [];
  #fingerprint = '';
  #timer: NodeJS.Timeout | undefined;
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

  private constructor(o: TrustBridgeOptions) {
    super(o);
    this.#o = o;
    this.kind = o.inner.kind;
  }

  /**
   * create waits for inner's first material (unless `waitForInner` is false),
   * loads the file (failing clearly if it is unusable; inner then stays the
   * caller's to close) and starts watching both.
   */
  static async create(o: TrustBridgeOptions): Promise<TrustBridgeSource> {
    const bridge = new TrustBridgeSource(o);
    if (o.waitForInner !== false) await o.inner.ready();
    bridge.#fingerprint = await bridge.#stat();
    bridge.#extra = await bridge.#load();
    bridge.#republish();
    bridge.warn(o.inner.bundleWarnings ?? []);
    o.inner.on('rotated', bridge.#onRotated);
    o.inner.on('loadError', bridge.#onLoadError);
    o.inner.on('withdrawn', bridge.#onWithdrawn);
    o.inner.on('bundleWarning', bridge.#onBundleWarning);
    if (!o.inner.isReady) {
      // Whatever is in the way so far, and an inner that gives up for good.
      if (o.inner.lastError !== undefined) bridge.fail(o.inner.lastError);
      o.inner.ready().catch((err: unknown) => {
        bridge.failReady(err instanceof Error ? err : new Error(String(err)));
      });
    }
    bridge.#timer = setInterval(() => {
      void bridge.reload();
    }, o.reloadIntervalMs ?? 1000);
    bridge.#timer.unref();
    return bridge;
  }

  describe(): string {
    return `${this.#o.inner.describe()}, bridged with ${String(this.#extra.length)} extra root(s) from ${this.#o.caFile}`;
  }

  /** extraRoots is how many CA certificates the file adds now. */
  get extraRoots(): number {
    return this.#extra.length;
  }

  /** reload checks the file now and republishes if it changed and parses. */
  async reload(): Promise<void> {
    if (this.isClosed) return;
    try {
      const fingerprint = await this.#stat();
      if (fingerprint === this.#fingerprint) return;
      this.#fingerprint = fingerprint;
      this.#extra = await this.#load();
      this.#republish();
    } catch (err) {
      this.fail(isAuthError(err) ? err : new AuthError('AUTH_ERR_FILE_UNREADABLE', String(err), { cause: err }));
    }
  }

  async #stat(): Promise<string> {
    try {
      const s = await stat(this.#o.caFile);
      return `${String(s.ino)}:${String(s.size)}:${String(s.mtimeMs)}`;
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? 'error';
      throw new AuthError('AUTH_ERR_FILE_UNREADABLE', `cannot read trust bridge file ${this.#o.caFile} (${code})`, {
        cause,
      });
    }
  }

  async #load(): Promise<Buffer[]> {
    const text = await readFile(this.#o.caFile, 'utf8');
    const blocks = decodePem(text).filter((b) => b.type === 'CERTIFICATE');
    if (blocks.length === 0 && text.trim() !== '') {
      throw new AuthError(
        'AUTH_ERR_BUNDLE_INVALID',
        `trust bridge file ${this.#o.caFile} must hold PEM certificates (or be empty for none)`,
      );
    }
    const roots = blocks.map((b) => Buffer.from(b.der));
    if (roots.length > 0) {
      // Parsed as a bundle once, so a broken certificate is refused here and not at a handshake.
      try {
        new X509Bundle('bridge.invalid', roots);
      } catch (cause) {
        throw new AuthError(
          'AUTH_ERR_BUNDLE_INVALID',
          `trust bridge file ${this.#o.caFile}: ${(cause as Error).message}`,
          {
            cause,
          },
        );
      }
    }
    return roots;
  }

  #republish(): void {
    const inner = this.#o.inner;
    if (!inner.isReady) return;
    const material: X509Material = { svid: inner.getX509Svid(), bundles: inner.getX509Bundles() };
    const td = material.svid.id.trustDomain;
    const own = material.bundles.get(td);
    // X509Bundle drops duplicates, so a root on both sides is listed once.
    const merged = [...(own ? own.authorities.map((c) => c.raw) : []), ...this.#extra];
    this.publish({ svid: material.svid, bundles: material.bundles.with(new X509Bundle(td, merged)) });
  }

  protected async onClose(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#o.inner.off('rotated', this.#onRotated);
    this.#o.inner.off('loadError', this.#onLoadError);
    this.#o.inner.off('withdrawn', this.#onWithdrawn);
    this.#o.inner.off('bundleWarning', this.#onBundleWarning);
    await this.#o.inner.close();
  }
}
