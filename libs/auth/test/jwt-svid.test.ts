import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { inspect } from 'node:util';
import { SignJWT } from 'jose';
import { JwtBundle, JwtBundleSet, type JwtAuthority, type JwtBundleSource } from '../src/bundle/jwt-bundle.ts';
import { isAuthError, type AuthErrorCode } from '../src/errors.ts';
import { TrustDomain } from '../src/spiffeid/trust-domain.ts';
import {
  jwtSvidAlgorithms,
  parseAndValidateJwtSvid,
  parseInsecureJwtSvid,
  type JwtSvid,
  type JwtSvidValidationOptions,
} from '../src/svid/jwt-svid.ts';
import { createTestTrustDomain } from '@shop/auth-testing';

// A fixed clock keeps every exp/nbf case exact; tokens are signed for it.
const NOW = new Date('2031-05-01T12:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const AT: JwtSvidValidationOptions = { now: NOW };
const AUD = ['payments'];

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
const ed25519 = generateKeyPairSync('ed25519');
const bP256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const strangerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const hmacSecret = randomBytes(32);

function authority(keyId: string, publicKey: KeyObject): JwtAuthority {
  return { keyId, publicKey, jwk: publicKey.export({ format: 'jwk' }) };
}

const bundleA = new JwtBundle('a.org', [
  authority('a-rsa', rsa.publicKey),
  authority('a-p256', p256.publicKey),
  authority('a-p384', p384.publicKey),
  authority('a-p521', p521.publicKey),
  authority('a-ed25519', ed25519.publicKey),
]);
const bundleB = new JwtBundle('b.org', [authority('b-p256', bP256.publicKey)]);
const BUNDLES = new JwtBundleSet([bundleA, bundleB]);

const SUB = 'spiffe://a.org/orders';

/** claims returns a valid claims set for a.org with `over` applied; an `undefined` value removes the claim. */
function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { sub: SUB, aud: AUD, exp: NOW_S + 300, iat: NOW_S - 10, ...over };
  for (const [k, v] of Object.entries(over)) if (v === undefined) removeClaim(out, k);
  return out;
}

function removeClaim(obj: Record<string, unknown>, key: string): void {
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
  delete obj[key];
}

interface Spec {
  alg: string;
  key: KeyObject;
  /** kid defaults to none. */
  kid?: string;
  claims?: Record<string, unknown>;
  /** header overrides and additions. */
  header?: Record<string, unknown>;
}

/** jwt signs with jose's SignJWT, as a real issuer would. */
async function jwt(spec: Spec): Promise<string> {
  const header: Record<string, unknown> = { alg: spec.alg, typ: 'JWT', ...spec.header };
  if (spec.kid !== undefined) header.kid = spec.kid;
  for (const [k, v] of Object.entries(header)) if (v === undefined) removeClaim(header, k);
  return new SignJWT(spec.claims ?? claims()).setProtectedHeader(header as { alg: string }).sign(spec.key);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * handJwt builds a token by hand, for headers jose refuses to produce:
 * `alg: none`, HMAC keyed with a public key, unknown `crit`.
 */
function handJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key?: KeyObject | Buffer | string,
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const alg = String(header.alg);
  let sig = Buffer.alloc(0);
  if (alg.startsWith('HS')) {
    sig = createHmac(`sha${alg.slice(2)}`, key as Buffer | string)
      .update(input)
      .digest();
  } else if (alg.startsWith('ES')) {
    sig = sign(`sha${alg.slice(2)}`, Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  } else if (alg.startsWith('RS')) {
    sig = sign(`sha${alg.slice(2)}`, Buffer.from(input), key as KeyObject);
  }
  return `${input}.${sig.toString('base64url')}`;
}

const es256 = (over: Partial<Spec> = {}): Promise<string> =>
  jwt({ alg: 'ES256', key: p256.privateKey, kid: 'a-p256', ...over });

async function assertRejects(run: () => unknown, code: AuthErrorCode, message: RegExp, token: string): Promise<void> {
  await assert.rejects(
    async () => {
      await run();
    },
    (err: unknown) => {
      assert.ok(isAuthError(err), `expected an AuthError, got ${inspect(err)}`);
      assert.equal(err.code, code, `wrong code; message: ${err.message}`);
      assert.match(err.message, message);
      // The token is a bearer credential: it must never reach a log line.
      const signature = token.split('.')[2] ?? '';
      assert.ok(!err.message.includes(token), 'message contains the token');
      if (signature.length > 8) assert.ok(!err.message.includes(signature), 'message contains the signature');
      return true;
    },
  );
}

describe('parseAndValidateJwtSvid accepts every JWT-SVID algorithm (positive controls)', () => {
  const keyFor: Record<string, [KeyObject, string]> = {
    RS256: [rsa.privateKey, 'a-rsa'],
    RS384: [rsa.privateKey, 'a-rsa'],
    RS512: [rsa.privateKey, 'a-rsa'],
    PS256: [rsa.privateKey, 'a-rsa'],
    PS384: [rsa.privateKey, 'a-rsa'],
    PS512: [rsa.privateKey, 'a-rsa'],
    ES256: [p256.privateKey, 'a-p256'],
    ES384: [p384.privateKey, 'a-p384'],
    ES512: [p521.privateKey, 'a-p521'],
  };
  for (const alg of jwtSvidAlgorithms) {
    test(alg, async () => {
      const [key, kid] = keyFor[alg]!;
      const token = await jwt({ alg, key, kid, claims: claims({ tenant: 'eu' }) });
      const svid = await parseAndValidateJwtSvid(token, BUNDLES, AUD, AT);
      assert.equal(svid.id.toString(), SUB);
      assert.deepEqual(svid.audience, AUD);
      assert.equal(svid.expiry.getTime(), (NOW_S + 300) * 1000);
      assert.equal(svid.claims.tenant, 'eu');
      assert.equal(svid.token, token);
      assert.equal(svid.hint, '');
    });
  }
  test('the forbidden algorithms are not in the list', () => {
    for (const alg of ['none', 'HS256', 'HS384', 'HS512', 'EdDSA', 'ES256K', 'Ed25519']) {
      assert.ok(!(jwtSvidAlgorithms as readonly string[]).includes(alg), alg);
    }
  });
});

interface Case {
  name: string;
  /** control is the same token with the rule obeyed: it must validate, or the case proves nothing. */
  control: () => Promise<string> | string;
  attack: () => Promise<string> | string;
  code: AuthErrorCode;
  message: RegExp;
  bundles?: JwtBundleSource;
  audience?: string[];
  options?: JwtSvidValidationOptions;
  /** insecure: parseInsecureJwtSvid must reject the attack the same way (the rule does not need a key). */
  insecure?: boolean;
}

const cases: Case[] = [
  // Trust domains: the token's own sub picks the bundle.
  {
    name: "sub in trust domain B signed with A's key (kid of A) is rejected: keys are never pooled",
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'spiffe://b.org/impostor' }) }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /key ID "a-p256" is not in the JWT bundle of trust domain "b\.org"/,
  },
  {
    name: "sub in trust domain B signed with A's key and no kid is rejected",
    control: () => es256({ kid: undefined }),
    attack: () => es256({ kid: undefined, claims: claims({ sub: 'spiffe://b.org/impostor' }) }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /does not verify with any of the 1 EC P-256 key\(s\) in the JWT bundle of trust domain "b\.org"/,
  },
  {
    name: 'sub in a trust domain without a bundle is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'spiffe://c.org/x' }) }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /no JWT bundle for trust domain "c\.org" of JWT-SVID subject spiffe:\/\/c\.org\/x/,
  },
  {
    name: "a bundle source that answers with another trust domain's bundle is not trusted",
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'spiffe://b.org/x' }) }),
    // A buggy source that answers every trust domain with a.org's bundle.
    bundles: { getJwtBundleForTrustDomain: () => bundleA },
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /returned the bundle of trust domain "a\.org" when asked for "b\.org"/,
  },

  // alg
  {
    name: 'alg none is rejected',
    control: () => es256(),
    attack: () => handJwt({ alg: 'none', typ: 'JWT', kid: 'a-p256' }, claims()),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is "none"; it must be one of RS256/,
    insecure: true,
  },
  {
    name: 'alg None (odd case) is rejected',
    control: () => es256(),
    attack: () => handJwt({ alg: 'None', typ: 'JWT' }, claims()),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is "None"/,
    insecure: true,
  },
  {
    name: 'missing alg is rejected',
    control: () => es256(),
    attack: () => handJwt({ typ: 'JWT', kid: 'a-p256' }, claims()),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is missing/,
    insecure: true,
  },
  {
    name: 'HS256 keyed with the RSA public key PEM (key confusion) is rejected',
    control: () => jwt({ alg: 'RS256', key: rsa.privateKey, kid: 'a-rsa' }),
    attack: () =>
      handJwt(
        { alg: 'HS256', typ: 'JWT', kid: 'a-rsa' },
        claims(),
        rsa.publicKey.export({ type: 'spki', format: 'pem' }),
      ),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is "HS256"/,
    insecure: true,
  },
  {
    name: 'HS256 keyed with the EC public key DER and no kid is rejected',
    control: () => es256({ kid: undefined }),
    attack: () =>
      handJwt({ alg: 'HS256', typ: 'JWT' }, claims(), p256.publicKey.export({ type: 'spki', format: 'der' })),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is "HS256"/,
  },
  {
    name: 'HS512 with a shared secret is rejected',
    control: () => es256(),
    attack: () => handJwt({ alg: 'HS512', typ: 'JWT' }, claims(), hmacSecret),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is "HS512"/,
  },
  {
    name: 'EdDSA is rejected even when the Ed25519 key is in the bundle',
    control: () => es256(),
    attack: () => jwt({ alg: 'EdDSA', key: ed25519.privateKey, kid: 'a-ed25519' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /"alg" is "EdDSA"/,
    insecure: true,
  },

  // key type must fit the alg
  {
    name: 'ES256 header with kid of an RSA key is rejected',
    control: () => jwt({ alg: 'RS256', key: rsa.privateKey, kid: 'a-rsa' }),
    attack: () => es256({ kid: 'a-rsa' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /alg ES256 needs an EC P-256 key, but key "a-rsa" of trust domain "a\.org" is an RSA key/,
  },
  {
    name: 'ES256 header with kid of a P-384 key is rejected',
    control: () => jwt({ alg: 'ES384', key: p384.privateKey, kid: 'a-p384' }),
    attack: () => es256({ kid: 'a-p384' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /alg ES256 needs an EC P-256 key, but key "a-p384" .* is an EC P-384 key/,
  },
  {
    name: 'ES512 header with kid of a P-256 key is rejected',
    control: () => jwt({ alg: 'ES512', key: p521.privateKey, kid: 'a-p521' }),
    attack: () => jwt({ alg: 'ES512', key: p521.privateKey, kid: 'a-p256' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /alg ES512 needs an EC P-521 key, but key "a-p256" .* is an EC P-256 key/,
  },
  {
    name: 'RS256 header with kid of an EC key is rejected',
    control: () => jwt({ alg: 'RS256', key: rsa.privateKey, kid: 'a-rsa' }),
    attack: () => handJwt({ alg: 'RS256', typ: 'JWT', kid: 'a-p256' }, claims(), rsa.privateKey),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /alg RS256 needs an RSA key, but key "a-p256" .* is an EC P-256 key/,
  },
  {
    name: 'PS256 header with kid of an Ed25519 key is rejected',
    control: () => jwt({ alg: 'PS256', key: rsa.privateKey, kid: 'a-rsa' }),
    attack: () => jwt({ alg: 'PS256', key: rsa.privateKey, kid: 'a-ed25519' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /alg PS256 needs an RSA key, but key "a-ed25519" .* is an Ed25519 key/,
  },

  // kid
  {
    name: 'kid absent: only keys that verify are accepted',
    control: () => es256({ kid: undefined }),
    attack: () => es256({ kid: undefined, key: stranger.privateKey }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message:
      /no kid, alg ES256\) does not verify with any of the 1 EC P-256 key\(s\) in the JWT bundle of trust domain "a\.org"/,
  },
  {
    name: "kid absent and no key of the alg's type in the bundle is rejected",
    control: () => es256({ kid: undefined }),
    attack: () =>
      es256({ kid: undefined, claims: claims({ sub: 'spiffe://b.org/x' }), alg: 'ES384', key: p384.privateKey }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message:
      /no kid and the JWT bundle of trust domain "b\.org" has no EC P-384 key for alg ES384 \(it has 1 key\(s\)\)/,
  },
  {
    name: 'kid unknown is rejected even though the signature would verify with a key of the bundle',
    control: () => es256(),
    attack: () => es256({ kid: 'rotated-away' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /key ID "rotated-away" is not in the JWT bundle of trust domain "a\.org"/,
  },
  {
    name: 'kid that is not a string is rejected',
    control: () => es256(),
    attack: () => es256({ kid: undefined, header: { kid: 7 } }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"kid" must be a non-empty string when present, found 7/,
    insecure: true,
  },

  // signature
  {
    name: 'signature by a stranger key under a bundle kid is rejected',
    control: () => jwt({ alg: 'RS256', key: rsa.privateKey, kid: 'a-rsa' }),
    attack: () => jwt({ alg: 'RS256', key: strangerRsa.privateKey, kid: 'a-rsa' }),
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /signature \(RS256\) does not verify with key "a-rsa" of trust domain "a\.org"/,
  },
  {
    name: 'claims changed after signing are rejected',
    control: () => es256(),
    attack: async () => {
      const [h, , s] = (await es256()).split('.');
      return `${h}.${b64(claims({ sub: 'spiffe://a.org/admin' }))}.${s}`;
    },
    code: 'AUTH_ERR_JWT_SVID_UNTRUSTED',
    message: /signature \(ES256\) does not verify with key "a-p256"/,
  },
  {
    name: 'missing signature is rejected',
    control: () => es256(),
    attack: async () => `${(await es256()).split('.').slice(0, 2).join('.')}.`,
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /signature is missing/,
    insecure: true,
  },

  // exp
  {
    name: 'missing exp is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ exp: undefined }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /no "exp" claim/,
    insecure: true,
  },
  {
    name: 'exp that is not a number is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ exp: String(NOW_S + 300) }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"exp" claim must be a NumericDate/,
    insecure: true,
  },
  {
    name: 'expired token is rejected',
    control: () => es256({ claims: claims({ exp: NOW_S + 1 }) }),
    attack: () => es256({ claims: claims({ exp: NOW_S - 1 }) }),
    code: 'AUTH_ERR_JWT_SVID_EXPIRED',
    message: /expired at 2031-05-01T11:59:59\.000Z \(now 2031-05-01T12:00:00\.000Z, clock tolerance 0s\)/,
    insecure: true,
  },
  {
    name: 'exp equal to now is expired',
    control: () => es256({ claims: claims({ exp: NOW_S + 1 }) }),
    attack: () => es256({ claims: claims({ exp: NOW_S }) }),
    code: 'AUTH_ERR_JWT_SVID_EXPIRED',
    message: /expired at/,
    insecure: true,
  },
  {
    name: 'expired beyond the clock tolerance is rejected',
    control: () => es256({ claims: claims({ exp: NOW_S - 29 }) }),
    attack: () => es256({ claims: claims({ exp: NOW_S - 31 }) }),
    options: { now: NOW, clockToleranceSeconds: 30 },
    code: 'AUTH_ERR_JWT_SVID_EXPIRED',
    message: /clock tolerance 30s/,
    insecure: true,
  },

  // nbf
  {
    name: 'nbf in the future is rejected',
    control: () => es256({ claims: claims({ nbf: NOW_S }) }),
    attack: () => es256({ claims: claims({ nbf: NOW_S + 60 }) }),
    code: 'AUTH_ERR_JWT_SVID_EXPIRED',
    message: /not valid before 2031-05-01T12:01:00\.000Z/,
    insecure: true,
  },
  {
    name: 'nbf ahead by more than the clock tolerance is rejected',
    control: () => es256({ claims: claims({ nbf: NOW_S + 30 }) }),
    attack: () => es256({ claims: claims({ nbf: NOW_S + 31 }) }),
    options: { now: NOW, clockToleranceSeconds: 30 },
    code: 'AUTH_ERR_JWT_SVID_EXPIRED',
    message: /not valid before/,
    insecure: true,
  },
  {
    name: 'nbf that is not a number is rejected',
    control: () => es256({ claims: claims({ nbf: NOW_S }) }),
    attack: () => es256({ claims: claims({ nbf: 'yesterday' }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"nbf" claim must be a NumericDate, .*found "yesterday"|"nbf" claim must be a NumericDate/,
    insecure: true,
  },
  {
    name: 'iat that is not a number is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ iat: true }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"iat" claim must be a NumericDate/,
    insecure: true,
  },

  // aud
  {
    name: 'aud (array) without our audience is rejected',
    control: () => es256({ claims: claims({ aud: ['inventory', 'payments'] }) }),
    attack: () => es256({ claims: claims({ aud: ['inventory', 'shipping'] }) }),
    code: 'AUTH_ERR_JWT_SVID_AUDIENCE_MISMATCH',
    message: /audience \["inventory","shipping"\] contains none of the expected audiences \["payments"\]/,
    insecure: true,
  },
  {
    name: 'aud (string) other than our audience is rejected',
    control: () => es256({ claims: claims({ aud: 'payments' }) }),
    attack: () => es256({ claims: claims({ aud: 'payments-staging' }) }),
    code: 'AUTH_ERR_JWT_SVID_AUDIENCE_MISMATCH',
    message: /audience \["payments-staging"\] contains none of the expected audiences \["payments"\]/,
    insecure: true,
  },
  {
    name: 'aud matching any one of several accepted audiences passes; none matching fails',
    control: () => es256({ claims: claims({ aud: 'spiffe://a.org/payments' }) }),
    attack: () => es256({ claims: claims({ aud: 'spiffe://a.org/' }) }),
    audience: ['payments', 'spiffe://a.org/payments'],
    code: 'AUTH_ERR_JWT_SVID_AUDIENCE_MISMATCH',
    message:
      /\["spiffe:\/\/a\.org\/"\] contains none of the expected audiences \["payments","spiffe:\/\/a\.org\/payments"\]/,
    insecure: true,
  },
  {
    name: 'missing aud is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ aud: undefined }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /no "aud" claim/,
    insecure: true,
  },
  {
    name: 'empty aud array is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ aud: [] }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"aud" claim must be a string or a non-empty array of strings, found \[\]/,
    insecure: true,
  },
  {
    name: 'aud with a non-string member is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ aud: ['payments', 42] }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"aud" claim must be a string or a non-empty array of strings/,
    insecure: true,
  },

  // sub
  {
    name: 'missing sub is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: undefined }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /no "sub" claim/,
    insecure: true,
  },
  {
    name: 'sub that is not a string is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: ['spiffe://a.org/orders'] }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"sub" claim must be a string/,
    insecure: true,
  },
  {
    name: 'sub that is not a SPIFFE ID is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'https://a.org/orders' }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"sub" claim is not a valid SPIFFE ID: .*scheme/,
    insecure: true,
  },
  {
    name: 'sub with an upper-case trust domain is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'spiffe://A.org/orders' }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"sub" claim is not a valid SPIFFE ID: .*lower-case/,
    insecure: true,
  },
  {
    name: 'sub with a dot segment is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'spiffe://a.org/orders/../admin' }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /dot segments/,
    insecure: true,
  },
  {
    name: 'root-path sub (the trust domain itself) is rejected',
    control: () => es256(),
    attack: () => es256({ claims: claims({ sub: 'spiffe://a.org' }) }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"sub" claim spiffe:\/\/a\.org has no path/,
    insecure: true,
  },

  // header parameters
  {
    name: 'unknown crit extension is rejected',
    control: () => handJwt({ alg: 'ES256', typ: 'JWT', kid: 'a-p256' }, claims(), p256.privateKey),
    attack: () =>
      handJwt(
        { alg: 'ES256', typ: 'JWT', kid: 'a-p256', crit: ['urn:x:policy'], 'urn:x:policy': 1 },
        claims(),
        p256.privateKey,
      ),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"crit" lists extensions this validator does not understand \(\["urn:x:policy"\]\)/,
    insecure: true,
  },
  {
    name: 'crit b64 (unencoded payload) is rejected too',
    control: () => es256(),
    attack: () => handJwt({ alg: 'ES256', kid: 'a-p256', crit: ['b64'], b64: true }, claims(), p256.privateKey),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"crit" lists extensions .*\["b64"\]/,
    insecure: true,
  },
  {
    name: 'a header parameter outside alg/kid/typ (jku) is rejected',
    control: () => es256(),
    attack: () => es256({ header: { jku: 'https://evil.example/jwks.json' } }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /header must hold only "alg", "kid" and "typ"; found "jku"/,
    insecure: true,
  },
  {
    name: 'an embedded jwk header is rejected (keys come from bundles only)',
    control: () => es256(),
    attack: () => es256({ header: { jwk: stranger.publicKey.export({ format: 'jwk' }) } }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /found "jwk"/,
    insecure: true,
  },
  {
    name: 'typ JOSE is accepted; typ at+jwt is rejected',
    control: () => es256({ header: { typ: 'JOSE' } }),
    attack: () => es256({ header: { typ: 'at+jwt' } }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"typ" is "at\+jwt"; it must be "JWT" or "JOSE" when present/,
    insecure: true,
  },
  {
    name: 'typ absent is accepted; lower-case typ jwt is rejected',
    control: () => es256({ header: { typ: undefined } }),
    attack: () => es256({ header: { typ: 'jwt' } }),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /"typ" is "jwt"/,
    insecure: true,
  },

  // structure
  {
    name: 'a token with two parts is rejected',
    control: () => es256(),
    attack: async () => (await es256()).split('.').slice(0, 2).join('.'),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /JWS compact serialization \(3 dot-separated parts\), found 2 part/,
    insecure: true,
  },
  {
    name: 'a JWE (five parts) is rejected',
    control: () => es256(),
    attack: async () => `${await es256()}.AAAA.BBBB`,
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /must be a JWS; this is a JWE/,
    insecure: true,
  },
  {
    name: 'a header that is not JSON is rejected',
    control: () => es256(),
    attack: async () =>
      `${Buffer.from('{alg:ES256').toString('base64url')}.${(await es256()).split('.').slice(1).join('.')}`,
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /header is not base64url-encoded UTF-8 JSON/,
    insecure: true,
  },
  {
    name: 'a claims set that is a JSON array is rejected',
    control: () => es256(),
    attack: () =>
      handJwt({ alg: 'ES256', kid: 'a-p256' }, [SUB] as unknown as Record<string, unknown>, p256.privateKey),
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /claims set must be a JSON object/,
    insecure: true,
  },
  {
    name: 'a header with characters outside base64url is rejected',
    control: () => es256(),
    attack: async () => `+${await es256()}`,
    code: 'AUTH_ERR_JWT_SVID_INVALID',
    message: /header is not base64url/,
    insecure: true,
  },
];

describe('parseAndValidateJwtSvid rejects (each case with its positive control)', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const bundles = c.bundles ?? BUNDLES;
      const audience = c.audience ?? AUD;
      const options = c.options ?? AT;
      const control = await c.control();
      const svid = await parseAndValidateJwtSvid(control, bundles, audience, options);
      assert.ok(svid.id.toString().startsWith('spiffe://'));
      const attack = await c.attack();
      await assertRejects(() => parseAndValidateJwtSvid(attack, bundles, audience, options), c.code, c.message, attack);
    });
  }
});

describe('parseInsecureJwtSvid applies the same header and claim rules without a key', () => {
  for (const c of cases.filter((x) => x.insecure)) {
    test(c.name, async () => {
      const audience = c.audience ?? AUD;
      const options = c.options ?? AT;
      const control = await c.control();
      assert.equal(parseInsecureJwtSvid(control, audience, options).token, control);
      const attack = await c.attack();
      await assertRejects(() => parseInsecureJwtSvid(attack, audience, options), c.code, c.message, attack);
    });
  }

  test('does not check the signature: a token from a stranger key parses (only for our own Workload API)', async () => {
    const token = await es256({ key: stranger.privateKey, claims: claims({ aud: 'payments' }) });
    const svid = parseInsecureJwtSvid(token, AUD, { ...AT, hint: 'internal' });
    assert.equal(svid.id.toString(), SUB);
    assert.deepEqual(svid.audience, ['payments']);
    assert.equal(svid.hint, 'internal');
    await assertRejects(
      () => parseAndValidateJwtSvid(token, BUNDLES, AUD, AT),
      'AUTH_ERR_JWT_SVID_UNTRUSTED',
      /does not verify/,
      token,
    );
  });

  test('uses the current time by default', async () => {
    const now = Math.floor(Date.now() / 1000);
    const fresh = await es256({ claims: claims({ exp: now + 60, iat: now }) });
    const stale = await es256({ claims: claims({ exp: now - 60, iat: now - 120 }) });
    assert.equal(parseInsecureJwtSvid(fresh, AUD).id.toString(), SUB);
    assert.equal((await parseAndValidateJwtSvid(fresh, BUNDLES, AUD)).id.toString(), SUB);
    await assertRejects(() => parseInsecureJwtSvid(stale, AUD), 'AUTH_ERR_JWT_SVID_EXPIRED', /expired/, stale);
    await assertRejects(
      () => parseAndValidateJwtSvid(stale, BUNDLES, AUD),
      'AUTH_ERR_JWT_SVID_EXPIRED',
      /expired/,
      stale,
    );
  });
});

describe('bundle keys come only from "jwt-svid" entries of SPIFFE bundle JSON', () => {
  test('a key whose use is not jwt-svid is ignored and cannot validate a token', async () => {
    const td = await createTestTrustDomain('a.org');
    const caKey = createPrivateKey(await td.ca.keyPem());
    const sigKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const noUseKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const json = JSON.stringify({
      keys: [
        {
          use: 'x509-svid',
          kid: 'x509-root',
          ...createPublicKey(caKey).export({ format: 'jwk' }),
          x5c: [td.ca.certDer.toString('base64')],
        },
        { use: 'sig', kid: 'k-sig', ...sigKey.publicKey.export({ format: 'jwk' }) },
        { kid: 'k-nouse', ...noUseKey.publicKey.export({ format: 'jwk' }) },
        { use: 'jwt-svid', kid: 'k-jwt', ...jwtKey.publicKey.export({ format: 'jwk' }) },
      ],
    });
    const bundle = JwtBundle.parse('a.org', json);
    const source = new JwtBundleSet([bundle]);
    assert.deepEqual(
      bundle.authorities().map((a) => a.keyId),
      ['k-jwt'],
    );

    // positive control: the jwt-svid key validates
    const good = await es256({ key: jwtKey.privateKey, kid: 'k-jwt' });
    assert.equal((await parseAndValidateJwtSvid(good, source, AUD, AT)).id.toString(), SUB);

    for (const [kid, key] of [
      ['x509-root', caKey],
      ['k-sig', sigKey.privateKey],
      ['k-nouse', noUseKey.privateKey],
    ] as const) {
      const withKid = await es256({ key, kid });
      await assertRejects(
        () => parseAndValidateJwtSvid(withKid, source, AUD, AT),
        'AUTH_ERR_JWT_SVID_UNTRUSTED',
        new RegExp(`key ID "${kid}" is not in the JWT bundle of trust domain "a\\.org"`),
        withKid,
      );
      const noKid = await es256({ key, kid: undefined });
      await assertRejects(
        () => parseAndValidateJwtSvid(noKid, source, AUD, AT),
        'AUTH_ERR_JWT_SVID_UNTRUSTED',
        /does not verify with any of the 1 EC P-256 key/,
        noKid,
      );
    }
  });
});

describe('kid is optional', () => {
  test('without kid, the key that verifies is found among several of the same type', async () => {
    const second = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const bundle = new JwtBundle('a.org', [
      authority('first', p256.publicKey),
      authority('rsa', rsa.publicKey),
      authority('second', second.publicKey),
    ]);
    const token = await es256({ key: second.privateKey, kid: undefined });
    const svid = await parseAndValidateJwtSvid(token, new JwtBundleSet([bundle]), AUD, AT);
    assert.equal(svid.id.toString(), SUB);
  });

  test('an empty bundle validates nothing', async () => {
    const token = await es256({ kid: undefined });
    await assertRejects(
      () => parseAndValidateJwtSvid(token, new JwtBundleSet([new JwtBundle('a.org')]), AUD, AT),
      'AUTH_ERR_JWT_SVID_UNTRUSTED',
      /has no EC P-256 key for alg ES256 \(it has 0 key\(s\)\)/,
      token,
    );
  });
});

describe('arguments', () => {
  test('an empty expected audience is refused rather than accepting every audience', async () => {
    const token = await es256();
    for (const audience of [[], [''], 'payments' as unknown as string[]]) {
      await assert.rejects(
        () => parseAndValidateJwtSvid(token, BUNDLES, audience, AT),
        (err: unknown) => isAuthError(err, 'AUTH_ERR_CONFIG_INVALID') && /audience must be/.test(err.message),
      );
      assert.throws(
        () => parseInsecureJwtSvid(token, audience, AT),
        (err: unknown) => isAuthError(err, 'AUTH_ERR_CONFIG_INVALID'),
      );
    }
  });

  test('a negative clock tolerance and an invalid now are refused', async () => {
    const token = await es256();
    await assert.rejects(
      () => parseAndValidateJwtSvid(token, BUNDLES, AUD, { now: NOW, clockToleranceSeconds: -1 }),
      (err: unknown) => isAuthError(err, 'AUTH_ERR_CONFIG_INVALID') && /clockToleranceSeconds/.test(err.message),
    );
    assert.throws(
      () => parseInsecureJwtSvid(token, AUD, { now: new Date(Number.NaN) }),
      (err: unknown) => isAuthError(err, 'AUTH_ERR_CONFIG_INVALID') && /now must be a valid Date/.test(err.message),
    );
  });

  test('a non-string or empty token is malformed', async () => {
    for (const token of ['', 42 as unknown as string]) {
      await assert.rejects(
        () => parseAndValidateJwtSvid(token, BUNDLES, AUD, AT),
        (err: unknown) => isAuthError(err, 'AUTH_ERR_JWT_SVID_INVALID'),
      );
    }
  });
});

describe('JwtSvid', () => {
  test('keeps the bearer token out of JSON and inspect output', async () => {
    const token = await es256();
    const svid: JwtSvid = await parseAndValidateJwtSvid(token, BUNDLES, AUD, AT);
    const json = JSON.stringify(svid);
    assert.ok(!json.includes(token.split('.')[2]!));
    assert.deepEqual(JSON.parse(json), {
      id: SUB,
      audience: AUD,
      expiry: new Date((NOW_S + 300) * 1000).toISOString(),
      hint: '',
    });
    assert.ok(!inspect(svid).includes(token.split('.')[2]!));
    assert.match(inspect(svid), /spiffe:\/\/a\.org\/orders/);
  });

  test('audience and claims cannot be changed by the caller', async () => {
    const svid = await parseAndValidateJwtSvid(await es256(), BUNDLES, AUD, AT);
    assert.throws(() => svid.audience.push('other'));
    assert.throws(() => {
      svid.claims.sub = 'spiffe://a.org/admin';
    });
  });

  test('TrustDomain of the id is the one whose bundle validated it', async () => {
    const token = await es256({ kid: 'b-p256', key: bP256.privateKey, claims: claims({ sub: 'spiffe://b.org/x' }) });
    const svid = await parseAndValidateJwtSvid(token, BUNDLES, AUD, AT);
    assert.ok(svid.id.trustDomain.equals(TrustDomain.parse('b.org')));
  });
});
