// The span attribute names of @shop/auth: one namespace, listed in
// libs/auth/docs/telemetry.md (a contract: the live console reads them).
import type { Attributes } from '@opentelemetry/api';
import type { TLSSocket } from 'node:tls';
import type { VerifiedPeer } from '../verify/x509-verify.ts';

/** SPAN_ATTRIBUTES are the attribute names @shop/auth puts on spans and resources. */
export const SPAN_ATTRIBUTES = {
  /** selfId is our own SPIFFE ID (server and client spans, and the resource). */
  selfId: 'spiffe.self.id',
  /** peerId is the verified caller's SPIFFE ID (server spans). */
  peerId: 'spiffe.peer.id',
  /** peerTrustDomain is the verified caller's trust domain (server spans). */
  peerTrustDomain: 'spiffe.peer.trust_domain',
  /** peerSerial is the serial number of the caller's leaf, in hex as Node prints it (server spans). */
  peerSerial: 'spiffe.peer.svid.serial',
  /** peerNotAfter is when the caller's leaf expires, ISO 8601 (server spans). */
  peerNotAfter: 'spiffe.peer.svid.not_after',
  /** serverId is the verified server's SPIFFE ID (client spans). */
  serverId: 'spiffe.server.id',
  /** serverTrustDomain is the verified server's trust domain (client spans). */
  serverTrustDomain: 'spiffe.server.trust_domain',
  /** authzRule describes the allow rule that decided (server spans). */
  authzRule: 'spiffe.authz.rule',
  /** authzDecision is "allow" or "deny" (server spans). */
  authzDecision: 'spiffe.authz.decision',
  /** authzReason is the refusal's error code, the one the 401/403 body carries (server spans, on deny). */
  authzReason: 'spiffe.authz.reason',
  /** tlsResumed tells whether the TLS session was resumed. */
  tlsResumed: 'tls.resumed',
  /** tlsGroup is the negotiated key-exchange group (client side only: Node exposes none on server sockets). */
  tlsGroup: 'tls.group',
  /** tlsCipher is the negotiated cipher suite (OpenSSL name). */
  tlsCipher: 'tls.cipher',
  /** tlsProtocolVersion is the TLS version, e.g. "1.3". */
  tlsProtocolVersion: 'tls.protocol.version',
} as const;

const A = SPAN_ATTRIBUTES;

/** HandshakeInfo is what one completed TLS handshake negotiated. */
export interface HandshakeInfo {
  /** side is the end of the connection that reports it. */
  side: 'server' | 'client';
  /** protocol is the TLS version, e.g. "1.3" ("unknown" if Node reports none). */
  protocol: string;
  /** cipher is the OpenSSL name of the cipher suite ("unknown" if none). */
  cipher: string;
  /**
   * group is the key-exchange group (e.g. "X25519MLKEM768", "X25519"), or
   * null where Node does not say: getEphemeralKeyInfo() answers on client
   * sockets only (null on server sockets).
   */
  group: string | null;
  /** resumed tells whether the session was resumed (no certificate exchanged). */
  resumed: boolean;
}

/** handshakeInfoOf reads what the handshake of `socket` negotiated. */
export function handshakeInfoOf(socket: TLSSocket, side: HandshakeInfo['side']): HandshakeInfo {
  const protocol = socket.getProtocol();
  // Node's types say never null, but a socket already torn down has no cipher.
  const cipher = socket.getCipher() as ReturnType<TLSSocket['getCipher']> | null;
  const key = side === 'client' ? socket.getEphemeralKeyInfo() : null;
  const name = key && 'name' in key && typeof key.name === 'string' ? key.name : null;
  return {
    side,
    protocol: protocol ? protocol.replace(/^TLSv/, '') : 'unknown',
    cipher: cipher?.name ?? 'unknown',
    group: name,
    resumed: socket.isSessionReused(),
  };
}

/** tlsAttributes are a handshake's span attributes. */
export function tlsAttributes(info: HandshakeInfo): Attributes {
  return {
    [A.tlsResumed]: info.resumed,
    [A.tlsCipher]: info.cipher,
    [A.tlsProtocolVersion]: info.protocol,
    ...(info.group === null ? {} : { [A.tlsGroup]: info.group }),
  };
}

/** peerAttributes are a verified caller's span attributes (server spans). */
export function peerAttributes(peer: VerifiedPeer): Attributes {
  return {
    [A.peerId]: peer.id.toString(),
    [A.peerTrustDomain]: peer.id.trustDomain.name,
    [A.peerSerial]: peer.certificate.serialNumber,
    [A.peerNotAfter]: peer.certificate.validToDate.toISOString(),
  };
}

/** serverAttributes are a verified server's span attributes (client spans). */
export function serverAttributes(peer: VerifiedPeer): Attributes {
  return { [A.serverId]: peer.id.toString(), [A.serverTrustDomain]: peer.id.trustDomain.name };
}
