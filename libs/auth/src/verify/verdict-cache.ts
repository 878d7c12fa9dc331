import { X509BundleSet, type X509BundleSource } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import { verifyX509Svid, type VerifiedPeer, type VerifyX509SvidOptions } from './x509-verify.ts';

/** DEFAULT_VERDICT_CACHE_SIZE is the number of verdicts a VerdictCache keeps unless told otherwise. */
export const DEFAULT_VERDICT_CACHE_SIZE = 1024;

/** VerdictCacheOptions configure a VerdictCache. */
export interface VerdictCacheOptions {
  /** maxEntries bounds the cache; the least recently used verdict goes first. 0 turns caching off. Default: 1024. */
  maxEntries?: number;
}

/** VerdictCacheStats count what a VerdictCache did since it was made. */
export interface VerdictCacheStats {
  /** hits are verifications answered from the cache. */
  hits: number;
  /** misses are verifications that ran in full (a first sight, a changed bundle, an expired verdict, a failure). */
  misses: number;
  /** evictions are verdicts dropped to stay within maxEntries. */
  evictions: number;
  /** size is the number of verdicts held now. */
  size: number;
  maxEntries: number;
}

interface Verdict {
  peer: VerifiedPeer;
  generation: number;
  /** notBefore / notAfter bound the verdict: the latest notBefore and the earliest notAfter of the verified path (ms). */
  notBefore: number;
  notAfter: number;
}

/**
 * VerdictCache remembers successful X.509-SVID verifications: the verified
 * peer of a chain (its exact DER bytes) for a peer role, as
 * judged against one generation of the bundles. A verdict serves until the
 * bundles change (a new X509BundleSet, hence a new generation) or until the
 * earliest notAfter of the verified path, the trust anchor included; after
 * that the chain is verified in full again. Failures are never cached: a
 * refused chain is checked again on every connection, and the cache only
 * ever holds chains that reached one of our trust anchors.
 *
 * Only path building and verification are cached. Authorization (the allow
 * rule) is the caller's and runs on every connection and request.
 */
export class VerdictCache {
  readonly maxEntries: number;
  // A Map keeps insertion order, which is the LRU order when a hit is moved to
  // the end. Not lru-cache: its TTLs run on a monotonic clock, while a
  // verdict ends at a certificate's wall-clock notAfter, judged at the same
  // `now` as the verification itself (tests move it).
  readonly #verdicts = new Map<string, Verdict>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(options: VerdictCacheOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_VERDICT_CACHE_SIZE;
    if (!Number.isInteger(max) || max < 0) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `VerdictCache: maxEntries must be a non-negative integer, got ${String(max)}`,
      );
    }
    this.maxEntries = max;
  }

  /**
   * verify returns the verified peer of `chain` (leaf first, DER) as
   * verifyX509Svid would, from the cache when this chain was verified for
   * the same role against the same generation of `bundles` and the verdict
   * still holds at `options.now`. Bundle sources other than an
   * X509BundleSet (which is immutable) are verified in full every time.
   * Throws what verifyX509Svid throws.
   */
  verify(chain: readonly Uint8Array[], bundles: X509BundleSource, options: VerifyX509SvidOptions): VerifiedPeer {
    const cached = this.lookup(chain, bundles, options);
    if (cached !== undefined) return cached;
    return this.#verifyAndKeep(chain, bundles, options);
  }

  /**
   * lookup returns the cached verdict of `chain` if there is one that holds
   * (counted as a hit), or undefined (not counted: the caller goes on to
   * `verify`, the same chain or a longer one, which counts the miss).
   */
  lookup(
    chain: readonly Uint8Array[],
    bundles: X509BundleSource,
    options: VerifyX509SvidOptions,
  ): VerifiedPeer | undefined {
    if (this.maxEntries === 0 || !(bundles instanceof X509BundleSet) || chain.length === 0) return undefined;
    const key = chainKey(chain, options.peerRole);
    const hit = this.#verdicts.get(key);
    if (hit === undefined) return undefined;
    const at = (options.now ?? new Date()).getTime();
    this.#verdicts.delete(key);
    if (hit.generation !== bundles.generation || at < hit.notBefore || at > hit.notAfter) return undefined;
    this.#verdicts.set(key, hit);
    this.#hits++;
    return hit.peer;
  }

  #verifyAndKeep(
    chain: readonly Uint8Array[],
    bundles: X509BundleSource,
    options: VerifyX509SvidOptions,
  ): VerifiedPeer {
    this.#misses++;
    if (this.maxEntries === 0 || !(bundles instanceof X509BundleSet) || chain.length === 0) {
      return verifyX509Svid(chain, bundles, options);
    }
    const now = options.now ?? new Date();
    const peer = verifyX509Svid(chain, bundles, { ...options, now });
    let notBefore = Number.NEGATIVE_INFINITY;
    let notAfter = Number.POSITIVE_INFINITY;
    for (const c of peer.chain) {
      notBefore = Math.max(notBefore, c.validFromDate.getTime());
      notAfter = Math.min(notAfter, c.validToDate.getTime());
    }
    Object.freeze(peer.chain);
    this.#verdicts.set(chainKey(chain, options.peerRole), {
      peer: Object.freeze(peer),
      generation: bundles.generation,
      notBefore,
      notAfter,
    });
    if (this.#verdicts.size > this.maxEntries) {
      const oldest = this.#verdicts.keys().next();
      if (!oldest.done) {
        this.#verdicts.delete(oldest.value);
        this.#evictions++;
      }
    }
    return peer;
  }

  /** stats returns the counters and the current size. */
  stats(): VerdictCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      size: this.#verdicts.size,
      maxEntries: this.maxEntries,
    };
  }

  /** clear drops every verdict (the counters stay). */
  clear(): void {
    this.#verdicts.clear();
  }
}

// The key is the chain's bytes themselves (as a latin1 string, one byte per
// char): building it and looking it up costs well under a microsecond, a
// SHA-256 of the same bytes about 20 times more, and the bound keeps the
// memory small (a P-256 SVID is under 1 KiB). The role is part of the key
// (the extended key usage is judged per role); the lengths keep [A, B]
// apart from [AB].
function chainKey(chain: readonly Uint8Array[], role: string): string {
  let key = role;
  for (const c of chain) key += `:${c.byteLength}`;
  key += '|';
  for (const c of chain) key += Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1');
  return key;
}
