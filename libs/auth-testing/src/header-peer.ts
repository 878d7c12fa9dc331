import { AuthError, SpiffeId, type X509Svid, type PeerResult } from '@shop/auth';
import type { TestTrustDomain } from './test-ca.ts';

/** TEST_PEER_HEADER carries the caller's SPIFFE ID in `inject()` tests. */
export const TEST_PEER_HEADER = 'x-test-peer';

/**
 * createHeaderPeerResolver returns a `resolvePeer` for the fastify plugin in
 * `app.inject()` tests, which have no TLS socket: the caller is the SPIFFE ID
 * in the `x-test-peer` header, backed by a real SVID issued for each of
 * `paths`. An ID not in `paths` is unverified (401), no header is no
 * certificate (401). Test-only: production never sets `resolvePeer`.
 */
export async function createHeaderPeerResolver(
  td: TestTrustDomain,
  paths: string[],
): Promise<(req: { headers: Record<string, unknown> }) => PeerResult> {
  const svids = new Map<string, X509Svid>();
  for (const p of paths) svids.set(`spiffe://${td.name}${p}`, await td.svid(p));
  return (req) => {
    const id = req.headers[TEST_PEER_HEADER];
    if (typeof id !== 'string') {
      return { ok: false, error: new AuthError('AUTH_ERR_PEER_NO_CERTIFICATE', 'peer presented no certificate') };
    }
    const svid = svids.get(id);
    if (!svid) return { ok: false, error: new AuthError('AUTH_ERR_PEER_UNVERIFIED', `test peer ${id} has no SVID`) };
    return { ok: true, peer: { id: SpiffeId.parse(id), certificate: svid.leaf, chain: [...svid.certificates] } };
  };
}
