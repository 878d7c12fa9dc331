import { readFile, stat } from 'node:fs/promises';
import { X509Bundle, X509BundleSet } from '../bundle/x509-bundle.ts';
import type { BundleWarning } from '../bundle/bundle-warning.ts';
import { parseSpiffeBundleJson } from '../bundle/spiffe-bundle.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';
import { X509Svid } from '../svid/x509-svid.ts';
import { checkOwnX509Svid } from '../svid/x509-svid-check.ts';
import { IdentitySourceBase, type IdentitySourceOptions, type X509Material } from './identity-source.ts';

/** FileSourceOptions configure a FileIdentitySource. */
export interface FileSourceOptions extends IdentitySourceOptions {
  /** certFile is the PEM certificate chain, leaf first (`TLS_CERT_FILE`). */
  certFile: string;
  /** keyFile is the PEM PKCS#8 private key (`TLS_KEY_FILE`). */
  keyFile: string;
  /** caFile holds PEM CA certificates or SPIFFE bundle JSON for our trust domain (`TLS_CA_FILE`). */
  caFile: string;
  /** trustDomain the CA file speaks for. Default: the trust domain of our own certificate. */
  trustDomain?: string;
  /** federatedBundleFiles maps other trust domains to their bundle files (PEM or SPIFFE bundle JSON). Default: none. */
  federatedBundleFiles?: Record<string, string>;
  /** reloadIntervalMs is how often the files are checked for changes. Default: 1000. */
  reloadIntervalMs?: number;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new AuthError('AUTH_ERR_FILE_UNREADABLE', `cannot read ${what} ${path} (${code})`, { cause });
  }
}

function parseBundleFile(
  td: TrustDomain,
  text: string,
  path: string,
): { bundle: X509Bundle; warnings: readonly BundleWarning[] } {
  try {
    if (text.trimStart().startsWith('{')) {
      // SPIFFE bundle JSON: the one parser every path uses, tolerant of key entries the standards say to ignore.
      const parsed = parseSpiffeBundleJson(td, text, { where: `file ${path}` });
      return { bundle: parsed.x509Bundle, warnings: parsed.warnings };
    }
    return { bundle: X509Bundle.fromPem(td, text), warnings: [] };
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new AuthError('AUTH_ERR_BUNDLE_INVALID', `CA/bundle file ${path} for "${td.name}": ${detail}`, { cause });
  }
}

function checkOptions(options: FileSourceOptions): void {
  for (const key of ['certFile', 'keyFile', 'caFile'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') {
      throw new AuthError('AUTH_ERR_CONFIG_INVALID', `FileIdentitySource option "${key}" must be a file path`);
    }
  }
  // A setting waiting cannot fix fails now, not at every reload.
  if (options.trustDomain !== undefined) TrustDomain.parse(options.trustDomain);
}

/**
 * FileIdentitySource reads our identity from static files and reloads them
 * when they change. A reload that finds a half-written file, a key that does
 * not match its certificate, an expired certificate, or one that does not
 * chain to the CA file (checkOwnX509Svid, the check the Workload API source
 * makes too) is refused: the last good material stays in use and
 * `loadError` says why. A SPIFFE bundle JSON file's key entries that the
 * standards say to ignore are left out and reported by `bundleWarning`.
 */
export class FileIdentitySource extends IdentitySourceBase {
  readonly kind = 'files' as const;
  readonly #options: FileSourceOptions;
  #timer: NodeJS.Timeout | undefined;
  #fingerprint = '';
  #reloading: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  private constructor(options: FileSourceOptions) {
    super(options);
    this.#options = options;
  }

  /** create loads the files once (failing with a clear error if they are not usable) and starts watching them. */
  static async create(options: FileSourceOptions): Promise<FileIdentitySource> {
    checkOptions(options);
    const source = new FileIdentitySource(options);
    const { material, fingerprint, warnings } = await source.#load();
    source.#fingerprint = fingerprint;
    source.publish(material);
    source.warn(warnings);
    source.#watch();
    source.#timer?.unref();
    return source;
  }

  /**
   * open returns at once and keeps trying the files every `reloadIntervalMs`
   * until they are usable (e.g. written by a sidecar after we start): until
   * then `isReady` is false, each new problem is a `loadError` and
   * `lastError` says what is in the way; `ready()` resolves with the first
   * good load and rejects only if the source is closed first.
   */
  static open(options: FileSourceOptions): FileIdentitySource {
    checkOptions(options);
    const source = new FileIdentitySource(options);
    source.#watch();
    void source.reload();
    return source;
  }

  #watch(): void {
    this.#timer = setInterval(() => {
      void this.reload();
    }, this.#options.reloadIntervalMs ?? 1000);
  }

  describe(): string {
    return `files cert=${this.#options.certFile} key=${this.#options.keyFile} ca=${this.#options.caFile}`;
  }

  /** reload checks the files now and publishes new material if they changed and are good. */
  async reload(): Promise<void> {
    if (this.#reloading) {
      // The load in flight may have read the files before the change our
      // caller knows of: one more load runs after it, shared by every caller
      // meanwhile, so what reload() reports is never older than the call.
      const again = (): Promise<void> => {
        this.#queued = undefined;
        return this.reload();
      };
      this.#queued ??= this.#reloading.then(again, again);
      return this.#queued;
    }
    this.#reloading = this.#reloadOnce().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reloadOnce(): Promise<void> {
    if (this.isClosed) return;
    let fingerprint: string;
    try {
      fingerprint = await this.#stat();
    } catch (err) {
      // Still missing before the first load: said once, not every tick.
      const e = err as AuthError;
      if (this.isReady || this.lastError?.message !== e.message) this.fail(e);
      return;
    }
    if (fingerprint === this.#fingerprint) return;
    try {
      const loaded = await this.#load();
      this.#fingerprint = loaded.fingerprint;
      this.publish(loaded.material);
      this.warn(loaded.warnings);
      // Waiting for the first load keeps the process alive; watching for changes does not.
      this.#timer?.unref();
    } catch (err) {
      // Remember what we saw so a broken file is reported once, not every tick;
      // any further write changes the fingerprint and triggers a new attempt.
      this.#fingerprint = fingerprint;
      this.fail(isAuthError(err) ? err : new AuthError('AUTH_ERR_FILE_UNREADABLE', String(err), { cause: err }));
    }
  }

  #paths(): string[] {
    const o = this.#options;
    return [o.certFile, o.keyFile, o.caFile, ...Object.values(o.federatedBundleFiles ?? {})];
  }

  async #stat(): Promise<string> {
    const paths = this.#paths();
    const results = await Promise.allSettled(paths.map((p) => stat(p)));
    // The first unreadable file in a fixed order (certificate, key, CA, …),
    // not whichever stat failed first: the same problem gives the same message.
    const parts = results.map((r, i) => {
      if (r.status === 'fulfilled') return `${r.value.ino}:${r.value.size}:${r.value.mtimeMs}`;
      const code = (r.reason as NodeJS.ErrnoException).code ?? 'error';
      throw new AuthError('AUTH_ERR_FILE_UNREADABLE', `cannot read ${paths[i] ?? ''} (${code})`, { cause: r.reason });
    });
    return parts.join('|');
  }

  async #load(): Promise<{ material: X509Material; fingerprint: string; warnings: readonly BundleWarning[] }> {
    const o = this.#options;
    const fingerprint = await this.#stat();
    const [certPem, keyPem, caText] = await Promise.all([
      readText(o.certFile, 'certificate file'),
      readText(o.keyFile, 'private key file'),
      readText(o.caFile, 'CA file'),
    ]);
    let svid: X509Svid;
    try {
      svid = X509Svid.fromPem(certPem, keyPem);
    } catch (err) {
      if (isAuthError(err)) {
        throw new AuthError(err.code, `${o.certFile} / ${o.keyFile}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const td = o.trustDomain === undefined ? svid.id.trustDomain : TrustDomain.parse(o.trustDomain);
    const first = parseBundleFile(td, caText, o.caFile);
    const bundles = [first.bundle];
    const warnings = [...first.warnings];
    for (const [name, path] of Object.entries(o.federatedBundleFiles ?? {})) {
      const parsed = parseBundleFile(TrustDomain.parse(name), await readText(path, 'federated bundle file'), path);
      bundles.push(parsed.bundle);
      warnings.push(...parsed.warnings);
    }
    const set = new X509BundleSet(bundles);
    // The same check the Workload API source makes: valid now, and chains to our own trust domain's bundle.
    checkOwnX509Svid(svid, set, `certificate file ${o.certFile}`);
    return { material: { svid, bundles: set }, fingerprint, warnings };
  }

  protected onClose(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    return Promise.resolve();
  }
}
