import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  adaptMatcher,
  applyAuthorizer,
  authorizeAny,
  authorizeAnyOf,
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
  const result = a(id, []);
  if (result.ok) return true;
  assert.ok(isAuthError(result.error, 'AUTH_ERR_PEER_UNAUTHORIZED'));
  assert.ok(result.error.message.includes(`unexpected ID "${id.toString()}"`), 'the error names the unexpected ID');
  assert.ok(result.error.message.includes(a.rule), 'the error names the rule');
  return false;
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
    [
      'authorizeAnyOf',
      authorizeAnyOf(authorizeMemberOf('partner.example'), authorizeId(order)),
      [partner, order],
      [payment],
    ],
    ['authorizeAnyOf with no authorizers', authorizeAnyOf(), [], [order, partner]],
  ];
  for (const [name, authorizer, allowed, denied] of table) {
    test(`${name}: allows ${allowed.length} (positive controls), denies ${denied.length}`, () => {
      for (const id of allowed) assert.equal(allows(authorizer, id), true, id.toString());
      for (const id of denied) assert.equal(allows(authorizer, id), false, id.toString());
    });
  }
  test('an authorizer answers with a result and never throws for a refused peer', () => {
    assert.deepEqual(authorizeId(order)(order, []), { ok: true }, 'positive control');
    const refused = authorizeId(order)(payment, []);
    assert.equal(refused.ok, false);
  });
  test('authorizeAnyOf: the rule and the refusal name every rule it tried', () => {
    const members = authorizeMemberOf('example.org');
    const partners = authorizeOneOf('spiffe://partner.example/reader');
    const either = authorizeAnyOf(members, partners);
    assert.equal(either.rule, `${members.rule} or ${partners.rule}`);
    assert.equal(either(partner, []).ok, true, 'positive control: the second rule allows');
    const refused = either(SpiffeId.parse('spiffe://partner.example/writer'), []);
    assert.ok(!refused.ok);
    assert.match(refused.error.message, /member of trust domain example\.org or ID is one of \[spiffe:\/\/partner/);
  });
  test('a custom rule that throws is a refusal with the thrown error as cause (it fails closed)', () => {
    assert.deepEqual(applyAuthorizer(authorizeId(order), order, []), { ok: true }, 'positive control');
    const bug = new TypeError('matcher bug');
    const broken = adaptMatcher(() => {
      throw bug;
    }, 'broken rule');
    const result = applyAuthorizer(broken, order, []);
    assert.ok(!result.ok);
    assert.ok(isAuthError(result.error, 'AUTH_ERR_PEER_UNAUTHORIZED'));
    assert.equal(result.error.cause, bug);
  });
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
