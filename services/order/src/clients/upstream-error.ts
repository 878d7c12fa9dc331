/**
 * UpstreamError is how every client reports a failed call, classified for
 * the saga: `rejected` means the upstream answered and said no (a 4xx: out of
 * stock, declined — do not retry, do not count against its breaker);
 * `unavailable` means it could not be reached or failed (network, 5xx,
 * timeout, open breaker — retry where idempotent); `unknown` means the
 * request may or may not have taken effect (a charge that timed out).
 */
export class UpstreamError extends Error {
  readonly upstream: string;
  readonly kind: 'rejected' | 'unavailable' | 'unknown';
  /** code is the upstream's error code (e.g. INSUFFICIENT_STOCK) or a transport code. */
  readonly code: string;
  readonly status: number | undefined;

  constructor(
    upstream: string,
    kind: UpstreamError['kind'],
    code: string,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(`${upstream}: ${message}`, { cause: options.cause });
    this.name = 'UpstreamError';
    this.upstream = upstream;
    this.kind = kind;
    this.code = code;
    this.status = options.status;
  }
}

/** isRejected tells whether `err` is an upstream's considered "no" (which must not trip its breaker). */
export function isRejected(err: unknown): boolean {
  return err instanceof UpstreamError && err.kind === 'rejected';
}
