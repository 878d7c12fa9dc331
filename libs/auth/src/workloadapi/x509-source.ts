import { AuthError } from '../errors.ts';
import { IdentitySourceBase, type IdentitySourceOptions } from '../source/identity-source.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import type { BackoffOptions } from './backoff.ts';
import { WorkloadApiClient, type X509Context } from './client.ts';

/** WorkloadX509SourceOptions configure a WorkloadX509Source. */
export interface WorkloadX509SourceOptions extends IdentitySourceOptions {
  /** address of the Workload API, `unix:///path` or `tcp://IP:port`. Default: `SPIFFE_ENDPOINT_SOCKET`. */
  address?: string;
  /** env is where `SPIFFE_ENDPOINT_SOCKET` is read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** timeoutMs is how long to wait for the first X.509-SVID. Default: 30000. */
  timeoutMs?: number;
  /** pickSvid chooses our identity when the workload has several (e.g. by `hint`). Default: the first, SPIRE's default. */
  pickSvid?: (svids: readonly X509Svid[]) => X509Svid | undefined;
  /** client to use instead of one made from `address`; the source does not close it. Default: a new client. */
  client?: WorkloadApiClient;
  /** backoff of the client the source makes. Default: 200 ms doubling to 30 s. */
  backoff?: BackoffOptions;
}

const DEFAULT_TIMEOUT_MS = 30_000;

function pickFirst(svids: readonly X509Svid[]): X509Svid | undefined {
  return svids[0];
}

/**
 * WorkloadX509Source keeps our X.509-SVID and trust bundles current from the
 * SPIFFE Workload API (the SPIRE agent). Every usable update replaces the
 * material (so a CA or a federated trust domain removed by SPIRE stops being
 * trusted); every dropped update or connection problem is a `loadError`
 * while the last good material stays in use. The stream reconnects with backoff.
 */
export class WorkloadX509Source extends IdentitySourceBase {
  readonly kind = 'spiffe' as const;
  readonly #client: WorkloadApiClient;
  readonly #ownsClient: boolean;
  readonly #pickSvid: (svids: readonly X509Svid[]) => X509Svid | undefined;
  readonly #timeoutMs: number;
  readonly #stop = new AbortController();
  #watch: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastError: AuthError | undefined;

  private constructor(options: WorkloadX509SourceOptions) {
    super(options);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new AuthError('AUTH_ERR_CONFIG_INVALID', `timeoutMs must be a positive number (got ${String(timeoutMs)})`);
    }
    this.#timeoutMs = timeoutMs;
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
   * has an identity for it. `ready()` rejects after `timeoutMs`, but the
   * source keeps watching and becomes ready (`isReady`, `rotated`) as soon as
   * an SVID arrives. Throws only for an invalid or missing address.
   */
  static open(options: WorkloadX509SourceOptions = {}): WorkloadX509Source {
    const source = new WorkloadX509Source(options);
    source.#start();
    return source;
  }

  /** lastError is the most recent problem seen (cleared by each good update), for health endpoints. */
  get lastError(): AuthError | undefined {
    return this.#lastError;
  }

  describe(): string {
    return `Workload API at ${this.#client.address}`;
  }

  #start(): void {
    this.#timer = setTimeout(() => {
      this.#timedOut();
    }, this.#timeoutMs);
    const watch = this.#client.watchX509Context(
      {
        onUpdate: (ctx) => {
          this.#update(ctx);
        },
        onError: (err) => {
          this.#lastError = err;
          this.fail(err);
        },
      },
      this.#stop.signal,
    );
    const ended = (err?: unknown): void => {
      // The watch only ends by itself on a final error (or a throwing
      // listener): nothing will ever arrive.
      if (this.isClosed || this.isReady) return;
      this.#clearTimer();
      this.failReady(
        err instanceof Error
          ? err
          : (this.#lastError ??
              new AuthError('AUTH_ERR_WORKLOAD_CLOSED', `${this.describe()} stopped before sending an X.509-SVID`)),
      );
    };
    this.#watch = watch.then(() => {
      ended();
    }, ended);
  }

  #update(ctx: X509Context): void {
    let svid: X509Svid | undefined;
    try {
      svid = this.#pickSvid(ctx.svids);
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      this.#lastError = new AuthError('AUTH_ERR_WORKLOAD_RESPONSE_INVALID', `pickSvid failed: ${detail}`, { cause });
      this.fail(this.#lastError);
      return;
    }
    if (svid === undefined) {
      const ids = ctx.svids.map((s) => `${s.id.toString()}${s.hint === '' ? '' : ` (hint "${s.hint}")`}`).join(', ');
      this.#lastError = new AuthError(
        'AUTH_ERR_WORKLOAD_RESPONSE_INVALID',
        `pickSvid chose none of the X.509-SVIDs the Workload API sent: ${ids}`,
      );
      this.fail(this.#lastError);
      return;
    }
    this.#clearTimer();
    this.#lastError = undefined;
    this.publish({ svid, bundles: ctx.bundles });
  }

  #timedOut(): void {
    this.#timer = undefined;
    if (this.isReady || this.isClosed) return;
    const why =
      this.#lastError?.message ??
      'the Workload API accepted the stream but sent no X.509-SVID (is a registration entry being created?)';
    this.failReady(
      new AuthError(
        'AUTH_ERR_WORKLOAD_TIMEOUT',
        `no X.509-SVID from the ${this.describe()} within ${this.#timeoutMs} ms; last problem: ${why}`,
        this.#lastError === undefined ? undefined : { cause: this.#lastError },
      ),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  protected async onClose(): Promise<void> {
    this.#clearTimer();
    this.#stop.abort();
    await this.#watch;
    if (this.#ownsClient) await this.#client.close();
  }
}
