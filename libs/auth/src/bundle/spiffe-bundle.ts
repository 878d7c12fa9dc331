import { createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { AuthError } from '../errors.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import { describeEntry, type BundleWarning } from './bundle-warning.ts';
import { JwtBundle, type JwtAuthority } from './jwt-bundle.ts';
import { X509Bundle } from './x509-bundle.ts';

/** SpiffeBundle is a trust domain's full bundle, as exchanged by SPIFFE bundle endpoints and federation. */
export interface SpiffeBundle {
  trustDomain: TrustDomain;
  x509Bundle: X509Bundle;
  jwtBundle: JwtBundle;
  /**
   * sequence is `spiffe_sequence`, when present: a number, or a bigint when
   * it is beyond 2^53 (the standard asks for at least 64 bits of precision).
   */
  sequence?: number | bigint;
  /** refreshHintSeconds is `spiffe_refresh_hint`, when present. */
  refreshHintSeconds?: number;
  /**
   * warnings lists the key entries that were ignored, in whole or in part,
   * as the standards require of a consumer; empty for a clean bundle. Only
   * set by parseSpiffeBundleJson.
   */
  warnings?: readonly BundleWarning[];
}

/** ParseSpiffeBundleOptions say where a bundle came from, for messages. */
export interface ParseSpiffeBundleOptions {
  /** where names the input (a file path, a Workload API field) in errors and warnings. Default: none. */
  where?: string;
}

/** ParsedSpiffeBundle is a SpiffeBundle as parseSpiffeBundleJson returns it, with its warnings. */
export interface ParsedSpiffeBundle extends SpiffeBundle {
  warnings: readonly BundleWarning[];
}

// RFC 7518 §6.1 and RFC 8037 §2: the asymmetric key types a JWK may have.
// "oct" is a known type too, but a symmetric key cannot be a public trust
// anchor, so it is ignored with its own reason.
const ASYMMETRIC_KTY = new Set(['EC', 'RSA', 'OKP']);
const X509_SVID = 'x509-svid';
const JWT_SVID = 'jwt-svid';

function bad(td: TrustDomain, where: string | undefined, msg: string, cause?: unknown): AuthError {
  const from = where === undefined ? '' : ` (${where})`;
  return new AuthError('AUTH_ERR_BUNDLE_INVALID', `SPIFFE bundle for "${td.name}"${from}: ${msg}`, { cause });
}

type RawKey = JsonWebKey & { use?: unknown; x5c?: unknown; kid?: unknown; kty?: unknown };

/** Reads JSON, keeping the source text of `spiffe_sequence` so a 64-bit value survives. */
function readJson(text: string): unknown {
  const reviver = function (this: unknown, key: string, value: unknown, context?: { source?: string }): unknown {
    if (key === 'spiffe_sequence' && typeof value === 'number' && !Number.isSafeInteger(value)) {
      const source = context?.source;
      if (source !== undefined && /^-?\d+$/.test(source)) return BigInt(source);
    }
    return value;
  };
  return JSON.parse(text, reviver);
}

/**
 * parseSpiffeBundleJson reads SPIFFE bundle JSON (SPIFFE Trust Domain and
 * Bundle standard §4): a JWK Set whose entries carry `use` = `x509-svid`
 * (a CA certificate in `x5c`) or `jwt-svid` (a public key with `kid`).
 *
 * A key entry the standards tell a consumer to ignore does not fail the
 * bundle: it is left out and named in `warnings` (which entry, which `use`
 * and `kid`, and why), and every other key stays in force. Ignored are: an
 * entry that is not an object, has no or an unknown `use` (§4.2.2) or `kty`
 * (§4.2.1), an `x509-svid` entry with no certificate in `x5c` or one that
 * does not parse (X509-SVID §6.2), a `jwt-svid` entry with no `kid` (JWT-SVID
 * §6.1), one that holds a private key, one that is not a usable public key,
 * and a second entry with the same `kid`. Of an `x5c` with several
 * certificates only the first is used (X509-SVID §6.2), with a warning. A
 * bundle that is left with no key of a use trusts nothing for it (§4.1.3).
 *
 * Only a document that is not a bundle at all fails, with
 * AUTH_ERR_BUNDLE_INVALID: not JSON, no `keys` array, or a `spiffe_sequence`
 * or `spiffe_refresh_hint` that is not an integer (§4.1.1, §4.1.2).
 */
export function parseSpiffeBundleJson(
  td: TrustDomain,
  json: string | Uint8Array,
  options: ParseSpiffeBundleOptions = {},
): ParsedSpiffeBundle {
  const where = options.where;
  let doc: unknown;
  try {
    doc = readJson(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
  } catch (cause) {
    throw bad(td, where, 'not valid JSON', cause);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw bad(td, where, 'must be a JSON object with a "keys" array (SPIFFE Trust Domain and Bundle §4.1.3)');
  }
  const {
    keys,
    spiffe_sequence: sequence,
    spiffe_refresh_hint: refreshHint,
  } = doc as { keys: unknown[]; spiffe_sequence?: unknown; spiffe_refresh_hint?: unknown };

  const x509: Buffer[] = [];
  const jwt = new Map<string, JwtAuthority>();
  const warnings: BundleWarning[] = [];
  keys.forEach((key, index) => {
    const entry = readEntry(key, index, jwt);
    if (entry.warning !== undefined) {
      const { skipped, reason, use, kid } = entry.warning;
      const from = where === undefined ? '' : ` (${where})`;
      const action = skipped ? 'ignored that entry; the rest of the bundle is in use' : 'the entry is used';
      warnings.push({
        trustDomain: td.name,
        index,
        ...(use === undefined ? {} : { use }),
        ...(kid === undefined ? {} : { kid }),
        skipped,
        reason,
        message: `SPIFFE bundle for "${td.name}"${from}: ${describeEntry(index, use, kid)} ${reason}; ${action}`,
        ...(where === undefined ? {} : { where }),
      });
    }
    if (entry.x509 !== undefined) x509.push(entry.x509);
    if (entry.jwt !== undefined) jwt.set(entry.jwt.keyId, entry.jwt);
  });

  const bundle: ParsedSpiffeBundle = {
    trustDomain: td,
    x509Bundle: new X509Bundle(td, x509),
    jwtBundle: new JwtBundle(td, jwt.values()),
    warnings,
  };
  if (sequence !== undefined) {
    if (typeof sequence === 'bigint' || (typeof sequence === 'number' && Number.isInteger(sequence))) {
      bundle.sequence = sequence;
    } else {
      throw bad(td, where, '"spiffe_sequence" must be an integer (SPIFFE Trust Domain and Bundle §4.1.1)');
    }
  }
  if (refreshHint !== undefined) {
    if (typeof refreshHint !== 'number' || !Number.isSafeInteger(refreshHint) || refreshHint < 0) {
      throw bad(
        td,
        where,
        '"spiffe_refresh_hint" must be an integer number of seconds ≥ 0 (SPIFFE Trust Domain and Bundle §4.1.2)',
      );
    }
    bundle.refreshHintSeconds = refreshHint;
  }
  return bundle;
}

interface EntryWarning {
  skipped: boolean;
  reason: string;
  use?: string;
  kid?: string;
}

interface Entry {
  x509?: Buffer;
  jwt?: JwtAuthority;
  warning?: EntryWarning;
}

/** Reads one entry of `keys`: what it contributes and, when something was ignored, why. */
function readEntry(key: unknown, index: number, jwtSoFar: ReadonlyMap<string, JwtAuthority>): Entry {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) {
    return { warning: { skipped: true, reason: 'is not a JSON object' } };
  }
  const k = key as RawKey;
  const use = typeof k.use === 'string' ? k.use : undefined;
  const kid = typeof k.kid === 'string' ? k.kid : undefined;
  const skip = (reason: string): Entry => ({ warning: { skipped: true, reason, use, kid } });
  if (k.use === undefined) return skip('has no "use" (SPIFFE Trust Domain and Bundle §4.2.2)');
  if (use !== X509_SVID && use !== JWT_SVID) {
    return skip(`has an unknown "use" ${JSON.stringify(k.use)} (SPIFFE Trust Domain and Bundle §4.2.2)`);
  }
  if (k.kty === undefined) return skip('has no "kty" (SPIFFE Trust Domain and Bundle §4.2.1)');
  if (k.kty === 'oct') return skip('is a symmetric key ("kty" "oct"); a bundle holds public keys only');
  if (typeof k.kty !== 'string' || !ASYMMETRIC_KTY.has(k.kty)) {
    return skip(`has an unknown "kty" ${JSON.stringify(k.kty)} (SPIFFE Trust Domain and Bundle §4.2.1)`);
  }
  if ('d' in k) return skip('holds a private key ("d"); a bundle holds public keys only');
  return use === X509_SVID ? readX509Entry(k, skip, use, kid) : readJwtEntry(k, skip, jwtSoFar, use, kid);
}

function readX509Entry(k: RawKey, skip: (reason: string) => Entry, use: string, kid?: string): Entry {
  if (!Array.isArray(k.x5c) || k.x5c.length === 0) {
    return skip('has no certificate in "x5c" (X509-SVID §6.2)');
  }
  const first: unknown = k.x5c[0];
  if (typeof first !== 'string' || first === '') {
    return skip('has an "x5c" whose first value is not a base64 string (X509-SVID §6.2)');
  }
  const der = Buffer.from(first, 'base64');
  try {
    new X509Certificate(der);
  } catch (cause) {
    return skip(`has an "x5c" certificate that does not parse (${(cause as Error).message})`);
  }
  const notes: string[] = [];
  if (k.x5c.length > 1) {
    notes.push(
      `has ${String(k.x5c.length)} certificates in "x5c"; only the first is used, the others are ignored (X509-SVID §6.2)`,
    );
  }
  if (k.kid !== undefined) notes.push('has a "kid", which an x509-svid entry must not have (X509-SVID §6.1)');
  return notes.length === 0
    ? { x509: der }
    : { x509: der, warning: { skipped: false, reason: notes.join(' and '), use, kid } };
}

function readJwtEntry(
  k: RawKey,
  skip: (reason: string) => Entry,
  jwtSoFar: ReadonlyMap<string, JwtAuthority>,
  use: string,
  kid?: string,
): Entry {
  if (kid === undefined || kid === '') return skip('has no "kid" (JWT-SVID §6.1)');
  if (jwtSoFar.has(kid)) return skip('repeats the "kid" of an earlier entry; the first one is used');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: k, format: 'jwk' });
  } catch (cause) {
    return skip(`is not a valid public key (${(cause as Error).message})`);
  }
  return { jwt: { keyId: kid, publicKey, jwk: k } };
}

/** marshalSpiffeBundleJson writes SPIFFE bundle JSON for the given X.509 and JWT authorities. */
export function marshalSpiffeBundleJson(bundle: Omit<SpiffeBundle, 'trustDomain'>): string {
  const keys: Record<string, unknown>[] = [];
  for (const cert of bundle.x509Bundle.authorities) {
    const jwk = cert.publicKey.export({ format: 'jwk' });
    // X509-SVID §6.1: `use` x509-svid, exactly one certificate, and no `kid`.
    keys.push({ use: X509_SVID, ...jwk, x5c: [cert.raw.toString('base64')] });
  }
  for (const a of bundle.jwtBundle.authorities()) {
    keys.push({ use: JWT_SVID, kid: a.keyId, ...a.publicKey.export({ format: 'jwk' }) });
  }
  const doc: Record<string, unknown> = { keys };
  if (bundle.sequence !== undefined) {
    // JSON.rawJSON writes a 64-bit sequence number without rounding it through a double.
    const rawJson = (text: string): unknown => (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON(text);
    doc.spiffe_sequence = typeof bundle.sequence === 'bigint' ? rawJson(bundle.sequence.toString()) : bundle.sequence;
  }
  if (bundle.refreshHintSeconds !== undefined) doc.spiffe_refresh_hint = bundle.refreshHintSeconds;
  return JSON.stringify(doc, null, 2);
}
