// Every MUST / SHOULD of the SPIFFE bundle format, clause by clause, as
// libs/auth/docs/conformance.md lists them: SPIFFE Trust Domain and Bundle §4,
// X509-SVID §6, JWT-SVID §6. Each ignored-entry case has the same positive
// controls: the good key of the bundle still verifies a peer, and the bundle
// without the bad entry gives the same result.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { JwtBundleSet } from '../src/bundle/jwt-bundle.ts';
import {
  marshalSpiffeBundleJson,
  parseSpiffeBundleJson,
  type ParsedSpiffeBundle,
} from '../src/bundle/spiffe-bundle.ts';
import { X509BundleSet } from '../src/bundle/x509-bundle.ts';
import { isAuthError } from '../src/errors.ts';
import { TrustDomain } from '../src/spiffeid/trust-domain.ts';
import { parseAndValidateJwtSvid } from '../src/svid/jwt-svid.ts';
import { verifyX509Svid } from '../src/verify/x509-verify.ts';
import { createTestTrustDomain, type IssuedCertificate, type TestTrustDomain } from '@shop/auth-testing';

const TD = TrustDomain.parse('example.org');
const AUD = ['inventory'];

type Key = Record<string, unknown>;

let td: TestTrustDomain;
let peer: IssuedCertificate;
let other: TestTrustDomain;
let jwtKey: { privateKey: KeyObject; publicKey: KeyObject };
let goodX509: Key;
let goodJwt: Key;
let token: string;

before(async () => {
  [td, other] = await Promise.all([createTestTrustDomain('example.org'), createTestTrustDomain('example.org')]);
  peer = await td.issue('/payment');
  jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  goodX509 = { use: 'x509-svid', kty: 'EC', x5c: [td.ca.certDer.toString('base64')] };
  goodJwt = { use: 'jwt-svid', kid: 'good', ...jwtKey.publicKey.export({ format: 'jwk' }) };
  token = await new SignJWT({ sub: 'spiffe://example.org/payment', aud: AUD, exp: Math.floor(Date.now() / 1000) + 300 })
    .setProtectedHeader({ alg: 'ES256', kid: 'good', typ: 'JWT' })
    .sign(jwtKey.privateKey);
});

function parse(keys: unknown[], extra: Key = {}): ParsedSpiffeBundle {
  return parseSpiffeBundleJson(TD, JSON.stringify({ keys, ...extra }));
}

/** x509Verifies: does the bundle's X.509 part verify our peer's X.509-SVID? */
function x509Verifies(bundle: ParsedSpiffeBundle): boolean {
  try {
    verifyX509Svid(peer.chainDer, new X509BundleSet([bundle.x509Bundle]), { peerRole: 'client' });
    return true;
  } catch (err) {
    assert.ok(isAuthError(err, 'AUTH_ERR_PEER_UNVERIFIED'), String(err));
    return false;
  }
}

/** jwtVerifies: does the bundle's JWT part validate our peer's JWT-SVID? */
async function jwtVerifies(bundle: ParsedSpiffeBundle): Promise<boolean> {
  try {
    await parseAndValidateJwtSvid(token, new JwtBundleSet([bundle.jwtBundle]), AUD);
    return true;
  } catch (err) {
    assert.ok(isAuthError(err, 'AUTH_ERR_JWT_SVID_UNTRUSTED'), String(err));
    return false;
  }
}

describe('SPIFFE bundle: positive controls', () => {
  test('a clean bundle with one x509-svid and one jwt-svid key verifies both kinds of peer, with no warning', async () => {
    const b = parse([goodX509, goodJwt]);
    assert.deepEqual(b.warnings, []);
    assert.equal(x509Verifies(b), true);
    assert.equal(await jwtVerifies(b), true);
  });

  test("a CA of another trust domain's bundle does not verify the peer (the verifiers above can say no)", async () => {
    const b = parse([{ ...goodX509, x5c: [other.ca.certDer.toString('base64')] }]);
    assert.equal(x509Verifies(b), false);
    assert.equal(await jwtVerifies(b), false);
  });
});

// [clause, bad entry, the use it is for, whether the whole entry is skipped, fragment of the reason]
const ignored: [string, () => unknown, 'x509' | 'jwt', boolean, string][] = [
  ['TD&B §4.2.1: an unknown kty (x509-svid entry)', () => ({ ...goodX509, kty: 'PQC' }), 'x509', true, 'unknown "kty"'],
  [
    'TD&B §4.2.1: an unknown kty (jwt-svid entry)',
    () => ({ ...goodJwt, kid: 'bad', kty: 'PQC' }),
    'jwt',
    true,
    'unknown "kty"',
  ],
  ['TD&B §4.2.1: kty missing', () => ({ use: 'x509-svid', x5c: goodX509.x5c }), 'x509', true, 'no "kty"'],
  [
    'TD&B §4.2.1: a symmetric key (kty oct)',
    () => ({ use: 'jwt-svid', kid: 'bad', kty: 'oct', k: 'AAAA' }),
    'jwt',
    true,
    'symmetric',
  ],
  ['TD&B §4.2.2: an unknown use', () => ({ ...goodJwt, kid: 'bad', use: 'wit-svid' }), 'jwt', true, 'unknown "use"'],
  [
    'TD&B §4.2.2: use values are case sensitive',
    () => ({ ...goodX509, use: 'X509-SVID' }),
    'x509',
    true,
    'unknown "use"',
  ],
  ['TD&B §4.2.2: use missing', () => ({ kty: 'EC', x5c: goodX509.x5c }), 'x509', true, 'no "use"'],
  ['TD&B §4.1.3: an entry that is not an object', () => 'x509-svid', 'x509', true, 'not a JSON object'],
  ['X509-SVID §6.2: x5c missing', () => ({ use: 'x509-svid', kty: 'EC' }), 'x509', true, 'no certificate in "x5c"'],
  [
    'X509-SVID §6.2: x5c empty',
    () => ({ use: 'x509-svid', kty: 'EC', x5c: [] }),
    'x509',
    true,
    'no certificate in "x5c"',
  ],
  [
    'X509-SVID §6.2: x5c certificate does not parse',
    () => ({ use: 'x509-svid', kty: 'EC', x5c: ['AAAA'] }),
    'x509',
    true,
    'does not parse',
  ],
  ['JWT-SVID §6.1: kid missing', () => ({ ...goodJwt, kid: undefined }), 'jwt', true, 'no "kid"'],
  ['JWT-SVID §6.1: kid empty', () => ({ ...goodJwt, kid: '' }), 'jwt', true, 'no "kid"'],
  ['a private key in a bundle', () => ({ ...goodJwt, kid: 'bad', d: 'AAAA' }), 'jwt', true, 'private key'],
  [
    'a jwt-svid key that is not a valid public key',
    () => ({ use: 'jwt-svid', kid: 'bad', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }),
    'jwt',
    true,
    'not a valid public key',
  ],
];

describe('SPIFFE bundle: a key entry the standards say to ignore is skipped with a warning; the rest stays in force', () => {
  for (const [clause, badEntry, kind, skipped, fragment] of ignored) {
    test(clause, async () => {
      const bad = badEntry();
      // Bad entry between the good ones, so an index in the warning is checked for real.
      const withBad = parse([goodX509, bad, goodJwt]);
      const withoutBad = parse([goodX509, goodJwt]);
      assert.equal(withBad.warnings.length, 1, JSON.stringify(withBad.warnings));
      const w = withBad.warnings[0]!;
      assert.equal(w.index, 1);
      assert.equal(w.skipped, skipped);
      assert.equal(w.trustDomain, 'example.org');
      assert.ok(w.reason.includes(fragment), w.reason);
      assert.ok(w.message.includes('keys[1]') && w.message.includes('example.org'), w.message);
      // Positive controls: the good keys verify, exactly as without the bad entry.
      assert.equal(x509Verifies(withBad), true);
      assert.equal(await jwtVerifies(withBad), true);
      assert.equal(x509Verifies(withBad), x509Verifies(withoutBad));
      assert.equal(await jwtVerifies(withBad), await jwtVerifies(withoutBad));
      assert.equal(withBad.x509Bundle.authorities.length, withoutBad.x509Bundle.authorities.length);
      assert.equal(withBad.jwtBundle.authorities().length, withoutBad.jwtBundle.authorities().length);
      // A bundle whose only key is the bad one trusts nothing for that use (TD&B §4.1.3).
      const onlyBad = parse([bad]);
      assert.equal(onlyBad.warnings.length, 1);
      assert.equal(kind === 'x509' ? x509Verifies(onlyBad) : await jwtVerifies(onlyBad), false);
    });
  }

  test('a repeated kid: the first entry is used, the later one skipped with a warning', async () => {
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const b = parse([goodJwt, { ...goodJwt, ...otherKey }]);
    assert.equal(b.warnings[0]?.index, 1);
    assert.match(b.warnings[0].reason, /repeats the "kid"/);
    assert.equal(await jwtVerifies(b), true);
    assert.equal(await jwtVerifies(parse([goodJwt])), true);
  });

  test('the warning names the kid and use of a skipped jwt-svid entry', () => {
    const b = parse([{ ...goodJwt, kid: 'k-2024', kty: 'PQC' }]);
    assert.equal(b.warnings[0]?.kid, 'k-2024');
    assert.equal(b.warnings[0].use, 'jwt-svid');
    assert.match(b.warnings[0].message, /keys\[0\] \(use "jwt-svid", kid "k-2024"\) has an unknown "kty"/);
  });
});

describe('SPIFFE bundle: entries used in part', () => {
  test('X509-SVID §6.2: of several x5c certificates only the first is used, with a warning', () => {
    const b = parse([{ ...goodX509, x5c: [td.ca.certDer.toString('base64'), other.ca.certDer.toString('base64')] }]);
    assert.equal(b.x509Bundle.authorities.length, 1);
    assert.equal(b.x509Bundle.authorities[0]?.fingerprint256, td.bundle.authorities[0]?.fingerprint256);
    assert.equal(b.warnings[0]?.skipped, false);
    assert.match(b.warnings[0].reason, /only the first is used/);
    assert.equal(x509Verifies(b), true);
    // The ignored second certificate is not trusted: a peer of `other` does not verify.
    const reversed = parse([
      { ...goodX509, x5c: [other.ca.certDer.toString('base64'), td.ca.certDer.toString('base64')] },
    ]);
    assert.equal(x509Verifies(reversed), false);
  });

  test('X509-SVID §6.1: an x509-svid entry with a kid is used, with a warning (a publisher must not set it)', () => {
    const b = parse([{ ...goodX509, kid: 'x' }]);
    assert.equal(x509Verifies(b), true);
    assert.equal(b.warnings[0]?.skipped, false);
    assert.match(b.warnings[0].reason, /must not have/);
  });
});

describe('SPIFFE bundle: the JWK Set itself', () => {
  test('TD&B §4.1: parameters not defined are allowed and not required', async () => {
    const b = parse([goodX509, goodJwt], { x_vendor: { anything: true } });
    assert.deepEqual(b.warnings, []);
    assert.equal(x509Verifies(b), true);
    assert.equal(await jwtVerifies(b), true);
    assert.equal(b.sequence, undefined, 'spiffe_sequence is optional (SHOULD)');
    assert.equal(b.refreshHintSeconds, undefined, 'spiffe_refresh_hint is optional (SHOULD)');
  });

  test('TD&B §4.1.3: keys MUST be present', () => {
    assert.ok(parse([]).x509Bundle.isEmpty); // positive control: present and empty is fine
    assert.throws(
      () => parseSpiffeBundleJson(TD, '{"spiffe_sequence":1}'),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_BUNDLE_INVALID') && e.message.includes('"keys" array'),
    );
  });

  test('TD&B §4.1.3: an empty keys array revokes everything: all SVIDs of the trust domain are untrusted', async () => {
    const b = parse([]);
    assert.equal(x509Verifies(b), false);
    assert.equal(await jwtVerifies(b), false);
  });

  test('TD&B §4.1.3: a bundle with no usable key is effectively empty: all SVIDs are untrusted', async () => {
    const b = parse([
      { ...goodX509, kty: 'PQC' },
      { ...goodJwt, use: 'future-svid' },
    ]);
    assert.equal(b.warnings.length, 2);
    assert.equal(x509Verifies(b), false);
    assert.equal(await jwtVerifies(b), false);
  });

  test('X509-SVID §6.2 / JWT-SVID §6.2: with no entry of a use, that SVID type is not supported (nothing trusted)', async () => {
    const onlyX509 = parse([goodX509]);
    assert.equal(x509Verifies(onlyX509), true);
    assert.equal(await jwtVerifies(onlyX509), false);
    const onlyJwt = parse([goodJwt]);
    assert.equal(await jwtVerifies(onlyJwt), true);
    assert.equal(x509Verifies(onlyJwt), false);
  });

  test('TD&B §4.1.1: spiffe_sequence MUST be an integer, kept with 64 bits of precision', () => {
    assert.equal(parse([], { spiffe_sequence: 42 }).sequence, 42);
    const big = parseSpiffeBundleJson(TD, '{"keys":[],"spiffe_sequence":18446744073709551615}');
    assert.equal(big.sequence, 18446744073709551615n);
    assert.match(marshalSpiffeBundleJson(big), /"spiffe_sequence": 18446744073709551615\b/);
    for (const bad of ['"1"', '1.5', 'true']) {
      assert.throws(
        () => parseSpiffeBundleJson(TD, `{"keys":[],"spiffe_sequence":${bad}}`),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_BUNDLE_INVALID') && e.message.includes('spiffe_sequence'),
      );
    }
  });

  test('TD&B §4.1.2: spiffe_refresh_hint MUST be an integer (seconds)', () => {
    assert.equal(parse([], { spiffe_refresh_hint: 300 }).refreshHintSeconds, 300);
    for (const bad of ['"300"', '1.5', '-1']) {
      assert.throws(
        () => parseSpiffeBundleJson(TD, `{"keys":[],"spiffe_refresh_hint":${bad}}`),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_BUNDLE_INVALID') && e.message.includes('spiffe_refresh_hint'),
      );
    }
  });

  test('publishing: x509-svid entries have use x509-svid, exactly one x5c certificate and no kid; jwt-svid entries have use jwt-svid and a kid (X509-SVID §6.1, JWT-SVID §6.1)', () => {
    const b = parse([goodX509, goodJwt], { spiffe_sequence: 3, spiffe_refresh_hint: 60 });
    const doc = JSON.parse(marshalSpiffeBundleJson(b)) as { keys: Key[]; spiffe_sequence: number };
    const x = doc.keys.filter((k) => k.use === 'x509-svid');
    const j = doc.keys.filter((k) => k.use === 'jwt-svid');
    assert.equal(x.length, 1);
    assert.equal((x[0]!.x5c as string[]).length, 1);
    assert.equal('kid' in x[0]!, false);
    assert.equal(typeof x[0]!.kty, 'string', 'kty MUST be set (TD&B §4.2.1)');
    assert.equal(j.length, 1);
    assert.equal(j[0]!.kid, 'good');
    assert.equal(doc.spiffe_sequence, 3);
    // And what we write reads back with no warning.
    assert.deepEqual(parseSpiffeBundleJson(TD, marshalSpiffeBundleJson(b)).warnings, []);
  });
});
