import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAuthError } from '../src/errors.ts';
import { SpiffeId } from '../src/spiffeid/spiffe-id.ts';
import { TrustDomain } from '../src/spiffeid/trust-domain.ts';

function rejects(fn: () => unknown, code: string, includes: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isAuthError(err), `expected AuthError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.ok(
      err.message.includes(includes),
      `message ${JSON.stringify(err.message)} should include ${JSON.stringify(includes)}`,
    );
    return true;
  });
}

describe('SpiffeId.parse', () => {
  test('accepts valid IDs (positive controls)', () => {
    for (const s of [
      'spiffe://example.org',
      'spiffe://example.org/payment',
      'spiffe://example.org/ns/prod/sa/Payment_v2.1-x',
      'spiffe://a-b_c.d0/x',
      'spiffe://example.org/...x/.hidden/x..',
    ]) {
      const id = SpiffeId.parse(s);
      assert.equal(id.toString(), s);
    }
    const id = SpiffeId.parse('spiffe://example.org/ns/prod');
    assert.equal(id.trustDomain.name, 'example.org');
    assert.equal(id.path, '/ns/prod');
    assert.equal(SpiffeId.parse('spiffe://example.org').isRoot, true);
  });

  test('accepts an ID of exactly 2048 bytes and rejects 2049', () => {
    const prefix = 'spiffe://example.org/';
    const ok = prefix + 'a'.repeat(2048 - prefix.length);
    assert.equal(Buffer.byteLength(ok), 2048);
    assert.equal(SpiffeId.parse(ok).toString(), ok);
    rejects(() => SpiffeId.parse(ok + 'a'), 'AUTH_ERR_SPIFFE_ID_INVALID', 'at most 2048 bytes');
  });

  const invalid: [string, string][] = [
    ['', 'empty'],
    ['example.org/payment', 'scheme is missing or invalid'],
    ['https://example.org/payment', 'scheme is missing or invalid'],
    ['SPIFFE://example.org/payment', 'lower-case "spiffe"'],
    ['spiffe:///payment', 'trust domain is missing'],
    ['spiffe://Example.org/payment', 'trust domain must be lower-case'],
    ['spiffe://example.org:8443/payment', 'must not include a port'],
    ['spiffe://user@example.org/payment', 'must not include user info'],
    ['spiffe://exa mple.org/payment', 'trust domain characters'],
    ['spiffe://example.org/payment?x=1', 'must not include a query'],
    ['spiffe://example.org/payment#frag', 'must not include a fragment'],
    ['spiffe://example.org?x=1', 'must not include a query'],
    ['spiffe://example.org/', 'trailing slash'],
    ['spiffe://example.org/payment/', 'trailing slash'],
    ['spiffe://example.org//payment', 'empty segments'],
    ['spiffe://example.org/./payment', 'dot segments'],
    ['spiffe://example.org/a/../payment', 'dot segments'],
    ['spiffe://example.org/pay%20ment', 'percent-encoded'],
    ['spiffe://example.org/pay ment', 'path segment characters'],
    ['spiffe://example.org/paymént', 'path segment characters'],
  ];
  for (const [input, why] of invalid) {
    test(`rejects ${JSON.stringify(input)}: ${why}`, () => {
      rejects(() => SpiffeId.parse(input), 'AUTH_ERR_SPIFFE_ID_INVALID', why);
    });
  }

  test('compares exactly, case-sensitive in the path', () => {
    const a = SpiffeId.parse('spiffe://example.org/Payment');
    assert.equal(a.equals('spiffe://example.org/Payment'), true);
    assert.equal(a.equals(SpiffeId.parse('spiffe://example.org/payment')), false);
    assert.equal(a.memberOf('example.org'), true);
    assert.equal(a.memberOf(TrustDomain.parse('example.com')), false);
  });

  test('fromSegments and fromPath validate like parse', () => {
    assert.equal(SpiffeId.fromSegments('example.org', 'ns', 'prod').toString(), 'spiffe://example.org/ns/prod');
    assert.equal(SpiffeId.fromPath('example.org', '/payment').toString(), 'spiffe://example.org/payment');
    rejects(() => SpiffeId.fromSegments('example.org', 'a/b', '..'), 'AUTH_ERR_SPIFFE_ID_INVALID', 'dot segments');
    rejects(() => SpiffeId.fromPath('example.org', 'payment'), 'AUTH_ERR_SPIFFE_ID_INVALID', 'must begin with "/"');
  });
});

describe('TrustDomain.parse', () => {
  test('accepts a name or a SPIFFE ID (positive controls)', () => {
    assert.equal(TrustDomain.parse('example.org').name, 'example.org');
    assert.equal(TrustDomain.parse('spiffe://example.org/payment').name, 'example.org');
    assert.equal(TrustDomain.parse('example.org').idString(), 'spiffe://example.org');
    assert.ok(TrustDomain.parse('a.b').equals(TrustDomain.parse('spiffe://a.b')));
  });
  const invalid: [string, string][] = [
    ['', 'missing'],
    ['Example.org', 'lower-case'],
    ['example.org:443', 'port'],
    ['https://example.org/x', 'scheme must be "spiffe"'],
    ['exa$mple', 'characters are limited'],
    ['a'.repeat(256), 'at most 255 bytes'],
  ];
  for (const [input, why] of invalid) {
    test(`rejects ${JSON.stringify(input.slice(0, 30))}: ${why}`, () => {
      rejects(() => TrustDomain.parse(input), 'AUTH_ERR_TRUST_DOMAIN_INVALID', why);
    });
  }
});
