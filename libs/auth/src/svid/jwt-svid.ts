import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { errors as joseErrors, jwtVerify } from 'jose';
import { JwtBundle, type JwtAuthority, type JwtBundleSource } from '../bundle/jwt-bundle.ts';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';

/** jwtSvidAlgorithms lists the `alg` values a JWT-SVID may use (JWT-SVID standard §2.1); all others are rejected. */
export const jwtSvidAlgorithms = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
] as const);

/** JwtSvidAlgorithm is one of the `alg` values a JWT-SVID may use. */
export type JwtSvidAlgorithm = (typeof jwtSvidAlgorithms)[number];

/** JwtSvidValidationOptions sets the clock that `exp` and `nbf` are checked against. */
export interface JwtSvidValidationOptions {
  /** now is the time to check `exp` and `nbf` against. Default: the current time. */
  now?: Date;
  /** clockToleranceSeconds is how many seconds `exp` and `nbf` may be off by. Default: `0`. */
  clockToleranceSeconds?: number;
}

/** ParseInsecureJwtSvidOptions adds the Workload API's hint to the validation options. */
export interface ParseInsecureJwtSvidOptions extends JwtSvidValidationOptions {
  /** hint is the operator-chosen hint the Workload API sent with the token. Default: `""`. */
  hint?: string;
}

interface JwtSvidInit {
  id: SpiffeId;
  audience: string[];
  expiry: Date;
  claims: Record<string, unknown>;
  token: string;
  hint: string;
}

// Lets the parse functions below build a JwtSvid while the constructor stays
// private: a JwtSvid object always means "this token passed the checks".
let createJwtSvid: (init: JwtSvidInit) => JwtSvid;

/** JwtSvid is a parsed JWT-SVID whose header and claims passed the JWT-SVID standard's checks. */
export class JwtSvid {
  /** id is the SPIFFE ID in the `sub` claim. */
  readonly id: SpiffeId;
  /** audience is the `aud` claim, always as an array. */
  readonly audience: string[];
  /** expiry is the `exp` claim. */
  readonly expiry: Date;
  /** claims is the whole claims set, as sent. */
  readonly claims: Record<string, unknown>;
  /** token is the serialized JWT, to send as `Authorization: Bearer <token>`; it is a secret. */
  readonly token: string;
  /** hint is the operator-chosen hint from the Workload API ("" when none). */
  readonly hint: string;

  private constructor(init: JwtSvidInit) {
    this.id = init.id;
    this.audience = Object.freeze([...init.audience]) as string[];
    this.expiry = init.expiry;
    this.claims = Object.freeze({ ...init.claims });
    this.token = init.token;
    this.hint = init.hint;
  }

  static {
    createJwtSvid = (init) => new JwtSvid(init);
  }

  /** toJSON describes the SVID without the token, so that logging it does not leak a bearer credential. */
  toJSON(): { id: string; audience: string[]; expiry: string; hint: string } {
    return { id: this.id.toString(), audience: [...this.audience], expiry: this.expiry.toISOString(), hint: this.hint };
  }

  // console.log and util.inspect would otherwise print the bearer token.
  [inspect.custom](): string {
    return `JwtSvid ${inspect(this.toJSON())}`;
  }
}

/**
 * parseAndValidateJwtSvid parses a JWT-SVID and validates it to the JWT-SVID
 * standard: the signature must verify with a key from the JWT bundle of the
 * trust domain named in the token's own `sub` (never with another trust
 * domain's keys), and at least one of `audience` must be in `aud`.
 */
export async function parseAndValidateJwtSvid(
  token: string,
  bundles: JwtBundleSource,
  audience: string[],
  options: JwtSvidValidationOptions = {},
): Promise<JwtSvid> {
  const expected = checkAudienceArgument(audience);
  const clock = resolveClock(options);
  const jwt = decodeJwtSvid(token);
  const bundle = bundleOf(bundles, jwt.id);
  const candidates = keysFor(jwt, bundle);
  let lastKeyError: unknown;
  for (const authority of candidates) {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, authority.publicKey, {
        algorithms: [jwt.alg],
        audience: expected,
        currentDate: clock.now,
        clockTolerance: clock.toleranceSeconds,
        requiredClaims: ['sub', 'aud', 'exp'],
      }));
    } catch (err) {
      // jose checks claims only after the signature verified: a claim error
      // is final. A key or signature error with no kid means "try the next key".
      if (!isClaimError(err) && jwt.kid === undefined) {
        lastKeyError = err;
        continue;
      }
      throw fromJoseError(err, jwt, authority, expected, clock);
    }
    return createJwtSvid({
      id: jwt.id,
      audience: jwt.audience,
      expiry: new Date(jwt.exp * 1000),
      claims: payload,
      token,
      hint: '',
    });
  }
  throw untrusted(
    `JWT-SVID (no kid, alg ${jwt.alg}) does not verify with any of the ${candidates.length} ${keyLabel(jwt.alg)}(s) in the JWT bundle of trust domain "${bundle.trustDomain.name}"`,
    lastKeyError,
  );
}

/**
 * parseInsecureJwtSvid parses a JWT-SVID WITHOUT checking its signature: use
 * it only for tokens that came straight from our own Workload API. The header,
 * `sub`, `aud` (against `audience`), `exp` and `nbf` are still checked.
 */
export function parseInsecureJwtSvid(
  token: string,
  audience: string[],
  options: ParseInsecureJwtSvidOptions = {},
): JwtSvid {
  const expected = checkAudienceArgument(audience);
  const clock = resolveClock(options);
  const hint = options.hint ?? '';
  if (typeof hint !== 'string') throw new AuthError('AUTH_ERR_CONFIG_INVALID', 'hint must be a string');
  const jwt = decodeJwtSvid(token);
  // The same rules, in the same order, as jose applies after a signature
  // check in parseAndValidateJwtSvid, so both functions agree on every token.
  const now = Math.floor(clock.now.getTime() / 1000);
  if (!jwt.audience.some((a) => expected.includes(a))) throw audienceMismatch(jwt.audience, expected);
  if (jwt.nbf !== undefined && jwt.nbf > now + clock.toleranceSeconds) throw notYetValid(jwt.nbf, clock);
  if (jwt.exp <= now - clock.toleranceSeconds) throw expired(jwt.exp, clock);
  return createJwtSvid({
    id: jwt.id,
    audience: jwt.audience,
    expiry: new Date(jwt.exp * 1000),
    claims: jwt.claims,
    token,
    hint,
  });
}

interface DecodedJwtSvid {
  alg: JwtSvidAlgorithm;
  kid: string | undefined;
  claims: Record<string, unknown>;
  id: SpiffeId;
  audience: string[];
  exp: number;
  nbf: number | undefined;
}

interface Clock {
  now: Date;
  toleranceSeconds: number;
}

// JWT-SVID standard §2: "Any header not described here, registered or
// private, MUST NOT be included"; JWT-SVID.schema has additionalProperties:
// false on the header. So `crit`, `jku`, `jwk`, `x5u`, `x5c`, `b64` … are all refused.
const ALLOWED_HEADER_PARAMETERS = new Set(['alg', 'kid', 'typ']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface KeyRequirement {
  types: readonly string[];
  curve?: string;
  label: string;
}

const RSA: KeyRequirement = { types: ['rsa'], label: 'RSA key' };
const RSA_PSS: KeyRequirement = { types: ['rsa', 'rsa-pss'], label: 'RSA key' };
const KEY_REQUIREMENTS: Record<JwtSvidAlgorithm, KeyRequirement> = {
  RS256: RSA,
  RS384: RSA,
  RS512: RSA,
  PS256: RSA_PSS,
  PS384: RSA_PSS,
  PS512: RSA_PSS,
  ES256: { types: ['ec'], curve: 'prime256v1', label: 'EC P-256 key' },
  ES384: { types: ['ec'], curve: 'secp384r1', label: 'EC P-384 key' },
  ES512: { types: ['ec'], curve: 'secp521r1', label: 'EC P-521 key' },
};
const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

function invalid(message: string, cause?: unknown): AuthError {
  return new AuthError('AUTH_ERR_JWT_SVID_INVALID', message, cause === undefined ? undefined : { cause });
}

function untrusted(message: string, cause?: unknown): AuthError {
  return new AuthError('AUTH_ERR_JWT_SVID_UNTRUSTED', message, cause === undefined ? undefined : { cause });
}

function expired(exp: number, clock: Clock): AuthError {
  return new AuthError(
    'AUTH_ERR_JWT_SVID_EXPIRED',
    `JWT-SVID expired at ${isoSeconds(exp)} (now ${clock.now.toISOString()}, clock tolerance ${clock.toleranceSeconds}s)`,
  );
}

function notYetValid(nbf: number, clock: Clock): AuthError {
  return new AuthError(
    'AUTH_ERR_JWT_SVID_EXPIRED',
    `JWT-SVID is not valid before ${isoSeconds(nbf)} ("nbf"; now ${clock.now.toISOString()}, clock tolerance ${clock.toleranceSeconds}s)`,
  );
}

function audienceMismatch(found: string[], expected: string[]): AuthError {
  return new AuthError(
    'AUTH_ERR_JWT_SVID_AUDIENCE_MISMATCH',
    `JWT-SVID audience ${show(found)} contains none of the expected audiences ${show(expected)}`,
  );
}

function isoSeconds(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString();
}

// Claim values come from the sender; keep them bounded in messages.
function show(value: unknown): string {
  const json = JSON.stringify(value) as string | undefined; // undefined for undefined, functions, symbols
  const text = json ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function checkAudienceArgument(audience: unknown): string[] {
  // An empty list would accept every audience (go-jose skips the check then);
  // the standard wants acceptable values configured in advance.
  if (
    !Array.isArray(audience) ||
    audience.length === 0 ||
    audience.some((a: unknown) => typeof a !== 'string' || a === '')
  ) {
    throw new AuthError(
      'AUTH_ERR_CONFIG_INVALID',
      `audience must be a non-empty array of non-empty strings (got ${show(audience)})`,
    );
  }
  return [...(audience as string[])];
}

function resolveClock(options: JwtSvidValidationOptions): Clock {
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new AuthError('AUTH_ERR_CONFIG_INVALID', 'now must be a valid Date');
  }
  const toleranceSeconds = options.clockToleranceSeconds ?? 0;
  if (typeof toleranceSeconds !== 'number' || !Number.isFinite(toleranceSeconds) || toleranceSeconds < 0) {
    throw new AuthError(
      'AUTH_ERR_CONFIG_INVALID',
      `clockToleranceSeconds must be a finite number ≥ 0 (got ${show(toleranceSeconds)})`,
    );
  }
  return { now, toleranceSeconds };
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
  } catch (cause) {
    throw invalid(`JWT-SVID ${what} is not base64url-encoded UTF-8 JSON`, cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`JWT-SVID ${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function isJwtSvidAlgorithm(alg: unknown): alg is JwtSvidAlgorithm {
  return typeof alg === 'string' && (jwtSvidAlgorithms as readonly string[]).includes(alg);
}

function numericDate(claims: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const value = claims[name];
  if (value === undefined) {
    if (required) throw invalid(`JWT-SVID has no "${name}" claim; the JWT-SVID standard requires it`);
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`JWT-SVID "${name}" claim must be a NumericDate (seconds since the epoch), found ${show(value)}`);
  }
  return value;
}

/** decodeJwtSvid checks everything about a JWT-SVID that does not need a key or a clock. */
function decodeJwtSvid(token: unknown): DecodedJwtSvid {
  if (typeof token !== 'string') throw invalid(`JWT-SVID must be a string, got ${typeof token}`);
  if (token === '') throw invalid('JWT-SVID is empty');
  const parts = token.split('.');
  if (parts.length === 5) throw invalid('JWT-SVID must be a JWS; this is a JWE (5 parts)');
  if (parts.length !== 3) {
    throw invalid(`JWT-SVID must use JWS compact serialization (3 dot-separated parts), found ${parts.length} part(s)`);
  }
  const [rawHeader = '', rawPayload = '', rawSignature = ''] = parts;
  if (!BASE64URL.test(rawHeader)) throw invalid('JWT-SVID header is not base64url');

  const header = decodeSegment(rawHeader, 'header');
  // The standard says validators MUST check alg before processing anything else.
  const { alg } = header;
  if (!isJwtSvidAlgorithm(alg)) {
    throw untrusted(
      `JWT-SVID header "alg" is ${alg === undefined ? 'missing' : show(alg)}; it must be one of ${jwtSvidAlgorithms.join(', ')}`,
    );
  }
  if (header.crit !== undefined) {
    throw invalid(
      `JWT-SVID header "crit" lists extensions this validator does not understand (${show(header.crit)}); a JWT-SVID must not use any`,
    );
  }
  for (const name of Object.keys(header)) {
    if (!ALLOWED_HEADER_PARAMETERS.has(name)) {
      throw invalid(`JWT-SVID header must hold only "alg", "kid" and "typ"; found ${show(name)}`);
    }
  }
  const { kid, typ } = header;
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) {
    throw invalid(`JWT-SVID header "kid" must be a non-empty string when present, found ${show(kid)}`);
  }
  if (typ !== undefined && typ !== 'JWT' && typ !== 'JOSE') {
    throw invalid(`JWT-SVID header "typ" is ${show(typ)}; it must be "JWT" or "JOSE" when present`);
  }

  if (!BASE64URL.test(rawPayload)) throw invalid('JWT-SVID claims set is not base64url');
  const claims = decodeSegment(rawPayload, 'claims set');

  const { sub, aud } = claims;
  if (sub === undefined) throw invalid('JWT-SVID has no "sub" claim; it must be the SPIFFE ID of the workload');
  if (typeof sub !== 'string') throw invalid(`JWT-SVID "sub" claim must be a string, found ${show(sub)}`);
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(sub);
  } catch (cause) {
    const problem = cause instanceof Error ? cause.message : String(cause);
    throw invalid(`JWT-SVID "sub" claim is not a valid SPIFFE ID: ${problem}`, cause);
  }
  if (id.isRoot) {
    throw invalid(`JWT-SVID "sub" claim ${sub} has no path; an SVID must not carry the trust domain's own ID`);
  }

  let audience: string[];
  if (aud === undefined) throw invalid('JWT-SVID has no "aud" claim; the JWT-SVID standard requires it');
  if (typeof aud === 'string') {
    audience = [aud];
  } else if (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string')) {
    audience = aud;
  } else {
    throw invalid(`JWT-SVID "aud" claim must be a string or a non-empty array of strings, found ${show(aud)}`);
  }

  const exp = numericDate(claims, 'exp', true) as number;
  const nbf = numericDate(claims, 'nbf', false);
  numericDate(claims, 'iat', false);

  if (!BASE64URL.test(rawSignature)) throw invalid('JWT-SVID signature is missing or not base64url');
  return { alg, kid, claims, id, audience, exp, nbf };
}

function keyLabel(alg: JwtSvidAlgorithm): string {
  return KEY_REQUIREMENTS[alg].label;
}

function describeKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? key.type;
  if (type === 'rsa' || type === 'rsa-pss') return 'an RSA key';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown curve';
    return `an EC ${CURVE_NAMES[curve] ?? curve} key`;
  }
  if (type === 'ed25519') return 'an Ed25519 key';
  return `a key of type ${type}`;
}

function keyFits(alg: JwtSvidAlgorithm, key: KeyObject): boolean {
  const need = KEY_REQUIREMENTS[alg];
  if (key.type !== 'public' || key.asymmetricKeyType === undefined) return false;
  if (!need.types.includes(key.asymmetricKeyType)) return false;
  return need.curve === undefined || key.asymmetricKeyDetails?.namedCurve === need.curve;
}

function bundleOf(bundles: JwtBundleSource, id: SpiffeId): JwtBundle {
  const td = id.trustDomain;
  // unknown, not JwtBundle: plain-JS sources may return undefined instead of throwing.
  let bundle: unknown;
  try {
    bundle = bundles.getJwtBundleForTrustDomain(td);
  } catch (cause) {
    throw untrusted(`no JWT bundle for trust domain "${td.name}" of JWT-SVID subject ${id.toString()}`, cause);
  }
  if (!(bundle instanceof JwtBundle)) {
    throw untrusted(`no JWT bundle for trust domain "${td.name}" of JWT-SVID subject ${id.toString()}`);
  }
  // A source that hands back another trust domain's bundle would let that
  // domain's keys vouch for this subject; refuse rather than pool keys.
  if (!bundle.trustDomain.equals(td)) {
    throw untrusted(
      `the JWT bundle source returned the bundle of trust domain "${bundle.trustDomain.name}" when asked for "${td.name}"`,
    );
  }
  return bundle;
}

function isClaimError(err: unknown): boolean {
  return (
    err instanceof joseErrors.JWTExpired ||
    err instanceof joseErrors.JWTClaimValidationFailed ||
    err instanceof joseErrors.JWTInvalid
  );
}

/** keysFor picks the keys of the subject's trust domain that may have signed the token. */
function keysFor(jwt: DecodedJwtSvid, bundle: JwtBundle): JwtAuthority[] {
  const td = bundle.trustDomain.name;
  if (jwt.kid !== undefined) {
    const authority = bundle.findAuthority(jwt.kid);
    if (!authority)
      throw untrusted(`JWT-SVID key ID ${show(jwt.kid)} is not in the JWT bundle of trust domain "${td}"`);
    if (!keyFits(jwt.alg, authority.publicKey)) {
      throw untrusted(
        `JWT-SVID alg ${jwt.alg} needs an ${keyLabel(jwt.alg)}, but key ${show(jwt.kid)} of trust domain "${td}" is ${describeKey(authority.publicKey)}`,
      );
    }
    return [authority];
  }
  const all = bundle.authorities();
  const usable = all.filter((a) => keyFits(jwt.alg, a.publicKey));
  if (usable.length === 0) {
    throw untrusted(
      `JWT-SVID has no kid and the JWT bundle of trust domain "${td}" has no ${keyLabel(jwt.alg)} for alg ${jwt.alg} (it has ${all.length} key(s))`,
    );
  }
  return usable;
}

function fromJoseError(
  err: unknown,
  jwt: DecodedJwtSvid,
  authority: JwtAuthority,
  expected: string[],
  clock: Clock,
): AuthError {
  const where = `key ${show(authority.keyId)} of trust domain "${jwt.id.trustDomain.name}"`;
  if (err instanceof joseErrors.JWTExpired) return expired(jwt.exp, clock);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed' && jwt.nbf !== undefined)
      return notYetValid(jwt.nbf, clock);
    if (err.claim === 'aud' && err.reason === 'check_failed') return audienceMismatch(jwt.audience, expected);
    return invalid(`JWT-SVID claim "${err.claim}" is invalid: ${err.message}`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return untrusted(`JWT-SVID signature (${jwt.alg}) does not verify with ${where}`, err);
  }
  const reason = err instanceof Error ? err.message : String(err);
  return untrusted(`JWT-SVID (${jwt.alg}) cannot be verified with ${where}: ${reason}`, err);
}
