// Issue 17, defect 5: payment's error texts quote a caller's input only
// truncated, so a huge field name or path cannot make a huge reply.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { chargeBody, createIdentity, errorOf, get, post, startPayment, type Identity } from './harness.ts';

let id: Identity;
before(async () => {
  id = await createIdentity();
});

test('regression: an unknown 60 000-character field and a long unknown path are named only by their start', async (t) => {
  const h = await startPayment(t, id);
  // Positive controls: a valid charge, and a short unknown field named whole.
  assert.equal((await post(h.app, '/api/charge', chargeBody('o-echo-1'))).statusCode, 201);
  const short = await post(h.app, '/api/charge', chargeBody('o-echo-2', { tip: 5 }));
  assert.equal(short.statusCode, 400);
  assert.match(errorOf(short).message, /additional properties: tip$/);

  const field = await post(h.app, '/api/charge', chargeBody('o-echo-3', { ['f'.repeat(60_000)]: 1 }));
  assert.equal(field.statusCode, 400);
  assert.equal(errorOf(field).code, 'INVALID_REQUEST');
  assert.ok(errorOf(field).message.length < 200, `message is ${errorOf(field).message.length} characters`);
  assert.ok(errorOf(field).message.endsWith(`: ${'f'.repeat(64)}…`), errorOf(field).message);

  const path = await get(h.app, `/api/${'p'.repeat(8000)}`);
  assert.equal(path.statusCode, 404);
  assert.equal(errorOf(path).code, 'NOT_FOUND');
  assert.ok(errorOf(path).message.length < 100, `message is ${errorOf(path).message.length} characters`);
  assert.equal(await h.store.countPayments(), 1, 'only the control charge was stored');
});
