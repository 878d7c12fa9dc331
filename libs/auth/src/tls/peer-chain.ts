import type { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * peerChainFromCertificate returns the DER chain a peer presented, leaf first,
 * from Node's detailed certificate object (issuerCertificate links; a
 * self-signed certificate links to itself).
 */
export function peerChainFromCertificate(cert: DetailedPeerCertificate | undefined): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  let cur: DetailedPeerCertificate | undefined = cert;
  while (cur?.raw && !seen.has(cur)) {
    seen.add(cur);
    chain.push(cur.raw);
    const next: DetailedPeerCertificate | undefined = cur.issuerCertificate;
    if (next === cur) break;
    cur = next;
  }
  return chain;
}

/** peerChainFromSocket returns the DER chain the peer of `socket` presented, leaf first (empty if none). */
export function peerChainFromSocket(socket: TLSSocket): Buffer[] {
  // Node returns an empty object, not null, when the peer sent no certificate.
  const cert = socket.getPeerCertificate(true) as Partial<DetailedPeerCertificate>;
  if (!cert.raw) return [];
  return peerChainFromCertificate(cert as DetailedPeerCertificate);
}

/**
 * peerChainFromX509 returns the DER chain of a peer certificate from Node's
 * X509Certificate and its `issuerCertificate` links, leaf first.
 */
export function peerChainFromX509(leaf: X509Certificate | undefined): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<X509Certificate>();
  let cur = leaf;
  while (cur !== undefined && !seen.has(cur)) {
    seen.add(cur);
    chain.push(cur.raw);
    cur = cur.issuerCertificate;
  }
  return chain;
}

/**
 * clientChainOf reads the chain a client presented to our server, leaf
 * first, from `getPeerX509Certificate()` and its issuer links: about a
 * fifth of the cost of `getPeerCertificate(true)`, which prints names and
 * fingerprints into a JavaScript object per certificate. Node (24.21)
 * links the chain this way on the first call only (later calls, and
 * getPeerCertificate(true), see the leaf alone), so a socket's chain is
 * read once and kept by the caller (ConnectionVerifier).
 */
export function clientChainOf(socket: TLSSocket): Buffer[] {
  return peerChainFromX509(socket.getPeerX509Certificate());
}
