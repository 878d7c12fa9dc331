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
  AUTH_ERR_SVID_UNTRUSTED:
    "Issue our X.509-SVID from a CA in our own trust domain's bundle (TLS_CA_FILE, or the bundle SPIRE sends with it), or add that CA to the bundle; an SVID peers cannot verify is not put in use.",
  AUTH_ERR_SVID_WITHDRAWN:
    'The Workload API answered PermissionDenied, so this workload no longer holds an identity: restore its SPIRE registration entry (the client keeps retrying), or set keepSvidOnPermissionDenied to keep the last X.509-SVID until it expires.',

  // Bundles
  AUTH_ERR_BUNDLE_INVALID:
    'Provide SPIFFE bundle JSON (a JWKS with "x509-svid"/"jwt-svid" keys) or PEM CA certificates.',
  AUTH_ERR_BUNDLE_NOT_FOUND:
    'Add the bundle of the peer trust domain (federate with it) or do not accept peers from it.',

  // Federation through SPIFFE bundle endpoints (src/federation)
  AUTH_ERR_FEDERATION_FETCH_FAILED:
    'The bundle endpoint could not be reached or did not answer 200; check its URL and that it is up. The last good bundle stays in use and the client retries.',
  AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED:
    "The bundle endpoint's certificate does not verify: for https_spiffe give (or refresh out of band) the bundle of the endpoint's trust domain; for https_web a certificate from a trusted CA naming the URL's host.",
  AUTH_ERR_FEDERATION_ENDPOINT_ID_MISMATCH:
    'The bundle endpoint presented another SPIFFE ID than configured: fix endpointSpiffeId (e.g. spiffe://<td>/spire/server for SPIRE) or the URL.',
  AUTH_ERR_FEDERATION_TRUST_DOMAIN_MISMATCH:
    'The endpoint served the bundle of another trust domain: check that the URL and the trust domain configured for it belong together.',
  AUTH_ERR_FEDERATION_BUNDLE_STALE:
    "The endpoint served an older bundle (lower spiffe_sequence) than the one in use; check the federated trust domain's bundle endpoint (a stale replica?).",

  // Peer verification and authorization
  AUTH_ERR_PEER_UNVERIFIED:
    'The peer must present an X.509-SVID that chains to the bundle of its own trust domain, is currently valid, and whose extended key usage, where present on any certificate of the chain, allows its role (clientAuth for a client, serverAuth for a server).',
  AUTH_ERR_PEER_NO_CERTIFICATE: 'Connect with a client certificate (an X.509-SVID).',
  AUTH_ERR_PEER_UNAUTHORIZED: 'Add the peer ID to the allow-list of this route or client, if it should be allowed.',

  // Identity sources
  AUTH_ERR_SOURCE_NOT_READY: "Await source.ready() before serving, or check the source's loadError events.",
  AUTH_ERR_SOURCE_CLOSED: 'The identity source was closed; create a new one.',
  AUTH_ERR_FILE_UNREADABLE: 'Check that the named file exists and that this process may read it.',

  // Workload API (src/workloadapi)
  AUTH_ERR_WORKLOAD_ENDPOINT_INVALID:
    'Set the address (or SPIFFE_ENDPOINT_SOCKET) to unix:///absolute/path/to/agent.sock or tcp://<IP address>:<port>.',
  AUTH_ERR_WORKLOAD_ENDPOINT_MISSING:
    'Pass the Workload API address or set SPIFFE_ENDPOINT_SOCKET, e.g. unix:///run/spire/agent.sock.',
  AUTH_ERR_WORKLOAD_UNAVAILABLE:
    'Check that the SPIRE agent is running and that its socket is mounted into this container at the configured path; the client keeps retrying.',
  AUTH_ERR_WORKLOAD_PERMISSION_DENIED:
    'Create a SPIRE registration entry whose selectors match this workload (e.g. k8s:sa, k8s:ns, unix:uid), or fix the selectors of the existing one; the client keeps retrying.',
  AUTH_ERR_WORKLOAD_INVALID_REQUEST:
    'The Workload API refused the request as malformed: check the arguments named in the message (audience, token); the call is not retried.',
  AUTH_ERR_WORKLOAD_RESPONSE_INVALID:
    'The Workload API sent an update that cannot be used and it was dropped; the last good one stays in use. Check the SPIRE agent logs and version.',
  AUTH_ERR_WORKLOAD_TIMEOUT:
    'Nothing usable arrived in time; the message says what was last seen. Fix that (agent down, no registration entry) or raise timeoutMs.',
  AUTH_ERR_WORKLOAD_CALL_FAILED: 'Check the SPIRE agent logs for the named method and status.',
  AUTH_ERR_WORKLOAD_CLOSED: 'The Workload API client was closed or the call was aborted; create a new client.',

  // JWT-SVIDs (src/svid/jwt-svid.ts)
  AUTH_ERR_JWT_SVID_INVALID:
    'Send a JWS compact JWT whose header has only alg, kid and typ ("JWT" or "JOSE"), and whose claims have "sub" (a SPIFFE ID with a path), "aud" and "exp".',
  AUTH_ERR_JWT_SVID_UNTRUSTED:
    "Sign with RS/ES/PS 256/384/512 using a key in the JWT bundle of the subject's own trust domain, or add (federate) that bundle here.",
  AUTH_ERR_JWT_SVID_EXPIRED:
    'Fetch a fresh JWT-SVID; this one is expired or not yet valid (check the clocks of both hosts).',
  AUTH_ERR_JWT_SVID_AUDIENCE_MISMATCH:
    'Fetch the JWT-SVID for the audience this validator expects (the message names both), or add that audience here.',

  // Adapters (src/adapters, src/tls)
  AUTH_ERR_TLS_HANDSHAKE: 'The client could not complete a TLS 1.3 handshake; check its TLS version and certificate.',
  AUTH_ERR_TLS_CONNECT:
    'Check that the server is up on that address and speaks TLS 1.3 with a client certificate request.',

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
