import type { TLSSocket } from 'node:tls';
import type { X509BundleSet, X509BundleSetSource } from '../bundle/x509-bundle.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { VerdictCache } from '../verify/verdict-cache.ts';
import type { VerifiedPeer } from '../verify/x509-verify.ts';
import { clientChainOf } from './peer-chain.ts';

/** PeerResult is the outcome of verifying a connection's peer: a verified peer or why not. */
export type PeerResult = { ok: true; peer: VerifiedPeer } | { ok: false; error: AuthError };

interface CacheEntry {
  /** chain is what the client presented, read from the socket once (see clientChainOf). */
  chain: Buffer[];
  result: PeerResult;
  bundles: X509BundleSet;
  validUntil: number;
}

/**
 * ConnectionVerifier verifies the client of a TLS connection our server
 * accepted (so its SVID must allow clientAuth) against the bundle source's
 * bundles, once per connection, and again whenever the bundles changed or a
 * certificate of the verified chain has expired since: a keep-alive
 * connection does not outlive its peer's SVID or a removed CA. Across
 * connections, the path verification of a chain seen before is answered by
 * `verdicts` (see VerdictCache): a resumed session, or a client that
 * reconnects with the same SVID, costs a lookup.
 */
export class ConnectionVerifier {
  readonly #bundleSource: X509BundleSetSource;
  readonly #cache = new WeakMap<TLSSocket, CacheEntry>();
  /** verdicts is the cache of chain verdicts shared by all connections (its stats count hits and misses). */
  readonly verdicts: VerdictCache;

  constructor(bundleSource: X509BundleSetSource, verdicts: VerdictCache = new VerdictCache()) {
    this.#bundleSource = bundleSource;
    this.verdicts = verdicts;
  }

  /** verify returns the verified peer of `socket`, or the reason it is not verified. */
  verify(socket: TLSSocket): PeerResult {
    const bundles = this.#bundleSource.getX509Bundles();
    const now = Date.now();
    const hit = this.#cache.get(socket);
    if (hit && hit.bundles === bundles && now <= hit.validUntil) return hit.result;
    const chain = hit?.chain ?? clientChainOf(socket);
    let result: PeerResult;
    let validUntil = Number.POSITIVE_INFINITY;
    try {
      const peer = this.verdicts.verify(chain, bundles, { peerRole: 'client', now: new Date(now) });
      for (const c of peer.chain) validUntil = Math.min(validUntil, c.validToDate.getTime());
      result = { ok: true, peer };
    } catch (err) {
      const error = isAuthError(err) ? err : new AuthError('AUTH_ERR_PEER_UNVERIFIED', String(err), { cause: err });
      result = { ok: false, error };
    }
    this.#cache.set(socket, { chain, result, bundles, validUntil });
    return result;
  }
}

/**
 * recycleAt is when a connection should be closed gracefully so that both
 * sides reconnect with their current SVIDs: the half-life of the shorter-lived
 * of the two leaves, when SPIFFE workloads have rotated (SPIRE renews at
 * half-life). A connection made after that point gets half of what is left.
 * Closing there keeps long-lived connections (HTTP/2 above all) from
 * carrying a certificate to its expiry, which the verifier would then refuse.
 */
export function recycleAt(leaves: readonly { validFromDate: Date; validToDate: Date }[], now = Date.now()): number {
  let at = Number.POSITIVE_INFINITY;
  for (const leaf of leaves) {
    const from = leaf.validFromDate.getTime();
    const to = leaf.validToDate.getTime();
    at = Math.min(at, Math.max(from + (to - from) / 2, now + (to - now) / 2));
  }
  return at;
}
