// The three services together, as processes, over real mTLS on loopback:
// orders end to end over gRPC and HTTP, faults, concurrency and restarts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, type Dispatcher } from 'undici';
import { authorizeId, FileIdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { createDevCerts, freePorts, Shop, type ShopOptions } from '../scripts/shop.ts';

interface Order {
  order_id: string;
  status: 'pending' | 'confirmed' | 'failed';
  stage: string;
  failure_reason: string | null;
  total_cents: number;
}

interface Payment {
  payment_id: string;
  status: string;
  amount: number;
}

const CATALOGUE = [
  { product_id: 'sku-a', name: 'Product A', price_cents: 1000, currency: 'EUR', on_hand: 1000 },
  { product_id: 'sku-limited', name: 'Limited', price_cents: 700, currency: 'EUR', on_hand: 50 },
];

let dir: string;
let certsDir: string;
let seedFile: string;
let orderSource: FileIdentitySource;
let asOrder: { payment: Dispatcher; inventory: Dispatcher };
const shops: Shop[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shop-test-'));
  certsDir = join(dir, 'certs');
  await createDevCerts(certsDir, true);
  seedFile = join(dir, 'catalogue.json');
  await writeFile(seedFile, JSON.stringify(CATALOGUE));
  // The test speaks to payment and inventory as the order service would, to read their ledgers.
  orderSource = await FileIdentitySource.create({
    certFile: join(certsDir, 'order.crt.pem'),
    keyFile: join(certsDir, 'order.key.pem'),
    caFile: join(certsDir, 'ca.crt.pem'),
  });
  asOrder = {
    payment: createMtlsDispatcher({ source: orderSource, authorize: authorizeId('spiffe://example.org/payment') }),
    inventory: createMtlsDispatcher({ source: orderSource, authorize: authorizeId('spiffe://example.org/inventory') }),
  };
});

// Every process a test started is stopped here, also when the test failed.
after(async () => {
  for (const s of shops) await s.stopAll();
  await asOrder.payment.close();
  await asOrder.inventory.close();
  await orderSource.close();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  for (const s of shops) s.killAllNow();
});

async function newShop(name: string, env: ShopOptions['env'] = {}): Promise<Shop> {
  const shop = new Shop({
    dataDir: join(dir, name),
    certsDir,
    ports: await freePorts(),
    env: {
      ...env,
      inventory: { SEED_FILE: seedFile, ...env.inventory },
      order: { RECONCILE_INTERVAL_MS: '200', PENDING_GRACE_MS: '500', ...env.order },
    },
  });
  shops.push(shop);
  await shop.startAll();
  return shop;
}

async function placeOrder(
  shop: Shop,
  items: { product_id: string; quantity: number }[] = [{ product_id: 'sku-a', quantity: 1 }],
) {
  const res = await request(`${shop.orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customer_id: 'c-1', currency: 'EUR', items }),
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    body: (await res.body.json()) as Order & { code?: string; message?: string },
  };
}

async function getOrder(shop: Shop, id: string): Promise<Order> {
  const res = await request(`${shop.orderUrl}/orders/${id}`);
  return (await res.body.json()) as Order;
}

async function paymentOf(shop: Shop, orderId: string): Promise<{ status: number; body: Payment }> {
  const res = await request(`https://127.0.0.1:${shop.ports.payment}/api/payments?order_id=${orderId}`, {
    dispatcher: asOrder.payment,
  });
  return { status: res.statusCode, body: (await res.body.json()) as Payment };
}

async function stockOf(shop: Shop, productId: string): Promise<{ available: number; reserved: number }> {
  const res = await request(`https://127.0.0.1:${shop.ports.inventory}/api/stock/${productId}`, {
    dispatcher: asOrder.inventory,
  });
  return (await res.body.json()) as { available: number; reserved: number };
}

async function metric(shop: Shop, service: 'order' | 'payment' | 'inventory', pattern: RegExp): Promise<number> {
  const text = await (await request(`${shop.opsUrl(service)}/metrics`)).body.text();
  return [...text.matchAll(new RegExp(pattern.source, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
}

async function eventually<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the shop over mTLS', () => {
  test('an order end to end over gRPC, then over HTTP; a restart keeps every order and the stock', async () => {
    const shop = await newShop('e2e');
    const viaGrpc = await placeOrder(shop, [{ product_id: 'sku-a', quantity: 2 }]);
    assert.equal(viaGrpc.status, 201);
    assert.equal(viaGrpc.body.status, 'confirmed', JSON.stringify(viaGrpc.body));
    const pay = await paymentOf(shop, viaGrpc.body.order_id);
    assert.deepEqual([pay.status, pay.body.status, pay.body.amount], [200, 'succeeded', 2000]);
    assert.ok(
      (await metric(
        shop,
        'inventory',
        /^shop_requests_total\{[^}]*protocol="grpc"[^}]*caller="spiffe:\/\/example\.org\/order"[^}]*\} (\d+)/,
      )) >= 3,
      'list, reserve and commit went over gRPC as the order service',
    );
    assert.ok(
      (await metric(
        shop,
        'payment',
        /^shop_requests_total\{[^}]*route="\/api\/charge"[^}]*caller="spiffe:\/\/example\.org\/order"[^}]*\} (\d+)/,
      )) >= 1,
      'payment saw the order service as the caller',
    );

    await shop.stop('order');
    await shop.start('order', { INVENTORY_PROTOCOL: 'http' });
    const viaHttp = await placeOrder(shop, [{ product_id: 'sku-a', quantity: 3 }]);
    assert.equal(viaHttp.body.status, 'confirmed');
    assert.ok(
      (await metric(
        shop,
        'inventory',
        /^shop_requests_total\{[^}]*route="\/api\/stock\/:productId\/reserve"[^}]*caller="spiffe:\/\/example\.org\/order"[^}]*\} (\d+)/,
      )) >= 1,
      'the reservation went over HTTP',
    );
    assert.equal((await stockOf(shop, 'sku-a')).available, 1000 - 5);

    await shop.stopAll();
    await shop.startAll();
    assert.equal((await getOrder(shop, viaGrpc.body.order_id)).status, 'confirmed');
    assert.equal((await getOrder(shop, viaHttp.body.order_id)).status, 'confirmed');
    assert.equal((await stockOf(shop, 'sku-a')).available, 995);
    assert.equal((await paymentOf(shop, viaHttp.body.order_id)).body.amount, 3000);
  });

  test('200 concurrent orders for 50 units: exactly 50 confirmed, stock 0, one payment per confirmed order', async () => {
    // A generous timeout: this test is about concurrency, and on a loaded
    // machine a burst of 200 can outlast the default second (the orders would
    // then wait, pending, for the reconciler, or meet an open breaker).
    const shop = await newShop('concurrency', { order: { UPSTREAM_TIMEOUT_MS: '10000' } });
    const placed = await Promise.all(
      Array.from({ length: 200 }, () => placeOrder(shop, [{ product_id: 'sku-limited', quantity: 1 }])),
    );
    assert.deepEqual(
      placed.filter((r) => r.status !== 201),
      [],
      'every order was taken',
    );
    const results = await Promise.all(
      placed.map(async (r) => ({
        body: await eventually(
          `order ${r.body.order_id} settled`,
          () => getOrder(shop, r.body.order_id),
          (o) => o.status !== 'pending',
          60_000,
        ),
      })),
    );
    const confirmed = results.filter((r) => r.body.status === 'confirmed');
    const failed = results.filter((r) => r.body.status === 'failed');
    assert.equal(confirmed.length, 50);
    assert.equal(failed.length, 150);
    assert.ok(failed.every((r) => r.body.failure_reason === 'out_of_stock'));
    assert.deepEqual(await stockOf(shop, 'sku-limited'), {
      ...(await stockOf(shop, 'sku-limited')),
      available: 0,
      reserved: 0,
    });
    let ledger = 0;
    for (const r of confirmed) {
      const p = await paymentOf(shop, r.body.order_id);
      assert.equal(p.body.status, 'succeeded');
      ledger += p.body.amount;
    }
    for (const r of failed.slice(0, 20))
      assert.equal((await paymentOf(shop, r.body.order_id)).status, 404, 'no charge for an order that got no stock');
    assert.equal(
      ledger,
      confirmed.reduce((s, r) => s + r.body.total_cents, 0),
    );
  });
});

describe('faults', () => {
  test('payment killed mid-traffic: breaker opens, order answers 503 fast with Retry-After, and recovers when payment returns', async () => {
    const shop = await newShop('payment-down', { order: { BREAKER_RESET_MS: '1000', UPSTREAM_TIMEOUT_MS: '500' } });
    assert.equal((await placeOrder(shop)).body.status, 'confirmed', 'positive control');
    await shop.stop('payment', 'SIGKILL');
    const during = [];
    for (let i = 0; i < 8; i++) during.push(await placeOrder(shop));
    const t0 = performance.now();
    const fast = await placeOrder(shop);
    const elapsed = performance.now() - t0;
    assert.equal(fast.status, 503);
    assert.equal(fast.body.code, 'UPSTREAM_UNAVAILABLE');
    assert.ok(Number(fast.headers['retry-after']) >= 1);
    assert.ok(elapsed < 200, `503 within ${elapsed.toFixed(0)} ms`);
    assert.equal(
      await metric(shop, 'order', /^shop_circuit_breaker_state\{breaker="payment:http"[^}]*\} (\d+)/),
      2,
      'exported as open',
    );
    // Orders caught mid-way were compensated, not lost.
    for (const d of during.filter((r) => r.status === 201)) {
      const o = await eventually(
        'compensation',
        () => getOrder(shop, d.body.order_id),
        (x) => x.status !== 'pending',
      );
      assert.equal(o.status, 'failed');
    }
    await shop.start('payment');
    const recovered = await eventually(
      'recovery',
      () => placeOrder(shop),
      (r) => r.status === 201 && r.body.status === 'confirmed',
    );
    assert.equal(recovered.body.status, 'confirmed');
    assert.equal((await stockOf(shop, 'sku-a')).reserved, 0, 'no stock left reserved by failed orders');
  });

  test('payment slower than the timeout: the order stays pending, then is reconciled with exactly one charge', async () => {
    const shop = await newShop('payment-slow', { order: { UPSTREAM_TIMEOUT_MS: '300' } });
    const admin = `http://127.0.0.1:${shop.ports.paymentAdmin}/admin/faults`;
    const setLatency = async (ms: number) => {
      const res = await request(admin, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ latency_ms: ms }),
      });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    };
    await setLatency(1500);
    const slow = await placeOrder(shop);
    assert.equal(slow.status, 201);
    assert.equal(slow.body.status, 'pending');
    await setLatency(0);
    const settled = await eventually(
      'reconciliation',
      () => getOrder(shop, slow.body.order_id),
      (o) => o.status !== 'pending',
    );
    assert.equal(settled.status, 'confirmed');
    const p = await paymentOf(shop, slow.body.order_id);
    assert.equal(p.body.status, 'succeeded');
    // The ledger itself: one payment row for the order, however many attempts there were.
    const ledger = new DatabaseSync(join(dir, 'payment-slow', 'payment', 'payment.db'), { readOnly: true });
    const rows = ledger.prepare('SELECT COUNT(*) AS n FROM payments WHERE order_id = ?').get(slow.body.order_id) as {
      n: number;
    };
    ledger.close();
    assert.equal(rows.n, 1, 'charged exactly once');
    const attempts = await metric(shop, 'payment', /^shop_requests_total\{[^}]*route="\/api\/charge"[^}]*\} (\d+)/);
    assert.ok(attempts >= 1, `payment answered ${attempts} charge requests for it`);
  });

  test('inventory down: order answers 503 and no charge is attempted', async () => {
    const shop = await newShop('inventory-down');
    assert.equal((await placeOrder(shop)).body.status, 'confirmed', 'positive control');
    const chargesBefore = await metric(
      shop,
      'payment',
      /^shop_requests_total\{[^}]*route="\/api\/charge"[^}]*\} (\d+)/,
    );
    await shop.stop('inventory', 'SIGKILL');
    // The first order may still pass the (one-second) catalogue cache and be
    // created, then fail to reserve; once the breaker opens, orders get 503.
    const first = await placeOrder(shop);
    if (first.status === 201) assert.equal(first.body.failure_reason, 'inventory_unavailable');
    else assert.equal(first.status, 503);
    const later = await eventually(
      '503 from an open breaker',
      () => placeOrder(shop),
      (r) => r.status === 503 && /inventory/.test(r.body.message ?? ''),
    );
    assert.ok(Number(later.headers['retry-after']) >= 1);
    assert.equal(
      await metric(shop, 'payment', /^shop_requests_total\{[^}]*route="\/api\/charge"[^}]*\} (\d+)/),
      chargesBefore,
    );
  });
});

describe('hand-over (LISTEN_REUSE_PORT)', () => {
  test('payment and order replaced under load by new instances: no failed order; a new instance that cannot start leaves the old one serving', async () => {
    const reuse = { LISTEN_REUSE_PORT: 'true' };
    const shop = await newShop('handover', { payment: reuse, order: reuse, inventory: reuse });
    const failures: string[] = [];
    let placed = 0;
    let resent = 0;
    let stop = false;
    // Shoppers as a careful client: an Idempotency-Key on every order, and the same request
    // sent again if the connection closed under it (a keep-alive connection of the draining
    // instance can close just as a request goes out). The key makes the resend harmless.
    const shopper = async (): Promise<void> => {
      while (!stop) {
        const key = randomUUID();
        for (let attempt = 1; ; attempt++) {
          try {
            const res = await request(`${shop.orderUrl}/orders`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'idempotency-key': key },
              body: JSON.stringify({
                customer_id: 'c-1',
                currency: 'EUR',
                items: [{ product_id: 'sku-a', quantity: 1 }],
              }),
            });
            const body = (await res.body.json()) as Order & { code?: string };
            if (res.statusCode < 300 && body.status === 'confirmed') placed++;
            else failures.push(`${String(res.statusCode)} ${body.code ?? body.failure_reason ?? ''}`);
            break;
          } catch (err) {
            if (attempt === 3) {
              failures.push((err as Error).message);
              break;
            }
            resent++;
          }
        }
      }
    };
    const load = Promise.all([shopper(), shopper()]);
    try {
      // A new payment that cannot start (its certificate file is missing, and it gives up waiting
      // for it after IDENTITY_WAIT_SECONDS): the hand-over fails with the reason, and the old
      // instance never stopped serving.
      await assert.rejects(
        shop.handover('payment', { ...reuse, TLS_CERT_FILE: join(dir, 'missing.crt.pem'), IDENTITY_WAIT_SECONDS: '1' }),
        /payment exited during start-up/,
      );
      assert.ok(shop.isRunning('payment'));
      const before = placed;
      // Positive control: real hand-overs, of a server (payment) and of the public API (order).
      await shop.handover('payment', reuse);
      await shop.handover('order', reuse);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(placed - before > 10, `only ${String(placed - before)} orders across the hand-overs`);
    } finally {
      stop = true;
      await load;
    }
    assert.deepEqual(failures, []);
    assert.ok(resent <= 4, `${String(resent)} requests had to be sent again`);
  });
});
