import type { JsonWebKey, KeyObject } from 'node:crypto';
import { AuthError } from '../errors.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';
import { parseSpiffeBundleJson } from './spiffe-bundle.ts';

/** JwtAuthority is one JWT signing key of a trust domain. */
export interface JwtAuthority {
  keyId: string;
  publicKey: KeyObject;
  jwk: JsonWebKey;
}

/** JwtBundle is the set of JWT authorities (public keys by key ID) of one trust domain. */
export class JwtBundle {
  /** trustDomain is the trust domain these keys speak for. */
  readonly trustDomain: TrustDomain;
  readonly #authorities: ReadonlyMap<string, JwtAuthority>;

  constructor(trustDomain: TrustDomain | string, authorities: Iterable<JwtAuthority> = []) {
    this.trustDomain = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
    const map = new Map<string, JwtAuthority>();
    for (const a of authorities) map.set(a.keyId, a);
    this.#authorities = map;
  }

  /**
   * parse reads a JWKS document (SPIFFE bundle JSON, as FetchJWTBundles sends
   * it). Keys whose `use` is not `jwt-svid` are ignored, and so are the entries
   * parseSpiffeBundleJson ignores; call that to see its warnings.
   */
  static parse(trustDomain: TrustDomain | string, json: string | Uint8Array): JwtBundle {
    const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
    return parseSpiffeBundleJson(td, json).jwtBundle;
  }

  /** findAuthority returns the key with `keyId`, or undefined. */
  findAuthority(keyId: string): JwtAuthority | undefined {
    return this.#authorities.get(keyId);
  }

  /** authorities lists the keys. */
  authorities(): JwtAuthority[] {
    return [...this.#authorities.values()];
  }

  /** isEmpty is true when the bundle holds no keys. */
  get isEmpty(): boolean {
    return this.#authorities.size === 0;
  }
}

/** JwtBundleSet holds one JWT bundle per trust domain. */
export class JwtBundleSet {
  readonly #bundles: ReadonlyMap<string, JwtBundle>;

  constructor(bundles: Iterable<JwtBundle> = []) {
    const map = new Map<string, JwtBundle>();
    for (const b of bundles) map.set(b.trustDomain.name, b);
    this.#bundles = map;
  }

  /** get returns the bundle of `trustDomain`, or undefined. */
  get(trustDomain: TrustDomain | string): JwtBundle | undefined {
    return this.#bundles.get(typeof trustDomain === 'string' ? trustDomain : trustDomain.name);
  }

  /** getJwtBundleForTrustDomain returns the bundle of `trustDomain` or fails with AUTH_ERR_BUNDLE_NOT_FOUND. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle {
    const b = this.get(trustDomain);
    if (!b) throw new AuthError('AUTH_ERR_BUNDLE_NOT_FOUND', `no JWT bundle for trust domain "${trustDomain.name}"`);
    return b;
  }

  /** bundles lists the bundles, sorted by trust domain. */
  bundles(): JwtBundle[] {
    return [...this.#bundles.values()].sort((a, b) => a.trustDomain.name.localeCompare(b.trustDomain.name));
  }
}

/** JwtBundleSource gives the JWT bundle for a trust domain. */
export interface JwtBundleSource {
  /** getJwtBundleForTrustDomain returns the trust domain's JWT bundle or throws AUTH_ERR_BUNDLE_NOT_FOUND. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle;
}
