import type { X509Certificate } from 'node:crypto';
import { AuthError } from '../errors.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.ts';
import { encodePem, pemBlocksOfType, splitDerSequence } from '../x509/pem.ts';

/** X509Bundle is the set of X.509 authorities (trust anchors) of one trust domain. */
export class X509Bundle {
  /** trustDomain is the trust domain these authorities speak for. */
  readonly trustDomain: TrustDomain;
  readonly #authorities: readonly ParsedCertificate[];

  constructor(trustDomain: TrustDomain | string, authorities: readonly Uint8Array[]) {
    this.trustDomain = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
    const seen = new Set<string>();
    const parsed: ParsedCertificate[] = [];
    for (const der of authorities) {
      const cert = parseCertificate(der);
      const k = cert.der.toString('base64');
      if (!seen.has(k)) {
        seen.add(k);
        parsed.push(cert);
      }
    }
    this.#authorities = parsed;
  }

  /** fromDer parses concatenated DER certificates, as the Workload API sends bundles. */
  static fromDer(trustDomain: TrustDomain | string, der: Uint8Array): X509Bundle {
    return new X509Bundle(trustDomain, splitDerSequence(der, 'X.509 bundle'));
  }

  /** fromPem parses PEM CA certificates, as a `TLS_CA_FILE` holds them. */
  static fromPem(trustDomain: TrustDomain | string, pem: string): X509Bundle {
    return new X509Bundle(trustDomain, pemBlocksOfType(pem, 'CERTIFICATE', 'CA bundle'));
  }

  /** authorities returns the trust anchors. */
  get authorities(): readonly X509Certificate[] {
    return this.#authorities.map((a) => a.x509);
  }

  /** parsedAuthorities returns the trust anchors with their decoded extensions. */
  parsedAuthorities(): readonly ParsedCertificate[] {
    return this.#authorities;
  }

  /** isEmpty is true when the bundle trusts nothing. */
  get isEmpty(): boolean {
    return this.#authorities.length === 0;
  }

  /** toPem returns the authorities as PEM (for tools that need a CA file). */
  toPem(): string {
    return this.#authorities.map((a) => encodePem('CERTIFICATE', a.der)).join('');
  }

  /** toDer returns the authorities as concatenated DER (the Workload API's encoding). */
  toDer(): Buffer {
    return Buffer.concat(this.#authorities.map((a) => a.der));
  }

  /** equals tells whether two bundles hold the same trust domain and authorities. */
  equals(other: X509Bundle): boolean {
    return this.trustDomain.equals(other.trustDomain) && this.toDer().equals(other.toDer());
  }
}

// Every set gets the next number: sets are immutable, so a new number is a new
// content (or the same content republished) and an old one never comes back.
let lastGeneration = 0;

/**
 * X509BundleSet holds one bundle per trust domain: our own and federated ones.
 * Verification always picks the bundle of the peer's own trust domain from it;
 * there is deliberately no way to get a pooled list of all authorities.
 */
export class X509BundleSet {
  /**
   * generation numbers this set among all sets built in the process, in
   * order of construction: a source that publishes new bundles publishes a
   * new set, hence a new generation. Verdicts remember the generation they
   * were checked against (see VerdictCache).
   */
  readonly generation: number = ++lastGeneration;
  readonly #bundles: ReadonlyMap<string, X509Bundle>;

  constructor(bundles: Iterable<X509Bundle> = []) {
    const map = new Map<string, X509Bundle>();
    for (const b of bundles) {
      if (map.has(b.trustDomain.name)) {
        throw new AuthError('AUTH_ERR_BUNDLE_INVALID', `two bundles given for trust domain ${b.trustDomain.name}`);
      }
      map.set(b.trustDomain.name, b);
    }
    this.#bundles = map;
  }

  /** get returns the bundle of `trustDomain`, or undefined. */
  get(trustDomain: TrustDomain | string): X509Bundle | undefined {
    return this.#bundles.get(typeof trustDomain === 'string' ? trustDomain : trustDomain.name);
  }

  /** getX509BundleForTrustDomain returns the bundle of `trustDomain` or fails with AUTH_ERR_BUNDLE_NOT_FOUND. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle {
    const b = this.get(trustDomain);
    if (!b) {
      throw new AuthError('AUTH_ERR_BUNDLE_NOT_FOUND', `no X.509 bundle for trust domain "${trustDomain.name}"`);
    }
    return b;
  }

  /** trustDomains lists the trust domains with a bundle, sorted. */
  trustDomains(): TrustDomain[] {
    return [...this.#bundles.values()].map((b) => b.trustDomain).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** bundles lists the bundles, sorted by trust domain. */
  bundles(): X509Bundle[] {
    return [...this.#bundles.values()].sort((a, b) => a.trustDomain.name.localeCompare(b.trustDomain.name));
  }

  /** size is the number of trust domains. */
  get size(): number {
    return this.#bundles.size;
  }

  /** getX509Bundles returns this set, so a fixed set is an X509BundleSetSource too. */
  getX509Bundles(): this {
    return this;
  }

  /** with returns a copy with `bundle` added or replacing the one of its trust domain. */
  with(bundle: X509Bundle): X509BundleSet {
    const next = new Map(this.#bundles);
    next.set(bundle.trustDomain.name, bundle);
    return new X509BundleSet(next.values());
  }
}

/** X509BundleSource gives the bundle for a trust domain; X509BundleSet and identity sources implement it. */
export interface X509BundleSource {
  /** getX509BundleForTrustDomain returns the trust domain's bundle or throws AUTH_ERR_BUNDLE_NOT_FOUND. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle;
}

/**
 * X509BundleSetSource gives every bundle we trust now, one per trust domain
 * (ours and federated ones). It is the bundle source the TLS builders take:
 * verification still picks the bundle of the peer's own trust domain from
 * the set, but grpc-js needs all of them for its first OpenSSL filter, and a
 * new set object is how a verifier knows the bundles changed. X509BundleSet
 * and every identity source implement it.
 */
export interface X509BundleSetSource {
  /** getX509Bundles returns the current bundles, or throws AUTH_ERR_SOURCE_NOT_READY before the first ones. */
  getX509Bundles(): X509BundleSet;
}
