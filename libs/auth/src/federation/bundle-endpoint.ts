import type { X509Bundle, X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';

/**
 * HttpsWebProfile authenticates a bundle endpoint with Web PKI (SPIFFE
 * Federation §5.2.1): ordinary TLS server verification, host name included.
 */
export interface HttpsWebProfile {
  type: 'https_web';
  /** ca is the PEM CA certificates to trust instead of Node's default roots (a private CA, tests). Default: Node's default roots. */
  ca?: string | Buffer | readonly (string | Buffer)[];
}

/**
 * HttpsSpiffeProfile authenticates a bundle endpoint by its X.509-SVID
 * (SPIFFE Federation §5.2.2): the server must present a valid X.509-SVID
 * whose SPIFFE ID is `endpointSpiffeId`.
 */
export interface HttpsSpiffeProfile {
  type: 'https_spiffe';
  /** endpointSpiffeId is the SPIFFE ID the endpoint's server must present. */
  endpointSpiffeId: string | SpiffeId;
  /**
   * bundle bootstraps a self-serving endpoint (one whose ID is in the trust
   * domain it serves): the bundle of that trust domain, obtained out of band,
   * used until the first fetch succeeds; from then on the last fetched bundle
   * verifies the endpoint (§5.2.2.4). Default: none (then `bundleSource` must be given).
   */
  bundle?: X509Bundle;
  /**
   * bundleSource gives the bundle of the endpoint's trust domain when the
   * endpoint is not self-serving (e.g. our own identity source, when our
   * trust domain serves the bundle of another), looked up on every
   * connection. Default: none.
   */
  bundleSource?: X509BundleSource;
}

/** BundleEndpointProfile is how a bundle endpoint is authenticated. */
export type BundleEndpointProfile = HttpsWebProfile | HttpsSpiffeProfile;

/**
 * BundleEndpointConfig names one federation relationship: the three
 * parameters every bundle endpoint client must be configured with (SPIFFE
 * Federation §5.1). None of them is inferred from another (§7.2).
 */
export interface BundleEndpointConfig {
  /** trustDomain is the trust domain whose bundle the endpoint serves. */
  trustDomain: string | TrustDomain;
  /** url is the endpoint's https URL (no user info). */
  url: string;
  /** profile says how the endpoint is authenticated. */
  profile: BundleEndpointProfile;
}

/** ResolvedBundleEndpoint is a BundleEndpointConfig checked and parsed once. */
export interface ResolvedBundleEndpoint {
  trustDomain: TrustDomain;
  url: URL;
  profile: HttpsWebProfile | (Omit<HttpsSpiffeProfile, 'endpointSpiffeId'> & { endpointSpiffeId: SpiffeId });
  /** selfServing: https_spiffe with an endpoint ID in the trust domain it serves. */
  selfServing: boolean;
}

function invalid(msg: string): AuthError {
  return new AuthError('AUTH_ERR_CONFIG_INVALID', msg);
}

/**
 * checkEndpointUrl parses a bundle endpoint URL: the scheme must be https and
 * there must be no user info (§5.2.1.1, §5.2.2.1). `what` names it in errors.
 */
export function checkEndpointUrl(input: string | URL, what = 'bundle endpoint URL'): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw invalid(`${what} ${JSON.stringify(String(input))} must be an absolute URL`);
  }
  if (url.protocol !== 'https:') {
    throw invalid(`${what} ${url.href} must have the scheme "https" (SPIFFE Federation §5.2.1.1, §5.2.2.1)`);
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid(`${what} must not include user info (SPIFFE Federation §5.2.1.1, §5.2.2.1)`);
  }
  return url;
}

/** resolveBundleEndpoint checks a BundleEndpointConfig and parses its names once. */
export function resolveBundleEndpoint(c: BundleEndpointConfig): ResolvedBundleEndpoint {
  const trustDomain = typeof c.trustDomain === 'string' ? TrustDomain.parse(c.trustDomain) : c.trustDomain;
  const url = checkEndpointUrl(c.url, `bundle endpoint URL of ${trustDomain.name}`);
  const p = c.profile as Partial<BundleEndpointProfile> | undefined;
  if (p?.type === 'https_web') return { trustDomain, url, profile: p as HttpsWebProfile, selfServing: false };
  if (p?.type !== 'https_spiffe') {
    throw invalid(
      `bundle endpoint profile of ${trustDomain.name} must be "https_web" or "https_spiffe" (got ${JSON.stringify(p?.type)})`,
    );
  }
  const spiffe = p as HttpsSpiffeProfile;
  const givenId: unknown = spiffe.endpointSpiffeId;
  if (givenId === undefined) {
    throw invalid(
      `https_spiffe bundle endpoint of ${trustDomain.name} needs endpointSpiffeId (SPIFFE Federation §5.2.2.2)`,
    );
  }
  const endpointSpiffeId =
    typeof spiffe.endpointSpiffeId === 'string' ? SpiffeId.parse(spiffe.endpointSpiffeId) : spiffe.endpointSpiffeId;
  const selfServing = endpointSpiffeId.trustDomain.equals(trustDomain);
  if (spiffe.bundle !== undefined && !spiffe.bundle.trustDomain.equals(endpointSpiffeId.trustDomain)) {
    throw invalid(
      `https_spiffe bundle endpoint of ${trustDomain.name}: the bootstrap bundle is for ${spiffe.bundle.trustDomain.name}, but the endpoint ID ${endpointSpiffeId.toString()} is in ${endpointSpiffeId.trustDomain.name}`,
    );
  }
  if (spiffe.bundle === undefined && spiffe.bundleSource === undefined) {
    throw invalid(
      `https_spiffe bundle endpoint of ${trustDomain.name} needs the bundle of ${endpointSpiffeId.trustDomain.name} to verify ${endpointSpiffeId.toString()}: give \`bundle\` (obtained out of band) or \`bundleSource\` (SPIFFE Federation §5.2.2.2)`,
    );
  }
  return { trustDomain, url, profile: { ...spiffe, endpointSpiffeId }, selfServing };
}
