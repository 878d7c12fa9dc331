import { AuthError } from '../errors.ts';
import { IdentitySourceBase, type IdentitySourceOptions } from '../source/identity-source.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import { checkOwnX509Svid } from '../svid/x509-svid-check.ts';
import type { BackoffOptions } from './backoff.ts';
import { WorkloadApiClient, type X509Context } from './client.ts';

/** WorkloadX509SourceOptions configure a WorkloadX509Source. */
export interface WorkloadX509SourceOptions extends IdentitySourceOptions {
  /** address of the Workload API, `unix:///path` or `tcp://IP:port`. Default: `SPIFFE_ENDPOINT_SOCKET`. */
  address?: string;
  /** env is where `SPIFFE_ENDPOINT_SOCKET` is read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** timeoutMs is how long to wait for the first X.509-SVID; `Infinity` waits as long as it takes. Default: 30000. */
  timeoutMs?: number;
  /** pickSvid chooses our identity when the workload has several (e.g. by `hint`). Default: the first, SPIRE's default. */
  pickSvid?: (svids: readonly X509Svid[]) => X509Svid | undefined;
  /** client to use instead of one made from `address`; the source does not close it. Default: a new client. */
  client?: WorkloadApiClient;
  /** backoff of the client the source makes. Default: 200 ms doubling to 30 s. */
  backoff?: BackoffOptions;
  /**
   * silentStreamMs is how long the stream may stay silent (no message, no
   * error) before the first X.509-SVID, and between re-dials once the SVID is
   * near expiry, before it is cancelled and dialled again. Default: 10000.
   */
  silentStreamMs?: number;
  /**
   * redialWhenRemaining: when nothing has arrived on the stream since the
   * current SVID arrived and less than this fraction of its lifetime is left,
   * the stream is taken as stuck, cancelled and dialled again. SPIRE rotates
   * at half-life, so a healthy agent has sent a new SVID well before. 0 turns
   * it off. Default: 0.25.
   */
  redialWhenRemaining?: number;
  /**
   * keepSvidOnPermissionDenied: when the agent answers PermissionDenied (the
   * workload lost its registration entry), keep presenting the last
   * X.509-SVID until it expires instead of withdrawing it at once. The
   * Workload API standard (§5.2.1) says a client should stop using it; keeping
   * it rides out an entry that is deleted and re-created, at the cost of a
   * workload the operator meant to cut off keeping its identity for up to one
   * SVID lifetime. Default: false.
   */
  keepSvidOnPermissionDenied?: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_SILENT_STREAM_MS = 10_000;
const DEFAULT_REDIAL_WHEN_REMAINING = 0.25;
// Past the re-dial point, a stream that stays silent is dialled again this
// often at most, so a short-lived SVID still gets a few attempts.
const MIN_REDIAL_GAP_MS = 1000;

function pickFirst(svids: readonly X509Svid[]): X509Svid | undefined {
  return svids[0];
}

/**
 * WorkloadX509Source keeps our X.509-SVID and trust bundles current from the
 * SPIFFE Workload API (the SPIRE agent). Every usable update replaces the
 * material (so a CA or a federated trust domain removed by SPIRE stops being
 * trusted); every dropped update or connection problem is a `loadError`
 * while the last good material stays in use. An SVID is put in use only if
 * checkOwnX509Svid passes (valid now, chains to our own trust domain's
 * bundle from the same update). A PermissionDenied answer withdraws the SVID
 * (`withdrawn`, not ready) unless `keepSvidOnPermissionDenied` is set. The stream reconnects with
 * backoff, and a stream that stays silent (see `silentStreamMs` and
 * `redialWhenRemaining`) is cancelled and dialled again, with a `loadError`
 * (AUTH_ERR_WORKLOAD_TIMEOUT) saying why.
 */
export class WorkloadX509Source extends IdentitySourceBase {
  readonly kind = 'spiffe' as const;
  readonly #client: WorkloadApiClient;
  readonly #ownsClient: boolean;
  readonly #pickSvid: (svids: readonly X509Svid[]) => X509Svid | undefined;
  readonly #timeoutMs: number;
  readonly #silentStreamMs: number;
  readonly #redialWhenRemaining: number;
  readonly #keepSvidOnPermissionDenied: boolean;
  readonly #stop = new AbortController();
  readonly #watches = new Set<Promise<void>>();
  #stream: AbortController | undefined;
  #streamOpen = false;
  #lastActivity = 0;
  #timer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #expiryWithdrawal: NodeJS.Timeout | undefined;

  private constructor(options: WorkloadX509SourceOptions) {
    super(options);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (Number.isNaN(timeoutMs) || timeoutMs <= 0) {
      throw new AuthError('AUTH_ERR_CONFIG_INVALID', `timeoutMs must be a positive number (got ${String(timeoutMs)})`);
    }
    const silentStreamMs = options.silentStreamMs ?? DEFAULT_SILENT_STREAM_MS;
    if (!Number.isFinite(silentStreamMs) || silentStreamMs <= 0) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `silentStreamMs must be a positive number of milliseconds (got ${String(silentStreamMs)})`,
      );
    }
    const redialWhenRemaining = options.redialWhenRemaining ?? DEFAULT_REDIAL_WHEN_REMAINING;
    if (!(redialWhenRemaining >= 0 && redialWhenRemaining < 1)) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `redialWhenRemaining must be a fraction of the SVID lifetime in [0, 1) (got ${String(redialWhenRemaining)})`,
      );
    }
    this.#timeoutMs = timeoutMs;
    this.#silentStreamMs = silentStreamMs;
    this.#redialWhenRemaining = redialWhenRemaining;
    this.#keepSvidOnPermissionDenied = options.keepSvidOnPermissionDenied === true;
    this.#pickSvid = options.pickSvid ?? pickFirst;
    this.#ownsClient = options.client === undefined;
    this.#client =
      options.client ?? new WorkloadApiClient({ address: options.address, env: options.env, backoff: options.backoff });
  }

  /**
   * create connects to the Workload API and resolves once the first X.509-SVID
   * arrived. After `timeoutMs` it closes the source and rejects with
   * AUTH_ERR_WORKLOAD_TIMEOUT saying what was last seen (agent socket missing,
   * no registration entry, …); a final error (InvalidArgument) rejects at once.
   */
  static async create(options: WorkloadX509SourceOptions = {}): Promise<WorkloadX509Source> {
    const source = WorkloadX509Source.open(options);
    try {
      await source.ready();
    } catch (err) {
      await source.close();
      throw err;
    }
    return source;
  }

  /**
   * open connects and returns at once, so a service can start before SPIRE
   * has an identity for it. `ready()` rejects after `timeoutMs` (never with
   * `timeoutMs: Infinity`), but the source keeps watching and becomes ready
   * (`isReady`, `rotated`) as soon as an SVID arrives; until then `lastError`
   * says what is in the way. Throws only for an invalid or missing address.
   */
  static open(options: WorkloadX509SourceOptions = {}): WorkloadX509Source {
    const source = new WorkloadX509Source(options);
    source.#start();
    return source;
  }

  describe(): string {
    return `Workload API at ${this.#client.address}`;
  }

  #start(): void {
    if (Number.isFinite(this.#timeoutMs)) {
      this.#timer = setTimeout(() => {
        this.#timedOut();
      }, this.#timeoutMs);
    }
    this.#dial();
  }

  /** Opens a new FetchX509SVID watch; the one before it (if any) was cancelled by the caller. */
  #dial(): void {
    const stream = new AbortController();
    this.#stream = stream;
    const current = (): boolean => this.#stream === stream && !stream.signal.aborted;
    const watch = this.#client.watchX509Context(
      {
        onUpdate: (ctx) => {
          if (!current()) return;
          this.#sawActivity();
          this.#update(ctx);
        },
        onError: (err) => {
          if (!current()) return;
          // An unusable message on an open stream is a sign of life; an
          // error that ended the stream is followed by a reconnect.
          if (this.#streamOpen) this.#sawActivity();
          if (err.code === 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED') this.#permissionDenied(err);
          else this.fail(err);
        },
        onStreamState: (open) => {
          if (!current()) return;
          this.#streamOpen = open;
          if (open) this.#sawActivity();
          else this.#clearWatchdog();
        },
      },
      AbortSignal.any([this.#stop.signal, stream.signal]),
    );
    const ended = (err?: unknown): void => {
      // The watch only ends by itself on a final error (or a throwing
      // listener): nothing will ever arrive. A re-dial ends it on purpose.
      if (this.isClosed || this.isReady || !current()) return;
      this.#clearTimer();
      this.#clearWatchdog();
      this.failReady(
        err instanceof Error
          ? err
          : (this.lastError ??
              new AuthError('AUTH_ERR_WORKLOAD_CLOSED', `${this.describe()} stopped before sending an X.509-SVID`)),
      );
    };
    const tracked = watch.then(
      () => {
        ended();
      },
      (err: unknown) => {
        ended(err);
      },
    );
    this.#watches.add(tracked);
    void tracked.finally(() => this.#watches.delete(tracked));
  }

  #sawActivity(): void {
    this.#lastActivity = Date.now();
    this.#armWatchdog();
  }

  /**
   * Arms the check for a silent stream, while one is open (not while the
   * client waits out a backoff): before the first SVID, `silentStreamMs`
   * after it opened or last sent something; after it, once the SVID has less
   * than `redialWhenRemaining` of its lifetime left and nothing came since.
   */
  #armWatchdog(): void {
    this.#clearWatchdog();
    if (this.isClosed || !this.#streamOpen) return;
    const svid = this.current()?.svid;
    let due: number;
    if (svid === undefined) {
      due = this.#lastActivity + this.#silentStreamMs;
    } else {
      if (this.#redialWhenRemaining === 0) return;
      const expires = svid.expiresAt.getTime();
      const lifetime = expires - svid.notBefore.getTime();
      const point = expires - lifetime * this.#redialWhenRemaining;
      const gap = Math.max(MIN_REDIAL_GAP_MS, Math.min(this.#silentStreamMs, (expires - point) / 2));
      due = Math.max(point, this.#lastActivity + gap);
    }
    const delay = Math.max(0, Math.min(due - Date.now(), 2 ** 31 - 1));
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      this.#redial();
    }, delay);
    this.#watchdog.unref();
  }

  #redial(): void {
    if (this.isClosed) return;
    const quietS = Math.round((Date.now() - this.#lastActivity) / 100) / 10;
    const svid = this.current()?.svid;
    const why =
      svid === undefined
        ? `the ${this.describe()} sent nothing (no X.509-SVID, no error) for ${String(quietS)} s; the stream looks stuck (or a registration entry is still being created): dialling it again`
        : `no update from the ${this.describe()} for ${String(quietS)} s and the X.509-SVID ${svid.id.toString()} expires at ${svid.expiresAt.toISOString()} (in ${String(Math.max(0, Math.round(svid.secondsToExpiry())))} s); the stream looks stuck: dialling it again`;
    this.fail(new AuthError('AUTH_ERR_WORKLOAD_TIMEOUT', why));
    this.#stream?.abort();
    this.#streamOpen = false;
    this.#dial();
  }

  #update(ctx: X509Context): void {
    let svid: X509Svid | undefined;
    try {
      svid = this.#pickSvid(ctx.svids);
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      this.fail(new AuthError('AUTH_ERR_WORKLOAD_RESPONSE_INVALID', `pickSvid failed: ${detail}`, { cause }));
      return;
    }
    if (svid === undefined) {
      const ids = ctx.svids.map((s) => `${s.id.toString()}${s.hint === '' ? '' : ` (hint "${s.hint}")`}`).join(', ');
      this.fail(
        new AuthError(
          'AUTH_ERR_WORKLOAD_RESPONSE_INVALID',
          `pickSvid chose none of the X.509-SVIDs the Workload API sent: ${ids}`,
        ),
      );
      return;
    }
    try {
      checkOwnX509Svid(svid, ctx.bundles, `the ${this.describe()}`);
    } catch (err) {
      const e = err as AuthError;
      this.fail(new AuthError(e.code, `${e.message}; refused, the last good X.509-SVID stays in use`, { cause: e }));
      return;
    }
    this.#clearTimer();
    this.#clearExpiryWithdrawal();
    this.publish({ svid, bundles: ctx.bundles });
    // The re-dial point moves with the new SVID.
    this.#armWatchdog();
  }

  /**
   * The agent no longer grants us an identity. The standard (§5.2.1) says to
   * stop using the SVID; with keepSvidOnPermissionDenied it is kept until it
   * expires, and withdrawn then unless a new one arrived.
   */
  #permissionDenied(err: AuthError): void {
    const svid = this.isReady ? this.current()?.svid : undefined;
    if (svid === undefined) {
      this.fail(err);
      return;
    }
    const id = svid.id.toString();
    if (!this.#keepSvidOnPermissionDenied) {
      this.withdraw(
        new AuthError(
          'AUTH_ERR_SVID_WITHDRAWN',
          `${err.message}; stopped using X.509-SVID ${id} as the Workload API standard asks (§5.2.1): not ready until the agent grants an identity again (keepSvidOnPermissionDenied keeps it until it expires at ${svid.expiresAt.toISOString()})`,
          { cause: err },
        ),
      );
      return;
    }
    this.fail(err);
    if (this.#expiryWithdrawal !== undefined) return;
    const delay = Math.max(0, Math.min(svid.expiresAt.getTime() - Date.now(), 2 ** 31 - 1));
    this.#expiryWithdrawal = setTimeout(() => {
      this.#expiryWithdrawal = undefined;
      if (this.current()?.svid !== svid) return;
      this.withdraw(
        new AuthError(
          'AUTH_ERR_SVID_WITHDRAWN',
          `X.509-SVID ${id} expired at ${svid.expiresAt.toISOString()} and the ${this.describe()} still answers PermissionDenied; kept until now by keepSvidOnPermissionDenied, it is no longer used`,
          { cause: err },
        ),
      );
    }, delay);
    this.#expiryWithdrawal.unref();
  }

  #clearExpiryWithdrawal(): void {
    if (this.#expiryWithdrawal !== undefined) clearTimeout(this.#expiryWithdrawal);
    this.#expiryWithdrawal = undefined;
  }

  #timedOut(): void {
    this.#timer = undefined;
    if (this.isReady || this.isClosed) return;
    const last = this.lastError;
    const why =
      last?.message ??
      'the Workload API accepted the stream but sent no X.509-SVID (is a registration entry being created?)';
    this.failReady(
      new AuthError(
        'AUTH_ERR_WORKLOAD_TIMEOUT',
        `no X.509-SVID from the ${this.describe()} within ${String(this.#timeoutMs)} ms; last problem: ${why}`,
        last === undefined ? undefined : { cause: last },
      ),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #clearWatchdog(): void {
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
  }

  protected async onClose(): Promise<void> {
    this.#clearTimer();
    this.#clearExpiryWithdrawal();
    this.#clearWatchdog();
    this.#stop.abort();
    await Promise.allSettled([...this.#watches]);
    if (this.#ownsClient) await this.#client.close();
  }
}
