// Codes of failures in the connect phase: no byte of the request left this
// process. TCP refused or unreachable, undici's own connect timeout, and this
// library's TLS connect, handshake and server verification failures (its
// undici connector and connectMtls fail with these before undici writes the
// request). ECONNRESET and timeouts after connecting are not here: the
// request may have been read.
const NEVER_SENT = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'AUTH_ERR_TLS_CONNECT',
  'AUTH_ERR_TLS_HANDSHAKE',
  'AUTH_ERR_PEER_UNVERIFIED',
  'AUTH_ERR_PEER_UNAUTHORIZED',
  'AUTH_ERR_PEER_NO_CERTIFICATE',
]);

// fetch() wraps errors twice or more (TypeError "fetch failed" → cause); a
// bound keeps a cyclic chain from looping.
const MAX_CAUSES = 8;

/**
 * neverReachedPeer tells whether a failed call never reached the server: it
 * failed while connecting (TCP refused or unreachable, connect timeout, TLS
 * handshake, or the server's SVID failing verification or authorization), so
 * the server cannot have acted on it and it is safe to report as "not done"
 * or to retry elsewhere. The first string `code` on `err` or down its
 * `cause` chain decides, so undici's `request()` errors, `fetch()`'s
 * "fetch failed" (code-less, with the cause) and wrappers that keep the
 * cause all answer, while a wrapper with a code of its own speaks for
 * itself. False for anything else, including timeouts and resets after the
 * request was sent.
 */
export function neverReachedPeer(err: unknown): boolean {
  let cur: unknown = err;
  for (let i = 0; i < MAX_CAUSES && typeof cur === 'object' && cur !== null; i++) {
    const { code, cause } = cur as { code?: unknown; cause?: unknown };
    if (typeof code === 'string') return NEVER_SENT.has(code);
    cur = cause;
  }
  return false;
}
