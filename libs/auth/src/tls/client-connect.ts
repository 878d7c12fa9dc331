import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { applyAuthorizer, type Authorizer } from '../authorize/authorizer.ts';
import type { X509BundleSetSource } from '../bundle/x509-bundle.ts';
import { AuthError, isAuthError } from '../errors.ts';
import { resolveSources, type SourceOptions } from '../source/x509-sources.ts';
import type { X509Svid } from '../svid/x509-svid.ts';
import type { VerdictCache } from '../verify/verdict-cache.ts';
import { verifyX509Svid, type VerifiedPeer } from '../verify/x509-verify.ts';
import type { PeerResult } from './connection-verifier.ts';
import { peerChainFromSocket } from './peer-chain.ts';
import { secureContextFor } from './server-options.ts';

/**
 * MtlsConnectOptions describe one mutual-TLS client connection: its sources
 * (`source`, or `svidSource` and `bundleSource`) and the settings below.
 */
export type MtlsConnectOptions = SourceOptions & MtlsConnectSettings;

/** MtlsConnectSettings are the settings of one mutual-TLS client connection besides its sources. */
export interface MtlsConnectSettings {
  host: string;
  port: number;
  /** servername for SNI. Default: `host` when it is a name, none for IP literals. */
  servername?: string;
  /** authorize decides whether the server's SPIFFE ID is the one we meant to call. */
  authorize: Authorizer;
  /** session resumes an earlier TLS session (from `onSession`); the server is verified again all the same. */
  session?: ResumableSession;
  /** ALPNProtocols to offer. Default: none. */
  ALPNProtocols?: string[];
  /** timeoutMs for TCP connect + handshake. Default: 10000. */
  timeoutMs?: number;
  /** socket is an already-connected socket to run TLS over (undici passes one for proxies). */
  socket?: ConnectionOptions['socket'];
  /** onSession receives session tickets for later resumption. */
  onSession?: (session: ResumableSession) => void;
  /**
   * verdicts caches the verification of server chains seen before (resumed
   * sessions above all); authorization still runs on every connection.
   * Default: none, every chain is verified in full.
   */
  verdicts?: VerdictCache;
}

/**
 * ResumableSession is a TLS session ticket plus the certificate chain the
 * server presented in the full handshake that issued it. On resumption the
 * server sends no certificate and Node exposes none on the client side, so
 * the remembered chain is verified again, as if presented anew, against the
 * bundles, clock and authorizer of the moment: resumption never skips the
 * SPIFFE checks. The ticket itself binds the session to the server that
 * presented that chain.
 *
 * A resumed session also carries *our* certificate from that handshake, not
 * the current one, so a session is only offered while the SVID it was made
 * with is still ours (and while the server's remembered leaf has some life
 * left): after a rotation, the next connection is a full handshake that
 * presents the new SVID, and no request fails on an expired old one.
 */
export interface ResumableSession {
  ticket: Buffer;
  chain: Buffer[];
  /** svid is our SVID that the session was negotiated with. */
  svid: X509Svid;
  /** serverNotAfter is when the server's remembered leaf expires (ms since epoch). */
  serverNotAfter: number;
}

// A session whose server leaf expires sooner than this is not worth resuming.
const RESUME_MARGIN_MS = 5_000;

/** canResume tells whether `session` may be offered with our current SVID at `now`. */
export function canResume(session: ResumableSession | undefined, current: X509Svid, now = Date.now()): boolean {
  return session !== undefined && session.svid === current && session.serverNotAfter - RESUME_MARGIN_MS > now;
}

/** VerifiedConnection is a connected socket whose server passed SPIFFE verification and authorization. */
export interface VerifiedConnection {
  socket: TLSSocket;
  peer: VerifiedPeer;
}

/**
 * verifyServer checks the server on `socket` as an X.509-SVID against the
 * bundle of its own trust domain (its SVID must allow serverAuth), then
 * authorizes its ID. It runs after every handshake, resumed ones included:
 * Node skips `checkServerIdentity` on resumption, so that hook is never
 * relied on.
 */
export function verifyServer(
  socket: TLSSocket,
  bundleSource: X509BundleSetSource,
  authorize: Authorizer,
  resumedFrom?: ResumableSession,
  verdicts?: VerdictCache,
): PeerResult {
  return verifyServerChain(presentedChain(socket, resumedFrom), bundleSource, authorize, verdicts);
}

/**
 * verifyServerChain checks a server's DER chain (leaf first) as an
 * X.509-SVID that allows serverAuth, against the bundle of its own trust
 * domain, and authorizes its ID: the one server check of the undici and
 * gRPC clients. With `verdicts`, a chain verified before against the same
 * bundles is answered from that cache; the authorizer runs every time.
 */
export function verifyServerChain(
  chain: readonly Buffer[],
  bundleSource: X509BundleSetSource,
  authorize: Authorizer,
  verdicts?: VerdictCache,
): PeerResult {
  let peer: VerifiedPeer;
  try {
    const bundles = bundleSource.getX509Bundles();
    peer = verdicts
      ? verdicts.verify(chain, bundles, { peerRole: 'server' })
      : verifyX509Svid(chain, bundles, { peerRole: 'server' });
  } catch (err) {
    return {
      ok: false,
      error: isAuthError(err) ? err : new AuthError('AUTH_ERR_PEER_UNVERIFIED', String(err), { cause: err }),
    };
  }
  const allowed = applyAuthorizer(authorize, peer.id, peer.chain);
  return allowed.ok ? { ok: true, peer } : allowed;
}

// verifyServerOnce is verifyServer that also returns the chain it verified,
// so that a session remembers it without reading it from the socket again.
function verifyServerOnce(
  socket: TLSSocket,
  bundleSource: X509BundleSetSource,
  authorize: Authorizer,
  resumedFrom: ResumableSession | undefined,
  verdicts: VerdictCache | undefined,
): { ok: true; peer: VerifiedPeer; chain: Buffer[] } | { ok: false; error: AuthError } {
  let verified: { peer: VerifiedPeer; chain: Buffer[] };
  try {
    const bundles = bundleSource.getX509Bundles();
    // Read once: Node hands the client the server's certificate only once.
    const chain = presentedChain(socket, resumedFrom);
    const options = { peerRole: 'server' } as const;
    verified = {
      peer: verdicts ? verdicts.verify(chain, bundles, options) : verifyX509Svid(chain, bundles, options),
      chain,
    };
  } catch (err) {
    return {
      ok: false,
      error: isAuthError(err) ? err : new AuthError('AUTH_ERR_PEER_UNVERIFIED', String(err), { cause: err }),
    };
  }
  const allowed = applyAuthorizer(authorize, verified.peer.id, verified.peer.chain);
  return allowed.ok ? { ok: true, ...verified } : allowed;
}

function presentedChain(socket: TLSSocket, resumedFrom: ResumableSession | undefined): Buffer[] {
  const chain = peerChainFromSocket(socket);
  if (chain.length === 0 && socket.isSessionReused() && resumedFrom) return resumedFrom.chain;
  return chain;
}

/**
 * connectMtls opens a TLS 1.3 connection presenting the SVID source's current SVID
 * and resolves once the server is verified and authorized. Node's default
 * hostname check is replaced by SPIFFE authorization: SVIDs carry URI SANs,
 * and the server's identity is its SPIFFE ID, not its DNS name.
 */
export function connectMtls(o: MtlsConnectOptions): Promise<VerifiedConnection> {
  return new Promise((resolve, reject) => {
    const { svidSource, bundleSource } = resolveSources(o);
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(
        isAuthError(err)
          ? err
          : new AuthError(
              'AUTH_ERR_TLS_CONNECT',
              `mTLS connection to ${o.host}:${o.port} failed: ${(err as Error).message}`,
              { cause: err },
            ),
      );
    };
    const isIp = /^[\d.]+$|:/.test(o.host);
    const svid = svidSource.getX509Svid();
    const resumeFrom = canResume(o.session, svid) ? o.session : undefined;
    const socket = connect({
      host: o.host,
      port: o.port,
      socket: o.socket,
      servername: o.servername ?? (isIp ? undefined : o.host),
      secureContext: secureContextFor(svid),
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      session: resumeFrom?.ticket,
      ALPNProtocols: o.ALPNProtocols,
    });
    const timer = setTimeout(() => {
      fail(new AuthError('AUTH_ERR_TLS_CONNECT', `mTLS connection to ${o.host}:${o.port} timed out`));
    }, o.timeoutMs ?? 10_000);
    timer.unref();
    let verified: { chain: Buffer[]; serverNotAfter: number } | undefined;
    let pendingTicket: Buffer | undefined;
    const onSession = o.onSession;
    const hand = (ticket: Buffer): void => {
      if (onSession && verified) onSession({ ticket, svid, ...verified });
    };
    if (onSession) {
      // TLS 1.3 tickets may arrive before or after our verification finishes;
      // only a ticket from a verified connection is handed out.
      socket.on('session', (ticket: Buffer) => {
        if (verified) hand(ticket);
        else pendingTicket = ticket;
      });
    }
    socket.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const result = verifyServerOnce(socket, bundleSource, o.authorize, resumeFrom, o.verdicts);
      if (!result.ok) {
        fail(result.error);
        return;
      }
      const { peer, chain } = result;
      verified = { chain, serverNotAfter: peer.certificate.validToDate.getTime() };
      if (pendingTicket) hand(pendingTicket);
      settled = true;
      resolve({ socket, peer });
    });
  });
}
