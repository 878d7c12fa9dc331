import type { X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import { chainToAuthorities } from '../verify/x509-verify.ts';
import type { X509Svid } from './x509-svid.ts';

/**
 * checkOwnX509Svid checks that `svid` is fit for us to present, before a
 * source puts it in use: it is valid now (else AUTH_ERR_SVID_EXPIRED), and
 * its chain verifies against the bundle of its own trust domain taken from
 * `bundles` — the bundle that came with it (else AUTH_ERR_SVID_UNTRUSTED).
 * The other rules are already held by every X509Svid object: the SPIFFE leaf
 * rules (X509-SVID §4, §5.2) and a private key that matches the leaf. The
 * extended key usage is not judged here, since our SVID serves both TLS
 * roles; each peer judges it for the role we play. `where` names the input
 * in messages, e.g. a file path or "the Workload API".
 */
export function checkOwnX509Svid(svid: X509Svid, bundles: X509BundleSource, where: string, now = new Date()): void {
  const id = svid.id.toString();
  if (now < svid.notBefore || now > svid.expiresAt) {
    throw new AuthError(
      'AUTH_ERR_SVID_EXPIRED',
      `X.509-SVID ${id} from ${where} is valid only from ${svid.notBefore.toISOString()} to ${svid.expiresAt.toISOString()} (now ${now.toISOString()})`,
    );
  }
  const td = svid.id.trustDomain;
  let authorities;
  try {
    authorities = bundles.getX509BundleForTrustDomain(td).parsedAuthorities();
  } catch (cause) {
    throw new AuthError(
      'AUTH_ERR_SVID_UNTRUSTED',
      `X.509-SVID ${id} from ${where} comes with no bundle for its own trust domain "${td.name}", so it cannot be verified`,
      { cause },
    );
  }
  const path = chainToAuthorities(svid.chainDer(), authorities, now);
  if (typeof path === 'string') {
    throw new AuthError(
      'AUTH_ERR_SVID_UNTRUSTED',
      `X.509-SVID ${id} from ${where} does not verify against the bundle of its own trust domain "${td.name}" (${String(authorities.length)} authorities): ${path}`,
    );
  }
}
