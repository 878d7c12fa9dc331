import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { makeTempDir } from '@shop/auth-testing';
import { createServiceMetrics } from '@shop/service-kit';
import { buildApp } from '../src/app.ts';
import { testDatabaseConfig } from '@shop/service-kit/testing';
import { OrderService } from '../src/orders.ts';
import { OrderStore, type Order } from '../src/store.ts';
import { Upstreams } from '../src/upstreams.ts';
import { FakeInventory, FakePayment } from './fakes.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface World {
  app: FastifyInstance;
  inventory: FakeInventory;
  payment: FakePayment;
  store: OrderStore;
  orders: OrderService;
  upstreams: Upstreams;
  dir: string;
}

let w: World;
const cleanups: (() => Promise<void>)[] = [];

async function world(
  opts: { timeoutMs?: number; resetTimeoutMs?: number; dir?: string; breakers?: boolean } = {},
): Promise<World> {
  const tmp = opts.dir ? { dir: opts.dir, cleanup: () => Promise.resolve() } : await makeTempDir('order-test-');
  const inventory = new FakeInventory([
    { id: 'sku-1', price: 1250, stock: 10 },
    { id: 'sku-2', price: 500, stock: 3 },
    { id: 'sku-usd', price: 100, stock: 5, currency: 'USD' },
  ]);
  const payment = new FakePayment();
  const metrics = createServiceMetrics('order');
  const upstreams = new Upstreams(inventory, payment, {
    timeoutMs: opts.timeoutMs ?? 200,
    resetTimeoutMs: opts.resetTimeoutMs ?? 500,
    metrics,
    log: quiet,
    breakers: opts.breakers,
  });
  const store = await OrderStore.open(await testDatabaseConfig(tmp.dir, 'order.db'));
  const orders = new OrderService(store, upstreams, quiet, metrics);
  const app = await buildApp({ orders, metrics });
  cleanups.push(async () => {
    await app.close();
    await upstreams.close();
    await store.close();
    await tmp.cleanup();
  });
  return { app, inventory, payment, store, orders, upstreams, dir: tmp.dir };
}

async function place(app: FastifyInstance, body: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: '/orders', payload: body as object, headers });
  return {
    status: res.statusCode,
    body: res.json<Order & { code?: string; message?: string }>(),
    headers: res.headers,
  };
}

// One unit: enough stock for the tests that place several orders at once.
const oneUnit = { customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-1', quantity: 1 }] };

const anOrder = {
  customer_id: 'c-1',
  currency: 'EUR',
  items: [
    { product_id: 'sku-1', quantity: 2 },
    { product_id: 'sku-2', quantity: 1 },
  ],
};

beforeEach(async () => {
  w = await world();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
after(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('placing orders', () => {
  test('happy path: reserved, charged once, committed → 201 confirmed with the priced items', async () => {
    const res = await place(w.app, anOrder);
    assert.equal(res.status, 201);
    assert.equal(res.body.status, 'confirmed');
    assert.equal(res.body.total_cents, 2 * 1250 + 500);
    assert.equal(res.headers.location, `/orders/${res.body.order_id}`);
    assert.equal(w.payment.charges.size, 1);
    assert.deepEqual(
      w.inventory.reservations.get(res.body.order_id)?.map((r) => r.state),
      ['committed', 'committed'],
    );
    const got = await w.app.inject({ url: `/orders/${res.body.order_id}` });
    assert.equal(got.json<Order>().status, 'confirmed');
  });

  test('declined card: stock released, order failed with the reason', async () => {
    w.payment.mode = 'decline';
    const res = await place(w.app, anOrder);
    assert.equal(res.status, 201);
    assert.equal(res.body.status, 'failed');
    assert.equal(res.body.failure_reason, 'card_declined:card_declined');
    assert.equal(w.inventory.products.get('sku-1')!.available, 10, 'released');
  });

  test('out of stock: nothing charged, partial reservations released', async () => {
    const res = await place(w.app, {
      ...anOrder,
      items: [
        { product_id: 'sku-1', quantity: 1 },
        { product_id: 'sku-2', quantity: 4 },
      ],
    });
    assert.equal(res.body.status, 'failed');
    assert.equal(res.body.failure_reason, 'out_of_stock');
    assert.equal(w.payment.attempts, 0, 'no charge attempted');
    assert.equal(w.inventory.products.get('sku-1')!.available, 10);
  });

  test('inventory down: 503 with Retry-After, no order stored, no charge attempted', async () => {
    w.inventory.down = true;
    const res = await place(w.app, anOrder);
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'UPSTREAM_UNAVAILABLE');
    assert.ok(res.headers['retry-after']);
    assert.equal(w.payment.attempts, 0);
    assert.deepEqual(await w.store.counts(), { pending: 0, confirmed: 0, failed: 0 });
  });

  test('payment processor error: compensated, failed payment_error', async () => {
    w.payment.mode = 'processor-error';
    const res = await place(w.app, anOrder);
    assert.equal(res.body.status, 'failed');
    assert.equal(res.body.failure_reason, 'payment_error');
    assert.equal(w.inventory.products.get('sku-1')!.available, 10);
  });

  test('payment slower than the timeout: order stays pending, the reconciler settles it with one charge', async () => {
    w.payment.latencyMs = 400; // > 200 ms timeout, every retry too
    const res = await place(w.app, anOrder);
    assert.equal(res.status, 201);
    assert.equal(res.body.status, 'pending');
    assert.equal(res.body.stage, 'charging');
    w.payment.latencyMs = 0;
    await w.orders.reconcileOnce(0);
    const settled = await w.orders.get(res.body.order_id);
    assert.equal(settled.status, 'confirmed');
    assert.equal(w.payment.charges.size, 1, 'charged exactly once');
    assert.ok(w.payment.attempts >= 2, 'the charge was retried with the same key');
  });

  test('regression: charged for a failed order — a charge that timed out, then met the open breaker, is not failed unasked', async () => {
    // Payment slower than the timeout: every first attempt times out (the
    // charge exists at payment, the answer is late), the timeouts open the
    // breaker, and the retries meet it open. Before the fix those orders were
    // failed payment_unavailable with no refund while payment kept the money.
    w.payment.latencyMs = 400;
    const placed = await Promise.all(Array.from({ length: 6 }, () => place(w.app, oneUnit)));
    assert.equal(w.upstreams.breakerStates()['payment:http'], 'open', 'the scenario opened the breaker');
    for (const r of placed) {
      assert.equal(r.status, 201);
      assert.equal(r.body.status, 'pending', `order ${r.body.order_id} must wait for payment's answer`);
      assert.equal(r.body.stage, 'charging');
    }
    // Payment recovers; the reconciler settles every order through the same key.
    w.payment.latencyMs = 0;
    await new Promise((r) => setTimeout(r, 600)); // the breaker half-opens
    for (let round = 0; round < 5 && (await w.store.counts()).pending > 0; round++) await w.orders.reconcileOnce(0);
    for (const r of placed) {
      const o = await w.orders.get(r.body.order_id);
      const charge = w.payment.charges.get(o.order_id);
      assert.equal(o.status, 'confirmed', `order ${o.order_id}: ${o.failure_reason}`);
      assert.equal(o.payment_id, charge?.outcome.payment_id, 'confirmed with the payment that exists');
    }
    assert.equal(w.payment.charges.size, placed.length, 'one charge per order');
    assert.deepEqual(w.payment.refunds, []);
  });

  test('positive control: a charge that never reached payment fails the order at once, nothing charged', async () => {
    // A reset long enough that the breaker is still open when the burst ends, however slow the store.
    w = await world({ resetTimeoutMs: 30_000 });
    w.payment.mode = 'down';
    const placed = await Promise.all(Array.from({ length: 6 }, () => place(w.app, oneUnit)));
    assert.equal(w.upstreams.breakerStates()['payment:http'], 'open');
    const stored = placed.filter((r) => r.status === 201);
    assert.ok(stored.length > 0, 'some orders got as far as the charge');
    for (const r of stored) {
      assert.equal(r.body.status, 'failed', JSON.stringify(r.body));
      assert.equal(r.body.failure_reason, 'payment_unavailable');
    }
    for (const r of placed.filter((p) => p.status !== 201)) assert.equal(r.body.code, 'UPSTREAM_UNAVAILABLE');
    assert.equal((await w.store.counts()).pending, 0);
    assert.equal(w.payment.charges.size, 0);
    assert.equal(w.inventory.products.get('sku-1')!.available, 10, 'stock released');
  });

  test('regression: the reconciler never fails a charging order unasked, even when "no charge found" races a charge in flight', async () => {
    w.payment.latencyMs = 400;
    const res = await place(w.app, anOrder);
    assert.equal(res.body.status, 'pending');
    // The lookup by order sees nothing yet, and the new attempt under the key
    // fails without an answer: neither says the first attempt will not land.
    w.payment.latencyMs = 0;
    w.payment.chargeInFlight = true;
    w.payment.mode = 'processor-error';
    await w.orders.reconcileOnce(0);
    await w.orders.reconcileOnce(0);
    assert.equal((await w.orders.get(res.body.order_id)).status, 'pending', 'no answer under the key yet');
    w.payment.chargeInFlight = false;
    w.payment.mode = 'ok';
    await new Promise((r) => setTimeout(r, 600));
    await w.orders.reconcileOnce(0);
    const settled = await w.orders.get(res.body.order_id);
    assert.equal(settled.status, 'confirmed');
    assert.equal(settled.payment_id, w.payment.charges.get(settled.order_id)?.outcome.payment_id);
    assert.equal(w.payment.charges.size, 1);
    assert.deepEqual(w.payment.refunds, []);
  });

  test('the same Idempotency-Key from a shopper returns the same order (200), not a second one', async () => {
    const first = await place(w.app, anOrder, { 'idempotency-key': 'cart-42' });
    const again = await place(w.app, anOrder, { 'idempotency-key': 'cart-42' });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.body.order_id, first.body.order_id);
    assert.equal(w.payment.charges.size, 1);
  });
});

describe('breakers', () => {
  test('payment down: breaker opens, then order answers 503 fast with Retry-After; recovers when payment returns', async () => {
    w.payment.mode = 'down';
    for (let i = 0; i < 4; i++) await place(w.app, anOrder);
    assert.equal(w.upstreams.breakerStates()['payment:http'], 'open');
    const t0 = performance.now();
    const fast = await place(w.app, anOrder);
    assert.equal(fast.status, 503);
    assert.equal(fast.body.code, 'UPSTREAM_UNAVAILABLE');
    assert.match(fast.body.message ?? '', /payment:http is open/);
    assert.ok(Number(fast.headers['retry-after']) >= 1);
    assert.ok(performance.now() - t0 < 100, 'fails fast');
    w.payment.mode = 'ok';
    await new Promise((r) => setTimeout(r, 600));
    // Compensations of the failed orders are done; a new order goes through the half-open breaker.
    const ok = await place(w.app, anOrder);
    assert.equal(ok.body.status, 'confirmed');
    assert.equal(w.upstreams.breakerStates()['payment:http'], 'closed');
  });
});

describe('BREAKERS=off (for measuring what the breakers cost)', () => {
  test('with breakers off, payment down never opens a breaker: every order is tried and compensated, none fails fast', async () => {
    const off = await world({ breakers: false });
    off.payment.mode = 'down';
    for (let i = 0; i < 6; i++) {
      const r = await place(off.app, anOrder);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.failure_reason, 'payment_unavailable');
    }
    assert.equal(off.upstreams.breakerStates()['payment:http'], 'closed');
    off.payment.mode = 'ok';
    assert.equal((await place(off.app, anOrder)).body.status, 'confirmed');
  });
});

describe('bad input → 4xx { code, message }, nothing stored', () => {
  const cases: [string, unknown, number, string][] = [
    ['unknown product', { ...anOrder, items: [{ product_id: 'nope', quantity: 1 }] }, 400, 'UNKNOWN_PRODUCT'],
    ['quantity 0', { ...anOrder, items: [{ product_id: 'sku-1', quantity: 0 }] }, 400, 'INVALID_REQUEST'],
    ['negative quantity', { ...anOrder, items: [{ product_id: 'sku-1', quantity: -2 }] }, 400, 'INVALID_REQUEST'],
    ['absurd quantity', { ...anOrder, items: [{ product_id: 'sku-1', quantity: 100000 }] }, 400, 'INVALID_REQUEST'],
    ['fractional quantity', { ...anOrder, items: [{ product_id: 'sku-1', quantity: 1.5 }] }, 400, 'INVALID_REQUEST'],
    ['no items', { ...anOrder, items: [] }, 400, 'INVALID_REQUEST'],
    ['missing customer', { currency: 'EUR', items: anOrder.items }, 400, 'INVALID_REQUEST'],
    ['unknown field', { ...anOrder, coupon: 'FREE' }, 400, 'INVALID_REQUEST'],
    ['unknown currency', { ...anOrder, currency: 'XBT' }, 400, 'UNKNOWN_CURRENCY'],
    ['currency mismatch', { ...anOrder, currency: 'USD' }, 400, 'CURRENCY_MISMATCH'],
    ['amount mismatch', { ...anOrder, expected_total_cents: 1 }, 400, 'AMOUNT_MISMATCH'],
    [
      'duplicate line',
      {
        ...anOrder,
        items: [
          { product_id: 'sku-1', quantity: 1 },
          { product_id: 'sku-1', quantity: 1 },
        ],
      },
      400,
      'DUPLICATE_ITEM',
    ],
  ];
  test('positive control: the base order is accepted', async () => {
    assert.equal((await place(w.app, { ...anOrder, expected_total_cents: 3000 })).status, 201);
  });
  for (const [name, body, status, code] of cases) {
    test(name, async () => {
      const res = await place(w.app, body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.code, code);
      assert.ok((res.body.message ?? '').length > 10, 'the message says what to fix');
      assert.deepEqual(await w.store.counts(), { pending: 0, confirmed: 0, failed: 0 });
      assert.equal(w.payment.attempts, 0);
    });
  }
  test('malformed JSON, oversized body, unknown order id', async () => {
    const bad = await w.app.inject({
      method: 'POST',
      url: '/orders',
      payload: '{"customer_id":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json<{ code: string }>().code, /FST_ERR_CTP_INVALID_JSON_BODY|INVALID/);
    const huge = await w.app.inject({
      method: 'POST',
      url: '/orders',
      payload: JSON.stringify({ ...anOrder, customer_id: 'x'.repeat(70_000) }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(huge.statusCode, 413);
    const missing = await w.app.inject({ url: '/orders/does-not-exist' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<{ code: string }>().code, 'ORDER_NOT_FOUND');
    assert.deepEqual(await w.store.counts(), { pending: 0, confirmed: 0, failed: 0 });
  });
});

describe('persistence', () => {
  test('a restarted service keeps its orders, and the reconciler finishes one left pending', async () => {
    w.payment.latencyMs = 400;
    const pending = await place(w.app, anOrder);
    assert.equal(pending.body.status, 'pending');
    const { dir } = w;
    // "Restart": a new store, service and app on the same data directory.
    const payment = w.payment;
    const inventory = w.inventory;
    const restarted = await world({ dir });
    restarted.payment.charges.clear();
    for (const [k, v] of payment.charges) restarted.payment.charges.set(k, v);
    for (const [k, v] of inventory.reservations) restarted.inventory.reservations.set(k, v);
    const got = await restarted.app.inject({ url: `/orders/${pending.body.order_id}` });
    assert.equal(got.json<Order>().status, 'pending');
    await restarted.orders.reconcileOnce(0);
    assert.equal((await restarted.orders.get(pending.body.order_id)).status, 'confirmed');
    assert.equal(restarted.payment.charges.size, 1);
  });
});
