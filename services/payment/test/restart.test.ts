import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { makeTempDir } from '@shop/auth-testing';
import { chargeBody, createIdentity, errorOf, get, post, startPayment, type Body, type Identity } from './harness.ts';

let id: Identity;
before(async () => {
  id = await createIdentity();
});

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const tmp = await makeTempDir('payment-restart-');
  t.after(tmp.cleanup);
  return tmp.dir;
}

describe('restart on the same DATA_DIR', () => {
  test('payments, refunds and idempotency records survive; replays return the stored answers', async (t) => {
    const dir = await tempDir(t);
    const before = await startPayment(t, id, { dir });
    const charge = await post(before.app, '/api/charge', chargeBody('o-r1'), { key: 'k-charge' });
    const declined = await post(before.app, '/api/charge', chargeBody('o-r2', { card_number: '4000000000000069' }), {
      key: 'k-declined',
    });
    const paymentId = charge.json<{ payment_id: string }>().payment_id;
    const refund = await post(before.app, '/api/refund', { payment_id: paymentId, amount: 99 }, { key: 'k-refund' });
    assert.deepEqual([charge.statusCode, declined.statusCode, refund.statusCode], [201, 402, 201]);
    await before.close();

    const after = await startPayment(t, id, { dir });
    for (const [key, url, body, first] of [
      ['k-charge', '/api/charge', chargeBody('o-r1'), charge],
      ['k-declined', '/api/charge', chargeBody('o-r2', { card_number: '4000000000000069' }), declined],
      ['k-refund', '/api/refund', { payment_id: paymentId, amount: 99 }, refund],
    ] as const) {
      const replay = await post(after.app, url, body, { key });
      assert.equal(replay.statusCode, first.statusCode, key);
      assert.equal(replay.body, first.body, key);
      assert.equal(replay.headers['idempotent-replayed'], 'true', key);
    }
    const reused = await post(after.app, '/api/charge', chargeBody('o-r1', { amount: 1 }), { key: 'k-charge' });
    assert.equal(errorOf(reused).code, 'IDEMPOTENCY_KEY_REUSED');
    const again = await post(after.app, '/api/charge', chargeBody('o-r1'), { key: 'k-new' });
    assert.equal(errorOf(again).code, 'ORDER_ALREADY_CHARGED');
    const view = (await get(after.app, '/api/payments?order_id=o-r1')).json<Body>();
    assert.equal(view.payment_id, paymentId);
    assert.equal(view.amount_refunded, 99);
    assert.equal(await after.store.countPayments(), 2);
  });

  test('a charge cut off by a crash leaves an in-progress key: 409 until it is 60 s old, then a retry charges once', async (t) => {
    const dir = await tempDir(t);
    let release = (): void => {};
    const crashed = await startPayment(t, id, {
      dir,
      processor: {
        faults: { latencyMs: 10 },
        sleep: () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
      },
    });
    const cutOff = post(crashed.app, '/api/charge', chargeBody('o-crash'), { key: 'k-crash' });
    for (let i = 0; i < 200 && (await get(crashed.app, '/api/payments?order_id=o-crash')).statusCode !== 409; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    // The "crash": the ledger goes away while the processor still holds the request.
    await crashed.store.close();
    release();
    // The store is gone: 503 DATABASE_UNAVAILABLE (retry), not an internal error.
    assert.equal((await cutOff).statusCode, 503);
    await crashed.close();

    let now = Date.now() + 10_000;
    const restarted = await startPayment(t, id, { dir, now: () => now });
    const early = await post(restarted.app, '/api/charge', chargeBody('o-crash'), { key: 'k-crash' });
    assert.equal(early.statusCode, 409);
    assert.equal(errorOf(early).code, 'IDEMPOTENCY_KEY_IN_PROGRESS');
    assert.equal(await restarted.store.countPayments(), 0, 'the cut-off charge left no payment behind');

    now += 60_000;
    const retried = await post(restarted.app, '/api/charge', chargeBody('o-crash'), { key: 'k-crash' });
    assert.equal(retried.statusCode, 201, retried.body);
    const replay = await post(restarted.app, '/api/charge', chargeBody('o-crash'), { key: 'k-crash' });
    assert.equal(replay.body, retried.body);
    assert.equal(await restarted.store.countPayments(), 1);
  });
});
