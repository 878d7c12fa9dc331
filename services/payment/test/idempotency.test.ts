import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  ORDER,
  chargeBody,
  createIdentity,
  errorOf,
  get,
  post,
  startPayment,
  type Body,
  type Identity,
} from './harness.ts';

const ORDER_V2 = 'spiffe://example.org/order-v2';

let id: Identity;
before(async () => {
  id = await createIdentity(['/order', '/order-v2', '/payment', '/inventory']);
});

/** gate is a processor sleep the test releases by hand, so requests overlap for as long as it wants. */
function gate(): { sleep: () => Promise<void>; open: () => void; waiting: () => number } {
  let waiters: (() => void)[] = [];
  return {
    sleep: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
      }),
    open: () => {
      for (const w of waiters) w();
      waiters = [];
    },
    waiting: () => waiters.length,
  };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), 'condition never became true');
}

describe('idempotency keys (Stripe semantics)', () => {
  test('a retried charge with the same key charges once and replays the first answer byte for byte', async (t) => {
    const h = await startPayment(t, id);
    const first = await post(h.app, '/api/charge', chargeBody('o-1'), { key: 'k-1' });
    assert.equal(first.statusCode, 201);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    // Same body with its properties in another order is the same request.
    const reordered = { user_id: 'user-1', currency: 'EUR', amount: 1999, order_id: 'o-1' };
    for (const body of [chargeBody('o-1'), reordered]) {
      const retry = await post(h.app, '/api/charge', body, { key: 'k-1' });
      assert.equal(retry.statusCode, 201);
      assert.equal(retry.body, first.body);
      assert.equal(retry.headers['content-type'], first.headers['content-type']);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
    }
    assert.equal(await h.store.countPayments(), 1);
  });

  test('a declined charge is stored under its key too: the retry gets the same 402', async (t) => {
    const h = await startPayment(t, id);
    const body = chargeBody('o-d', { card_number: '4000000000009995' });
    const first = await post(h.app, '/api/charge', body, { key: 'k-d' });
    const retry = await post(h.app, '/api/charge', body, { key: 'k-d' });
    assert.equal(first.statusCode, 402);
    assert.equal(retry.statusCode, 402);
    assert.equal(retry.body, first.body);
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    assert.equal(await h.store.countPayments(), 1);
  });

  test('same key, different body → 422 IDEMPOTENCY_KEY_REUSED; also across endpoints', async (t) => {
    const h = await startPayment(t, id);
    const first = await post(h.app, '/api/charge', chargeBody('o-2'), { key: 'k-2' });
    const paymentId = first.json<{ payment_id: string }>().payment_id;
    for (const body of [
      chargeBody('o-2', { amount: 2000 }),
      chargeBody('o-3'),
      chargeBody('o-2', { card_number: '4242424242424242' }),
    ]) {
      const res = await post(h.app, '/api/charge', body, { key: 'k-2' });
      assert.equal(res.statusCode, 422, JSON.stringify(body));
      assert.equal(errorOf(res).code, 'IDEMPOTENCY_KEY_REUSED');
    }
    const refund = await post(h.app, '/api/refund', { payment_id: paymentId }, { key: 'k-2' });
    assert.equal(refund.statusCode, 422);
    assert.match(errorOf(refund).message, /POST \/api\/charge/);
    assert.equal(await h.store.countPayments(), 1);
  });

  test('concurrent requests with one key: exactly one 201, the others 409 in progress with Retry-After, then replays', async (t) => {
    const g = gate();
    const h = await startPayment(t, id, { processor: { faults: { latencyMs: 50 }, sleep: g.sleep } });
    const first = post(h.app, '/api/charge', chargeBody('o-c'), { key: 'k-c' });
    await until(() => g.waiting() === 1);
    const others = await Promise.all(
      Array.from({ length: 5 }, () => post(h.app, '/api/charge', chargeBody('o-c'), { key: 'k-c' })),
    );
    for (const res of others) {
      assert.equal(res.statusCode, 409);
      assert.equal(errorOf(res).code, 'IDEMPOTENCY_KEY_IN_PROGRESS');
      assert.equal(res.headers['retry-after'], '1');
    }
    g.open();
    const done = await first;
    assert.equal(done.statusCode, 201);
    const replay = await post(h.app, '/api/charge', chargeBody('o-c'), { key: 'k-c' });
    assert.equal(replay.body, done.body);
    assert.equal(await h.store.countPayments(), 1);
  });

  test('concurrent requests with one key, real timers: one 201, the rest 409 or replays, one payment', async (t) => {
    const h = await startPayment(t, id, { processor: { faults: { latencyMs: 100 } } });
    const all = await Promise.all(
      Array.from({ length: 8 }, () => post(h.app, '/api/charge', chargeBody('o-cr'), { key: 'k-cr' })),
    );
    const fresh = all.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined);
    assert.equal(fresh.length, 1);
    for (const r of all) {
      if (r === fresh[0]) continue;
      assert.ok(
        r.statusCode === 409
          ? errorOf(r).code === 'IDEMPOTENCY_KEY_IN_PROGRESS'
          : r.headers['idempotent-replayed'] === 'true',
        r.body,
      );
    }
    assert.equal(await h.store.countPayments(), 1);
  });

  test('a new key for an already charged order → 409 ORDER_ALREADY_CHARGED naming the payment; nothing charged twice', async (t) => {
    const h = await startPayment(t, id);
    const first = await post(h.app, '/api/charge', chargeBody('o-4'), { key: 'k-4a' });
    const paymentId = first.json<{ payment_id: string }>().payment_id;
    const second = await post(h.app, '/api/charge', chargeBody('o-4'), { key: 'k-4b' });
    assert.equal(second.statusCode, 409);
    assert.equal(errorOf(second).code, 'ORDER_ALREADY_CHARGED');
    assert.equal(errorOf(second).payment_id, paymentId);
    assert.match(errorOf(second).message, new RegExp(paymentId));
    assert.equal(await h.store.countPayments(), 1);
    // Not stored under the new key: fixed, the same key charges another order.
    assert.equal((await post(h.app, '/api/charge', chargeBody('o-5'), { key: 'k-4b' })).statusCode, 201);
  });

  test('two keys racing for one order: one charge, the other 409 ORDER_ALREADY_CHARGED naming it', async (t) => {
    const g = gate();
    const h = await startPayment(t, id, { processor: { faults: { latencyMs: 50 }, sleep: g.sleep } });
    const a = post(h.app, '/api/charge', chargeBody('o-race'), { key: 'k-ra' });
    const b = post(h.app, '/api/charge', chargeBody('o-race'), { key: 'k-rb' });
    await until(() => g.waiting() === 2);
    g.open();
    const results = await Promise.all([a, b]);
    const statuses = results.map((r) => r.statusCode).sort();
    assert.deepEqual(statuses, [201, 409]);
    const winner = results.find((r) => r.statusCode === 201)!;
    const loser = results.find((r) => r.statusCode === 409)!;
    assert.equal(errorOf(loser).code, 'ORDER_ALREADY_CHARGED');
    assert.equal(errorOf(loser).payment_id, winner.json<{ payment_id: string }>().payment_id);
    assert.equal(await h.store.countPayments(), 1);
  });

  test('after a decline, a new key may charge the order again (a decline charged nothing); GET by order shows the success', async (t) => {
    const h = await startPayment(t, id);
    const declined = await post(h.app, '/api/charge', chargeBody('o-6', { card_number: '4000000000000002' }), {
      key: 'k-6a',
    });
    assert.equal(declined.statusCode, 402);
    assert.equal((await get(h.app, '/api/payments?order_id=o-6')).json<Body>().status, 'declined');
    const ok = await post(h.app, '/api/charge', chargeBody('o-6'), { key: 'k-6b' });
    assert.equal(ok.statusCode, 201);
    const view = (await get(h.app, '/api/payments?order_id=o-6')).json<Body>();
    assert.equal(view.payment_id, ok.json<Body>().payment_id);
    assert.equal(view.status, 'succeeded');
  });

  test('keys are per caller: the same key from another allowed caller is another request', async (t) => {
    // Two apps on one DATA_DIR, each allowing a different caller (the order service under its old and new ID).
    const a = await startPayment(t, id);
    const b = await startPayment(t, id, { dir: a.dir, orderId: ORDER_V2 });
    const fromA = await post(a.app, '/api/charge', chargeBody('o-7'), { key: 'shared-key', peer: ORDER });
    const fromB = await post(b.app, '/api/charge', chargeBody('o-8', { amount: 5 }), {
      key: 'shared-key',
      peer: ORDER_V2,
    });
    assert.equal(fromA.statusCode, 201);
    assert.equal(fromB.statusCode, 201, fromB.body);
    assert.equal(fromB.headers['idempotent-replayed'], undefined);
    assert.notEqual(fromA.json<Body>().payment_id, fromB.json<Body>().payment_id);
    // Each caller still gets its own answer back.
    const againA = await post(a.app, '/api/charge', chargeBody('o-7'), { key: 'shared-key', peer: ORDER });
    assert.equal(againA.body, fromA.body);
    assert.equal(await a.store.countPayments(), 2);
  });

  test('a processor error releases the key: the retry with the same key charges', async (t) => {
    const draws = [0.1, 0.9];
    const h = await startPayment(t, id, {
      processor: { faults: { failureRate: 0.5 }, random: () => draws.shift() ?? 0.9 },
    });
    const failed = await post(h.app, '/api/charge', chargeBody('o-9'), { key: 'k-9' });
    assert.equal(failed.statusCode, 502);
    assert.equal(errorOf(failed).code, 'PROCESSOR_ERROR');
    const retry = await post(h.app, '/api/charge', chargeBody('o-9'), { key: 'k-9' });
    assert.equal(retry.statusCode, 201);
    assert.equal(retry.headers['idempotent-replayed'], undefined);
    assert.equal(await h.store.countPayments(), 1);
  });

  test('GET by order while its charge runs → 409 PAYMENT_IN_PROGRESS, so a reconciler never reads "no payment" too early', async (t) => {
    const g = gate();
    const h = await startPayment(t, id, { processor: { faults: { latencyMs: 50 }, sleep: g.sleep } });
    const running = post(h.app, '/api/charge', chargeBody('o-10'), { key: 'k-10' });
    await until(() => g.waiting() === 1);
    const during = await get(h.app, '/api/payments?order_id=o-10');
    assert.equal(during.statusCode, 409);
    assert.equal(errorOf(during).code, 'PAYMENT_IN_PROGRESS');
    assert.equal(during.headers['retry-after'], '1');
    g.open();
    assert.equal((await running).statusCode, 201);
    assert.equal((await get(h.app, '/api/payments?order_id=o-10')).statusCode, 200);
  });
});
