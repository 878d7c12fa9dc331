// What the ops port's GET /identity answers: the identity a service holds
// right now and how it got there, for the console (tools/console) and for
// people with curl. Everything comes from the identity source itself.
import type { IdentitySource } from '@shop/auth';

/** IDENTITY_HISTORY_LIMIT bounds the rotations /identity remembers. */
export const IDENTITY_HISTORY_LIMIT = 50;

/** IdentityEvent is one identity update the source applied. */
export interface IdentityEvent {
  /** at is when the service applied it (ISO 8601). */
  at: string;
  /** kind is "loaded" for the first identity, "rotated" for each one after. */
  kind: 'loaded' | 'rotated';
  spiffeId: string;
  serial: string;
  notAfter: string;
}

/** TrustRoot is one CA certificate a trust domain's bundle holds. */
export interface TrustRoot {
  subject: string;
  serial: string;
  notAfter: string;
  /** sha256 is the certificate's SHA-256 fingerprint. */
  sha256: string;
}

/** IdentityView is the body of GET /identity. */
export interface IdentityView {
  /** mode is where the identity comes from: "files" or "spiffe". */
  mode: string;
  /** source describes the source (its files, or its Workload API socket). */
  source: string;
  ready: boolean;
  spiffeId: string | null;
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  /** secondsToExpiry is null before the first identity. */
  secondsToExpiry: number | null;
  /** rotations counts updates applied after the first. */
  rotations: number;
  /** history is the last IDENTITY_HISTORY_LIMIT updates, oldest first. */
  history: IdentityEvent[];
  /** trustRoots are the CA certificates trusted, by trust domain (ours and federated ones). */
  trustRoots: Record<string, TrustRoot[]>;
  /** lastError is the source's last refused update, if any. */
  lastError: { code: string; message: string } | null;
}

/**
 * IdentityHistory follows an identity source's `rotated` events from the
 * moment it is made (make it before the first identity arrives) and answers
 * the /identity view.
 */
export class IdentityHistory {
  readonly #source: IdentitySource;
  readonly #events: IdentityEvent[] = [];
  #rotations = 0;

  constructor(source: IdentitySource) {
    this.#source = source;
    source.on('rotated', (e) => {
      if (e.previous) this.#rotations++;
      this.#events.push({
        at: new Date().toISOString(),
        kind: e.previous ? 'rotated' : 'loaded',
        spiffeId: e.svid.id.toString(),
        serial: e.svid.leaf.serialNumber,
        notAfter: e.svid.expiresAt.toISOString(),
      });
      if (this.#events.length > IDENTITY_HISTORY_LIMIT) this.#events.shift();
    });
  }

  /** view reads the source now. */
  view(): IdentityView {
    const s = this.#source;
    const last = s.lastError;
    const base = {
      mode: s.kind,
      source: s.describe(),
      rotations: this.#rotations,
      history: [...this.#events],
      lastError: last === undefined ? null : { code: last.code, message: last.message },
    };
    if (!s.isReady) {
      return {
        ...base,
        ready: false,
        spiffeId: null,
        serial: null,
        notBefore: null,
        notAfter: null,
        secondsToExpiry: null,
        trustRoots: {},
      };
    }
    const svid = s.getX509Svid();
    const trustRoots: Record<string, TrustRoot[]> = {};
    for (const b of s.getX509Bundles().bundles()) {
      trustRoots[b.trustDomain.name] = b.authorities.map((a) => ({
        subject: a.subject.replace(/\n/g, ', '),
        serial: a.serialNumber,
        notAfter: new Date(a.validTo).toISOString(),
        sha256: a.fingerprint256,
      }));
    }
    return {
      ...base,
      ready: s.secondsToExpiry() > 0,
      spiffeId: svid.id.toString(),
      serial: svid.leaf.serialNumber,
      notBefore: svid.notBefore.toISOString(),
      notAfter: svid.expiresAt.toISOString(),
      secondsToExpiry: s.secondsToExpiry(),
      trustRoots,
    };
  }
}
