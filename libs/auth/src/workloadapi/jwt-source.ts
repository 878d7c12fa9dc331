import { EventEmitter } from 'node:events';
import { warningSignature, type BundleWarning, type BundleWarningEvent } from '../bundle/bundle-warning.ts';
import type { JwtBundle, JwtBundleSet, JwtBundleSource } from '../bundle/jwt-bundle.ts';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import {
  parseAndValidateJwtSvid,
  parseInsecureJwtSvid,
  type JwtSvid,
  type JwtSvidValidationOptions,
} from '../svid/jwt-svid.ts';
import type { BackoffOptions } from './backoff.ts';
import { WorkloadApiClient, type JwtSvidResult } from './client.ts';

/** WorkloadJwtSourceOptions configure a WorkloadJwtSource. */
export interface WorkloadJwtSourceOptions {
  /** address of the Workload API, `unix:///path` or `tcp://IP:port`. Default: `SPIFFE_ENDPOINT_SOCKET`. */
  address?: string;
  /** env is where `SPIFFE_ENDPOINT_SOCKET` is read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** timeoutMs is how long to wait for the first JWT bundles. Default: 30000. */
  timeoutMs?: number;
  /** clockToleranceSeconds is how far `exp` and `nbf` may be off when validating. Default: 0. */
  clockToleranceSeconds?: number;
  /** client to use instead of one made from `address`; the source does not close it. Default: a new client. */
  client?: WorkloadApiClient;
  /** backoff of the client the source makes. Default: 200 ms doubling to 30 s. */
  backoff?: BackoffOptions;
  /**
   * keepBundlesOnPermissionDenied: when the agent answers PermissionDenied to
   * FetchJWTBundles, keep validating with the last JWT bundles instead of
   * dropping them. The Workload API standard (§6.2.2) says a client should
   * stop using them; keeping them rides out a registration entry that is
   * re-created, at the cost of accepting tokens signed by keys SPIRE may
   * have meant to take away. Default: false.
   */
  keepBundlesOnPermissionDenied?: boolean;
}

/** WorkloadJwtSourceEvents lists the events a WorkloadJwtSource emits. */
export interface WorkloadJwtSourceEvents {
  /** updated: a new set of JWT bundles replaced the previous one (also fires for the first). */
  updated: [JwtBundleSet];
  /** loadError: an update could not be used or the stream failed; the last good bundles stay in use (except after PermissionDenied, see keepBundlesOnPermissionDenied). */
  loadError: [AuthError];
  /** bundleWarning: new bundles held key entries the SPIFFE standards say to ignore; the rest is in use. Once per distinct set. */
  bundleWarning: [BundleWarningEvent];
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * WorkloadJwtSource keeps the JWT bundles of every trust domain we trust
 * current from the Workload API's FetchJWTBundles stream (each message
 * replaces the whole set, so a key SPIRE removes stops validating at once),
 * fetches our own JWT-SVIDs, and validates peers' JWT-SVIDs locally against
 * those bundles.
 */
export class WorkloadJwtSource extends EventEmitter<WorkloadJwtSourceEvents> implements JwtBundleSource {
  readonly #client: WorkloadApiClient;
  readonly #ownsClient: boolean;
  readonly #timeoutMs: number;
  readonly #validation: JwtSvidValidationOptions;
  readonly #stop = new AbortController();
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (err: AuthError) => void;
  #bundles: JwtBundleSet | undefined;
  #lastError: AuthError | undefined;
  #withdrawn: AuthError | undefined;
  #warnings: readonly BundleWarning[] = [];
  #warned = '';
  readonly #keepOnPermissionDenied: boolean;
  #watch: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: WorkloadJwtSourceOptions) {
    super();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new AuthError('AUTH_ERR_CONFIG_INVALID', `timeoutMs must be a positive number (got ${String(timeoutMs)})`);
    }
    const tolerance = options.clockToleranceSeconds ?? 0;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `clockToleranceSeconds must be a finite number ≥ 0 (got ${String(options.clockToleranceSeconds)})`,
      );
    }
    this.#timeoutMs = timeoutMs;
    this.#validation = { clockToleranceSeconds: tolerance };
    this.#keepOnPermissionDenied = options.keepBundlesOnPermissionDenied === true;
    this.#ownsClient = options.client === undefined;
    this.#client =
      options.client ?? new WorkloadApiClient({ address: options.address, env: options.env, backoff: options.backoff });
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A rejection nobody awaits must not crash the process.
    this.#ready.catch(() => undefined);
  }

  /**
   * create connects to the Workload API and resolves once the first JWT
   * bundles arrived; on timeout or a final error it closes the source and
   * rejects with what was last seen.
   */
  static async create(options: WorkloadJwtSourceOptions = {}): Promise<WorkloadJwtSource> {
    const source = WorkloadJwtSource.open(options);
    try {
      await source.ready();
    } catch (err) {
      await source.close();
      throw err;
    }
    return source;
  }

  /** open connects and returns at once; `ready()` resolves with the first JWT bundles. */
  static open(options: WorkloadJwtSourceOptions = {}): WorkloadJwtSource {
    const source = new WorkloadJwtSource(options);
    source.#start();
    return source;
  }

  /** ready resolves once the first JWT bundles are in (rejects on timeout, final error or close). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** isReady is true while JWT bundles are in use (not after a PermissionDenied dropped them). */
  get isReady(): boolean {
    return this.#bundles !== undefined && this.#withdrawn === undefined;
  }

  /** bundleWarnings lists the bundle key entries the bundles in use were read without; empty when none. */
  get bundleWarnings(): readonly BundleWarning[] {
    return this.#warnings;
  }

  /** isClosed is true once close() was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** lastError is the most recent problem seen (cleared by each good update), for health endpoints. */
  get lastError(): AuthError | undefined {
    return this.#lastError;
  }

  /** describe says, for logs, where this source reads from. */
  describe(): string {
    return `Workload API at ${this.#client.address} (JWT)`;
  }

  /** getJwtBundles returns the current JWT bundle set; throws AUTH_ERR_SOURCE_NOT_READY before the first one. */
  getJwtBundles(): JwtBundleSet {
    if (this.#bundles === undefined) {
      throw new AuthError('AUTH_ERR_SOURCE_NOT_READY', `${this.describe()} has no JWT bundles yet`);
    }
    if (this.#withdrawn !== undefined) {
      throw new AuthError(
        'AUTH_ERR_WORKLOAD_PERMISSION_DENIED',
        `${this.describe()}: the JWT bundles were dropped, as the Workload API standard asks (§6.2.2), because ${this.#withdrawn.message}`,
        { cause: this.#withdrawn },
      );
    }
    return this.#bundles;
  }

  /** getJwtBundleForTrustDomain returns the current JWT bundle of `trustDomain` or throws AUTH_ERR_BUNDLE_NOT_FOUND. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle {
    return this.getJwtBundles().getJwtBundleForTrustDomain(trustDomain);
  }

  /**
   * fetchJwtSvid asks the Workload API for a JWT-SVID for `audience`: of
   * `subject` when given, else of the workload's default identity. The token
   * comes from our own agent, so its signature is not re-checked; its claims are.
   */
  async fetchJwtSvid(audience: string[], subject?: SpiffeId | string): Promise<JwtSvid> {
    const wanted = subject === undefined ? undefined : typeof subject === 'string' ? SpiffeId.parse(subject) : subject;
    const results = await this.#client.fetchJwtSvids({ audience, spiffeId: wanted?.toString() });
    const chosen = wanted === undefined ? results[0] : results.find((r) => r.id.equals(wanted));
    if (chosen === undefined) {
      const ids = results.map((r) => r.id.toString()).join(', ');
      throw new AuthError(
        'AUTH_ERR_WORKLOAD_RESPONSE_INVALID',
        `FetchJWTSVID: asked for ${wanted?.toString() ?? 'the default identity'} but got ${ids === '' ? 'nothing' : ids}`,
      );
    }
    return parseFetched(chosen, audience);
  }

  /** fetchJwtSvids asks the Workload API for a JWT-SVID for `audience` for every identity of the workload. */
  async fetchJwtSvids(audience: string[]): Promise<JwtSvid[]> {
    const results = await this.#client.fetchJwtSvids({ audience });
    return results.map((r) => parseFetched(r, audience));
  }

  /**
   * validate checks a peer's JWT-SVID locally against the current JWT bundles
   * (the signer must be in the bundle of the token's own trust domain) and
   * `audience`; it does not call ValidateJWTSVID. Throws
   * AUTH_ERR_SOURCE_NOT_READY before the first bundles arrived.
   */
  async validate(token: string, audience: string[]): Promise<JwtSvid> {
    return await parseAndValidateJwtSvid(token, this.getJwtBundles(), audience, this.#validation);
  }

  /** close stops watching the bundles; the last bundles stay readable. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    this.#rejectReady(
      new AuthError('AUTH_ERR_SOURCE_CLOSED', `${this.describe()} was closed before it got JWT bundles`),
    );
    this.#stop.abort();
    await this.#watch;
    if (this.#ownsClient) await this.#client.close();
  }

  #start(): void {
    this.#timer = setTimeout(() => {
      this.#timedOut();
    }, this.#timeoutMs);
    const watch = this.#client.watchJwtBundles(
      {
        onUpdate: (bundles) => {
          this.#update(bundles);
        },
        onError: (err) => {
          if (err.code === 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED' && !this.#keepOnPermissionDenied) {
            this.#withdrawn ??= err;
          }
          this.#lastError = err;
          this.emit('loadError', err);
        },
        onWarnings: (warnings) => {
          this.#warn(warnings);
        },
      },
      this.#stop.signal,
    );
    this.#watch = watch.then(() => {
      // The watch ends by itself only on a final error: nothing more will arrive.
      if (this.#closed || this.isReady) return;
      this.#clearTimer();
      this.#rejectReady(
        this.#lastError ??
          new AuthError('AUTH_ERR_WORKLOAD_CLOSED', `${this.describe()} stopped before sending JWT bundles`),
      );
    });
  }

  #update(bundles: JwtBundleSet): void {
    if (this.#closed) return;
    this.#clearTimer();
    this.#lastError = undefined;
    this.#withdrawn = undefined;
    this.#bundles = bundles;
    // onWarnings came just before this update when it had any; an update without any clears them.
    if (this.#pendingWarnings === undefined) this.#warn([]);
    this.#pendingWarnings = undefined;
    this.#resolveReady();
    this.emit('updated', bundles);
  }

  #pendingWarnings: readonly BundleWarning[] | undefined;

  #warn(warnings: readonly BundleWarning[]): void {
    if (this.#closed) return;
    if (warnings.length > 0) this.#pendingWarnings = warnings;
    this.#warnings = warnings;
    const signature = warningSignature(warnings);
    if (signature === this.#warned) return;
    this.#warned = signature;
    if (warnings.length > 0) this.emit('bundleWarning', { warnings });
  }

  #timedOut(): void {
    this.#timer = undefined;
    if (this.isReady || this.#closed) return;
    const why = this.#lastError?.message ?? 'the Workload API accepted the stream but sent no JWT bundles';
    this.#rejectReady(
      new AuthError(
        'AUTH_ERR_WORKLOAD_TIMEOUT',
        `no JWT bundles from the ${this.describe()} within ${this.#timeoutMs} ms; last problem: ${why}`,
        this.#lastError === undefined ? undefined : { cause: this.#lastError },
      ),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function parseFetched(result: JwtSvidResult, audience: string[]): JwtSvid {
  let svid: JwtSvid;
  try {
    svid = parseInsecureJwtSvid(result.token, audience, { hint: result.hint });
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new AuthError(
      'AUTH_ERR_WORKLOAD_RESPONSE_INVALID',
      `FetchJWTSVID: the JWT-SVID for ${result.id.toString()} is unusable: ${reason}`,
      { cause },
    );
  }
  if (!svid.id.equals(result.id)) {
    throw new AuthError(
      'AUTH_ERR_WORKLOAD_RESPONSE_INVALID',
      `FetchJWTSVID: spiffe_id ${result.id.toString()} does not match the token's "sub" ${svid.id.toString()}`,
    );
  }
  return svid;
}
