import { X509Certificate, type JsonWebKey } from 'node:crypto';
import { AuthError } from '../errors.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import { JwtBundle, jwtAuthorityFromJwk, type JwtAuthority } from './jwt-bundle.ts';
import { X509Bundle } from './x509-bundle.ts';

/** SpiffeBundle is a trust domain's full bundle, as exchanged by SPIFFE bundle endpoints and federation. */
export interface SpiffeBundle {
  trustDomain: TrustDomain;
  x509Bundle: X509Bundle;
  jwtBundle: JwtBundle;
  /** sequence is `spiffe_sequence`, when present. */
  sequence?: number;
  /** refreshHintSeconds is `spiffe_refresh_hint`, when present. */
  refreshHintSeconds?: number;
}

function bad(td: TrustDomain, msg: string, cause?: unknown): AuthError {
  return new AuthError('AUTH_ERR_BUNDLE_INVALID', `SPIFFE bundle for "${td.name}": ${msg}`, { cause });
}

/**
 * parseSpiffeBundleJson reads SPIFFE bundle JSON (SPIFFE Trust Domain and
 * Bundle standard §4): a JWKS whose keys carry `use` = `x509-svid` (one
 * certificate in `x5c`) or `jwt-svid` (with `kid`). Keys with another `use`
 * are ignored, as the standard requires.
 */
export function parseSpiffeBundleJson(td: TrustDomain, json: string | Uint8Array): SpiffeBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
  } catch (cause) {
    throw bad(td, 'not valid JSON', cause);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw bad(td, 'must be a JSON object with a "keys" array');
  }
  const {
    keys,
    spiffe_sequence: sequence,
    spiffe_refresh_hint: refreshHint,
  } = doc as {
    keys: unknown[];
    spiffe_sequence?: unknown;
    spiffe_refresh_hint?: unknown;
  };
  const x509: Buffer[] = [];
  const jwt: JwtAuthority[] = [];
  keys.forEach((key, i) => {
    if (typeof key !== 'object' || key === null) throw bad(td, `keys[${i}] is not an object`);
    const k = key as JsonWebKey & { use?: unknown; x5c?: unknown; kid?: unknown };
    if (k.use === 'x509-svid') {
      if (!Array.isArray(k.x5c) || k.x5c.length !== 1 || typeof k.x5c[0] !== 'string') {
        throw bad(td, `keys[${i}]: an x509-svid key must have exactly one certificate in "x5c"`);
      }
      const der = Buffer.from(k.x5c[0], 'base64');
      try {
        new X509Certificate(der);
      } catch (cause) {
        throw bad(td, `keys[${i}]: x5c certificate does not parse`, cause);
      }
      x509.push(der);
    } else if (k.use === 'jwt-svid') {
      jwt.push(jwtAuthorityFromJwk(k, `SPIFFE bundle for "${td.name}", keys[${i}]`));
    }
  });
  const bundle: SpiffeBundle = {
    trustDomain: td,
    x509Bundle: new X509Bundle(td, x509),
    jwtBundle: new JwtBundle(td, jwt),
  };
  if (sequence !== undefined) {
    if (typeof sequence !== 'number' || !Number.isInteger(sequence))
      throw bad(td, '"spiffe_sequence" must be an integer');
    bundle.sequence = sequence;
  }
  if (refreshHint !== undefined) {
    if (typeof refreshHint !== 'number' || refreshHint < 0) throw bad(td, '"spiffe_refresh_hint" must be a number ≥ 0');
    bundle.refreshHintSeconds = refreshHint;
  }
  return bundle;
}

/** marshalSpiffeBundleJson writes SPIFFE bundle JSON for the given X.509 and JWT authorities. */
export function marshalSpiffeBundleJson(bundle: Omit<SpiffeBundle, 'trustDomain'>): string {
  const keys: Record<string, unknown>[] = [];
  for (const cert of bundle.x509Bundle.authorities) {
    const jwk = cert.publicKey.export({ format: 'jwk' });
    keys.push({ use: 'x509-svid', ...jwk, x5c: [cert.raw.toString('base64')] });
  }
  for (const a of bundle.jwtBundle.authorities()) {
    keys.push({ use: 'jwt-svid', kid: a.keyId, ...a.publicKey.export({ format: 'jwk' }) });
  }
  const doc: Record<string, unknown> = { keys };
  if (bundle.sequence !== undefined) doc.spiffe_sequence = bundle.sequence;
  if (bundle.refreshHintSeconds !== undefined) doc.spiffe_refresh_hint = bundle.refreshHintSeconds;
  return JSON.stringify(doc, null, 2);
}
