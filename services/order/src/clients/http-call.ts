import { errors, request, type Dispatcher } from 'undici';
import { neverReachedPeer } from '@shop/auth';
import { UpstreamError } from './upstream-error.ts';

/** HttpAnswer is an upstream's status and JSON body. */
export interface HttpAnswer {
  status: number;
  body: unknown;
}

/**
 * callJson makes one HTTP call to an upstream over the given (mTLS)
 * dispatcher, bounded by `timeoutMs`, and classifies failures: no answer →
 * `unavailable` (or `unknown` when `sideEffects` is true, since the request
 * may have been applied), 5xx → `unavailable`. 4xx answers are returned for
 * the caller to interpret.
 */
export async function callJson(
  upstream: string,
  dispatcher: Dispatcher,
  url: string,
  o: {
    method?: 'GET' | 'POST';
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs: number;
    sideEffects?: boolean;
  },
): Promise<HttpAnswer> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      dispatcher,
      method: o.method ?? 'GET',
      headers: { ...(o.body === undefined ? {} : { 'content-type': 'application/json' }), ...o.headers },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (cause) {
    const timedOut =
      cause instanceof DOMException ||
      cause instanceof errors.HeadersTimeoutError ||
      (cause as Error).name === 'TimeoutError';
    const code = timedOut ? 'TIMEOUT' : ((cause as { code?: string }).code ?? 'UNREACHABLE');
    // A failure while connecting (TCP, the mTLS handshake, the server's
    // SPIFFE verification) means the request was never sent: its effect is
    // known (none). Anything later may have reached the upstream.
    const kind = o.sideEffects && !neverReachedPeer(cause) ? 'unknown' : 'unavailable';
    throw new UpstreamError(upstream, kind, code, `${o.method ?? 'GET'} ${url} failed: ${(cause as Error).message}`, {
      cause,
    });
  }
  let body: unknown;
  try {
    body = await res.body.json();
  } catch (cause) {
    throw new UpstreamError(
      upstream,
      o.sideEffects ? 'unknown' : 'unavailable',
      'BAD_RESPONSE',
      `${url} answered ${res.statusCode} without JSON`,
      { status: res.statusCode, cause },
    );
  }
  if (res.statusCode >= 500) {
    const { code, message } = errorOf(body, res.statusCode);
    throw new UpstreamError(upstream, 'unavailable', code, message, { status: res.statusCode });
  }
  return { status: res.statusCode, body };
}

/** errorOf reads the `{ code, message }` body every shop service answers errors with. */
export function errorOf(body: unknown, status: number): { code: string; message: string } {
  const b = (body ?? {}) as { code?: unknown; message?: unknown };
  return {
    code: typeof b.code === 'string' ? b.code : `HTTP_${status}`,
    message: typeof b.message === 'string' ? b.message : `answered ${status}`,
  };
}
