/**
 * Every error this library throws or emits is an AuthError with a stable
 * `code`. Callers match on `err.code`, never on the message. Each code has a
 * `hint` that says what to do, and an entry in docs/errors.md (a test keeps
 * the two in step).
 */

/** errorHints maps each stable error code to what the user should do about it. */
export const errorHints = {
  // SPIFFE IDs and trust domains
  AUTH_ERR_TRUST_DOMAIN_INVALID:
    'Use a trust domain of lower-case letters, digits, ".", "-" and "_" only, e.g. "example.org".',
  AUTH_ERR_SPIFFE_ID_INVALID:
    'Use an ID of the form spiffe://<trust-domain>/<path> with no port, user info, query or fragment, and no empty, "." or ".." segments.',

  // Certificates, keys and SVIDs
  AUTH_ERR_PEM_INVALID: 'Provide PEM text with at least one well-formed block of the expected type.',
  AUTH_ERR_CERT_INVALID: 'Provide a DER or PEM encoded X.509 certificate that parses.',
  AUTH_ERR_KEY_INVALID: 'Provide an unencrypted PKCS#8 private key (PEM "PRIVATE KEY" or DER).',
  AUTH_ERR_KEY_MISMATCH: 'Use the private key that belongs to the leaf certificate (first certificate of the chain).',
  AUTH_ERR_SVID_INVALID:
    'Issue the certificate as an X.509-SVID: exactly one spiffe:// URI SAN with a path, CA=false, digitalSignature set, keyCertSign and cRLSign unset.',
  AUTH_ERR_SVID_EXPIRED: 'Issue a fresh certificate; this one is outside its validity period.',

  // Bundles
  AUTH_ERR_BUNDLE_INVALID: 'Provide SPIFFE bundle JSON (a JWKS with "x509-svid"/"jwt-svid" keys) or PEM CA certificates.',
  AUTH_ERR_BUNDLE_NOT_FOUND: 'Add the bundle of the peer trust domain (federate with it) or do not accept peers from it.',

  // Peer verification and authorization
  AUTH_ERR_PEER_UNVERIFIED:
    'The peer must present an X.509-SVID that chains to the bundle of its own trust domain and is currently valid.',
  AUTH_ERR_PEER_NO_CERTIFICATE: 'Connect with a client certificate (an X.509-SVID).',
  AUTH_ERR_PEER_UNAUTHORIZED: 'Add the peer ID to the allow-list of this route or client, if it should be allowed.',

  // Identity sources
  AUTH_ERR_SOURCE_NOT_READY: 'Await source.ready() before serving, or check the source\'s loadError events.',
  AUTH_ERR_SOURCE_CLOSED: 'The identity source was closed; create a new one.',
  AUTH_ERR_FILE_UNREADABLE: 'Check that the named file exists and that this process may read it.',

  // Workload API (src/workloadapi)

  // JWT-SVIDs (src/svid/jwt-svid.ts)

  // CLI (src/cli)

  // Adapters (src/adapters, src/tls)

  // Configuration
  AUTH_ERR_CONFIG_INVALID: 'Fix the named option or environment variable.',
} as const;

/** AuthErrorCode is one of the stable codes of this library. */
export type AuthErrorCode = keyof typeof errorHints;

/** AuthError is the one error class of this library: a stable code, a message naming the input, and a hint. */
export class AuthError extends Error {
  /** code is stable across versions; match on it. */
  readonly code: AuthErrorCode;
  /** hint says what to do about it. */
  readonly hint: string;

  constructor(code: AuthErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthError';
    this.code = code;
    this.hint = errorHints[code];
  }
}

/** isAuthError tells whether `err` is an AuthError, optionally with the given code. */
export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code);
}
