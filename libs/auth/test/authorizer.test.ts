import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  adaptMatcher,
  authorizeAny,
  authorizeId,
  authorizeMemberOf,
  authorizeOneOf,
  type Authorizer,
} from '../src/authorize/authorizer.ts';
import { isAuthError } from '../src/errors.ts';
import { SpiffeId } from '../src/spiffeid/spiffe-id.ts';

const order = SpiffeId.parse('spiffe://example.org/order');
const payment = SpiffeId.parse('spiffe://example.org/payment');
const partner = SpiffeId.parse('spiffe://partner.example/reader');

function allows(a: Authorizer, id: SpiffeId): boolean {
  try {
    a(id, []);
    return true;
  } catch (err) {
    assert.ok(isAuthError(err, 'AUTH_ERR_PEER_UNAUTHORIZED'));
    assert.ok(err.message.includes(`unexpected ID "${id.toString()}"`), 'the error names the unexpected ID');
    assert.ok(err.message.includes(a.rule), 'the error names the rule');
    return false;
  }
}

describe('authorizers', () => {
  const table: [string, Authorizer, SpiffeId[], SpiffeId[]][] = [
    ['authorizeAny', authorizeAny(), [order, partner], []],
    ['authorizeId', authorizeId('spiffe://example.org/order'), [order], [payment, partner]],
    ['authorizeOneOf', authorizeOneOf(order, 'spiffe://partner.example/reader'), [order, partner], [payment]],
    ['authorizeMemberOf', authorizeMemberOf('example.org'), [order, payment], [partner]],
    [
      'adaptMatcher',
      adaptMatcher((id) => id.path.startsWith('/pay'), 'path starts with /pay'),
      [payment],
      [order, partner],
    ],
  ];
  for (const [name, authorizer, allowed, denied] of table) {
    test(`${name}: allows ${allowed.length} (positive controls), denies ${denied.length}`, () => {
      for (const id of allowed) assert.equal(allows(authorizer, id), true, id.toString());
      for (const id of denied) assert.equal(allows(authorizer, id), false, id.toString());
    });
  }
  test('invalid IDs in a rule fail when the rule is built, not when a peer calls', () => {
    assert.throws(
      () => authorizeId('spiffe://example.org/'),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_SPIFFE_ID_INVALID'),
    );
    assert.throws(
      () => authorizeMemberOf('Example.org'),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_TRUST_DOMAIN_INVALID'),
    );
  });
});
