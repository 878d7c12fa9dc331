// The pieces of an audit line the mTLS server core writes for both transports.
import type { TLSSocket } from 'node:tls';
import { peerChainFromSocket } from '../tls/peer-chain.ts';
import { parseCertificate } from '../x509/certificate.ts';

/** AuditLevel is a pino level an audit line can be written at. */
export type AuditLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** AuditLogger is the part of a pino logger audit lines and handshake warnings are written to. */
export type AuditLogger = { [L in AuditLevel]: (obj: object, msg: string) => void };

// The SPIFFE specification caps an ID at 2048 bytes. A certificate can claim
// anything and the claim is unverified, so the log keeps no more than that.
const CLAIMED_LIMIT = 2048;

/** cutText returns `text`, or its first `limit` characters and "…" when it is longer. */
export function cutText(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

/**
 * claimedIdOf returns the URI SAN of the leaf certificate the peer of
 * `socket` presented, unverified (cut to 2048 characters), or null if it
 * presented none or the leaf cannot be decoded. It says who a refused caller
 * pretended to be: for logs only, never a metric label (the caller picks it).
 */
export function claimedIdOf(socket: TLSSocket): string | null {
  const [leaf] = peerChainFromSocket(socket);
  if (!leaf) return null;
  try {
    const [uri] = parseCertificate(leaf).uriSans;
    return uri === undefined ? null : cutText(uri, CLAIMED_LIMIT);
  } catch {
    return null;
  }
}
