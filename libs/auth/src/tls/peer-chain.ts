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
