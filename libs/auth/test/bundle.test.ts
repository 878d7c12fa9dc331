import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { JwtBundle } from '../src/bundle/jwt-bundle.ts';
import { marshalSpiffeBundleJson, parseSpiffeBundleJson } from '../src/bundle/spiffe-bundle.ts';
import { X509Bundle, X509BundleSet } from '../src/bundle/x509-bundle.ts';
import { isAuthError } from '../src/errors.ts';
import { TrustDomain } from '../src/spiffeid/trust-domain.ts';
import { createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

describe('bundles per trust domain', () => {
  let a: TestTrustDomain;
  let b: TestTrustDomain;
  before(async () => {
    [a, b] = await Promise.all([createTestTrustDomain('example.org'), createTestTrustDomain('partner.example')]);
  });

  test('a bundle set is keyed by trust domain, federated bundles included', () => {
    const set = new X509BundleSet([a.bundle, b.bundle]);
    assert.deepEqual(set.trustDomains().map(String), ['example.org', 'partner.example']);
    assert.equal(set.getX509BundleForTrustDomain(TrustDomain.parse('partner.example')), b.bundle);
    assert.throws(
      () => set.getX509BundleForTrustDomain(TrustDomain.parse('other.example')),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_BUNDLE_NOT_FOUND') && e.message.includes('other.example'),
    );
    assert.throws(
      () => new X509BundleSet([a.bundle, a.bundle]),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_BUNDLE_INVALID'),
    );
  });

  test('DER and PEM encodings round-trip and duplicates collapse', () => {
    const fromDer = X509Bundle.fromDer('example.org', Buffer.concat([a.ca.certDer, a.ca.certDer]));
    assert.equal(fromDer.authorities.length, 1);
    assert.ok(X509Bundle.fromPem('example.org', fromDer.toPem()).equals(a.bundle));
  });

  test('SPIFFE bundle JSON: parse and marshal round-trip x509-svid and jwt-svid keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'jwt-svid' };
    const json = JSON.stringify({
      keys: [
        { use: 'x509-svid', kty: 'EC', x5c: [a.ca.certDer.toString('base64')] },
        jwk,
        { use: 'something-else', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' },
      ],
      spiffe_sequence: 7,
      spiffe_refresh_hint: 300,
    });
    const td = TrustDomain.parse('example.org');
    const parsed = parseSpiffeBundleJson(td, json);
    assert.equal(parsed.x509Bundle.authorities.length, 1);
    assert.equal(parsed.jwtBundle.authorities().length, 1, 'a key whose use is not jwt-svid is ignored');
    assert.deepEqual(
      parsed.warnings.map((w) => [w.index, w.use, w.skipped]),
      [[2, 'something-else', true]],
      'the ignored key is named',
    );
    assert.equal(parsed.sequence, 7);
    assert.equal(parsed.refreshHintSeconds, 300);
    const again = parseSpiffeBundleJson(td, marshalSpiffeBundleJson(parsed));
    assert.ok(again.x509Bundle.equals(parsed.x509Bundle));
    assert.equal(again.jwtBundle.findAuthority('k1')?.publicKey.equals(ec.publicKey), true);
    assert.equal(JwtBundle.parse('example.org', json).findAuthority('k1')?.keyId, 'k1');
  });

  const bad: [string, string, string][] = [
    ['not JSON', '{', 'not valid JSON'],
    ['no keys array', '{"x":1}', '"keys" array'],
    ['keys not an array', '{"keys":{}}', '"keys" array'],
    ['bad refresh hint', '{"keys":[],"spiffe_refresh_hint":1.5}', 'spiffe_refresh_hint'],
    ['bad sequence', '{"keys":[],"spiffe_sequence":"1"}', 'spiffe_sequence'],
  ];
  test('valid empty bundle JSON parses (positive control for the cases below)', () => {
    assert.equal(parseSpiffeBundleJson(TrustDomain.parse('example.org'), '{"keys":[]}').x509Bundle.isEmpty, true);
  });
  // Malformed key entries no longer fail the bundle: test/spiffe-bundle-spec.test.ts covers them.
  for (const [name, json, fragment] of bad) {
    test(`rejects bundle JSON: ${name}`, () => {
      assert.throws(
        () => parseSpiffeBundleJson(TrustDomain.parse('example.org'), json),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_BUNDLE_INVALID') && e.message.includes(fragment),
      );
    });
  }
});
