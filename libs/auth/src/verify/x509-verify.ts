import type { X509Certificate } from 'node:crypto';
import type { X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import type { SpiffeId } from '../spiffeid/spiffe-id.ts';
import { spiffeIdOfLeaf } from '../svid/x509-svid.ts';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.ts';

// Bounds path building against hostile chains; SPIRE chains are 1–3 long.
const MAX_CHAIN_LENGTH = 8;

/** PeerRole is the part the verified peer plays in the TLS connection: the side that sent the certificate. */
export type PeerRole = 'client' | 'server';

/** VerifyX509SvidOptions say how verifyX509Svid judges a chain. */
export interface VerifyX509SvidOptions {
  /**
   * peerRole is the peer's part in the connection: a `'client'` certificate
   * must allow TLS client authentication (clientAuth), a `'server'` one TLS
   * server authentication (serverAuth), wherever the chain restricts its
   * extended key usage. The caller knows which side it is on; it is never
   * guessed from the certificate.
   */
  peerRole: PeerRole;
  /** now is the time validity is judged at. Default: the current time. */
  now?: Date;
}

// Extended key usage purposes, RFC 5280 §4.2.1.12.
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';
const PURPOSE: Record<PeerRole, { oid: string; name: string }> = {
  client: { oid: '1.3.6.1.5.5.7.3.2', name: 'clientAuth' },
  server: { oid: '1.3.6.1.5.5.7.3.1', name: 'serverAuth' },
};
const PURPOSE_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  [ANY_EXTENDED_KEY_USAGE]: 'anyExtendedKeyUsage',
};

/**
 * purposeProblem says why `cert` may not be used by a TLS peer in `role`, or
 * returns undefined when it may: no extended key usage extension (no
 * restriction; X.509-SVID §4.4 lets it be absent), or one that lists the
 * role's purpose or anyExtendedKeyUsage (RFC 5280 §4.2.1.12).
 */
function purposeProblem(cert: ParsedCertificate, role: PeerRole | undefined, what: string): string | undefined {
  const eku = cert.extKeyUsage;
  if (eku === undefined || role === undefined) return undefined;
  const want = PURPOSE[role];
  if (eku.includes(want.oid) || eku.includes(ANY_EXTENDED_KEY_USAGE)) return undefined;
  const listed = eku.map((oid) => PURPOSE_NAMES[oid] ?? oid).join(', ');
  return `${what} has extended key usage [${listed}], which lacks ${want.name}, so it may not act as a TLS ${role}`;
}

/** VerifiedPeer is what a successful X.509-SVID verification proves about a peer. */
export interface VerifiedPeer {
  /** id is the peer's SPIFFE ID. */
  id: SpiffeId;
  /** certificate is the peer's leaf certificate. */
  certificate: X509Certificate;
  /** chain is the verified path, leaf first, ending with the trust anchor from the peer's trust-domain bundle. */
  chain: X509Certificate[];
}

function rejected(message: string, cause?: unknown): AuthError {
  return new AuthError('AUTH_ERR_PEER_UNVERIFIED', message, cause === undefined ? undefined : { cause });
}

function checkValidity(cert: ParsedCertificate, what: string, now: Date): void {
  if (now < cert.notBefore) throw rejected(`${what} is not valid before ${cert.notBefore.toISOString()}`);
  if (now > cert.notAfter) throw rejected(`${what} expired at ${cert.notAfter.toISOString()}`);
}

function issuedBy(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  return child.x509.checkIssued(parent.x509) && child.x509.verify(parent.x509.publicKey);
}

/**
 * verifyX509Svid verifies a peer's certificate chain (leaf first, as sent on
 * the wire) as an X.509-SVID, per the X.509-SVID standard §5: the leaf must be
 * a valid SVID, and must chain to an authority of the bundle of *its own*
 * trust domain, taken from `bundles`. Authorities of other trust domains are
 * never considered, so a leaf claiming trust domain B that chains only to A's
 * CA is rejected. Every certificate of the path, the trust anchor included,
 * must allow the purpose of `options.peerRole` where it has an extended key
 * usage extension (as OpenSSL and Go's crypto/x509 check it).
 *
 * Path validation is written here rather than delegated to OpenSSL because
 * Node exposes no per-handshake trust store: OpenSSL would verify against one
 * pooled CA list, which is exactly what SPIFFE forbids. Signatures are still
 * checked by OpenSSL (X509Certificate#verify).
 */
export function verifyX509Svid(
  chain: readonly Uint8Array[],
  bundles: X509BundleSource,
  options: VerifyX509SvidOptions,
): VerifiedPeer {
  // Checked at run time too: a JavaScript caller of the older (chain, bundles,
  // now) form must fail loudly, not have the purpose check silently skipped.
  const role = (options as Partial<VerifyX509SvidOptions> | undefined)?.peerRole;
  if (role !== 'client' && role !== 'server') {
    throw new AuthError(
      'AUTH_ERR_CONFIG_INVALID',
      `verifyX509Svid: options.peerRole must be "client" or "server", got ${JSON.stringify(role)}`,
    );
  }
  const now = options.now ?? new Date();
  if (chain.length === 0) {
    throw new AuthError('AUTH_ERR_PEER_NO_CERTIFICATE', 'peer presented no certificate');
  }
  if (chain.length > MAX_CHAIN_LENGTH)
    throw rejected(`peer chain has ${chain.length} certificates; at most ${MAX_CHAIN_LENGTH} are accepted`);
  let parsed: ParsedCertificate[];
  let id: SpiffeId;
  try {
    parsed = chain.map((c) => parseCertificate(c));
    id = spiffeIdOfLeaf(parsed[0] as ParsedCertificate);
  } catch (cause) {
    throw rejected(`peer certificate is not a valid X.509-SVID: ${(cause as Error).message}`, cause);
  }
  const leaf = parsed[0] as ParsedCertificate;
  let authorities: readonly ParsedCertificate[];
  try {
    const bundle = bundles.getX509BundleForTrustDomain(id.trustDomain);
    authorities = bundle.parsedAuthorities();
  } catch (cause) {
    throw rejected(`peer ${id.toString()}: no X.509 bundle for its trust domain "${id.trustDomain.name}"`, cause);
  }
  try {
    checkValidity(leaf, 'leaf certificate', now);
  } catch (err) {
    throw rejected(`peer ${id.toString()}: ${(err as Error).message}`);
  }
  const path = buildPath(leaf, parsed.slice(1), authorities, now, role);
  if (typeof path === 'string') {
    throw rejected(`peer ${id.toString()}: ${path}`);
  }
  // After the path, so an untrusted leaf is reported as untrusted first.
  const leafPurpose = purposeProblem(leaf, role, 'leaf certificate');
  if (leafPurpose !== undefined) throw rejected(`peer ${id.toString()}: ${leafPurpose}`);
  return { id, certificate: leaf.x509, chain: path.map((c) => c.x509) };
}

/**
 * chainToAuthorities finds the path from the leaf of `chain` (leaf first,
 * DER) through the rest of `chain` to one of `authorities`, with the checks
 * verifyX509Svid makes on every CA of the path and on the leaf's validity,
 * but for no TLS role (the extended key usage is not judged): how a workload
 * checks its own X.509-SVID before using it for both roles. Returns the
 * path, or why there is none.
 */
export function chainToAuthorities(
  chain: readonly Uint8Array[],
  authorities: readonly ParsedCertificate[],
  now: Date,
): ParsedCertificate[] | string {
  const parsed = chain.map((c) => parseCertificate(c));
  const leaf = parsed[0];
  if (leaf === undefined) return 'the chain holds no certificate';
  if (now < leaf.notBefore) return `leaf certificate is not valid before ${leaf.notBefore.toISOString()}`;
  if (now > leaf.notAfter) return `leaf certificate expired at ${leaf.notAfter.toISOString()}`;
  return buildPath(leaf, parsed.slice(1), authorities, now, undefined);
}

/**
 * buildPath searches depth-first for a path from `leaf` through `intermediates`
 * to one of `anchors`, checking every CA on the way (the extended key usage
 * of each for `role`). Returns the path, or the most telling reason no path
 * was found.
 */
function buildPath(
  leaf: ParsedCertificate,
  intermediates: readonly ParsedCertificate[],
  anchors: readonly ParsedCertificate[],
  now: Date,
  role: PeerRole | undefined,
): ParsedCertificate[] | string {
  let reason = 'certificate does not chain to an authority of its trust domain bundle (x509: unknown authority)';
  const visit = (path: ParsedCertificate[]): ParsedCertificate[] | undefined => {
    const child = path[path.length - 1] as ParsedCertificate;
    // Number of CA certificates that will sit between `child` and the leaf,
    // for pathLenConstraint checks.
    const below = path.length - 1;
    const caProblem = (ca: ParsedCertificate, what: string): string | undefined => {
      if (!ca.isCA) return `${what} is not a CA (basicConstraints CA=false)`;
      if (ca.keyUsage.present && !ca.keyUsage.keyCertSign) return `${what} lacks the keyCertSign key usage`;
      if (ca.pathLen !== undefined && below > ca.pathLen) return `${what} pathLenConstraint ${ca.pathLen} is exceeded`;
      if (ca.unknownCriticalExtensions.length > 0) {
        return `${what} has unsupported critical extensions ${ca.unknownCriticalExtensions.join(', ')}`;
      }
      if (now < ca.notBefore || now > ca.notAfter) return `${what} is outside its validity period`;
      return purposeProblem(ca, role, what);
    };
    for (const anchor of anchors) {
      if (!issuedBy(child, anchor)) continue;
      const problem = caProblem(anchor, 'trust anchor');
      if (problem === undefined) return [...path, anchor];
      reason = problem;
    }
    if (path.length >= MAX_CHAIN_LENGTH) return undefined;
    for (const next of intermediates) {
      if (path.includes(next) || !issuedBy(child, next)) continue;
      const problem = caProblem(next, 'intermediate certificate');
      if (problem !== undefined) {
        reason = problem;
        continue;
      }
      const found = visit([...path, next]);
      if (found) return found;
    }
    return undefined;
  };
  return visit([leaf]) ?? reason;
}
