import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { createHeaderPeerResolver, createTestTrustDomain, TEST_PEER_HEADER } from '@shop/auth-testing';
import type { Stock } from '@shop/contracts';
import { buildTestApp, openTestStore, ORDER, PAYMENT } from './support/fixture.ts';
import type { ReserveWorkerData, ReserveWorkerResult } from './support/reserve-worker.ts';

describe('never oversell', () => {
  test('200 concurrent reserves for 50 units: exactly 50 succeed, the rest 409 INSUFFICIENT_STOCK, available never negative', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const resolvePeer = await createHeaderPeerResolver(td, ['/order', '/payment']);
    const fx = await openTestStore(t);
    const app = await buildTestApp(t, fx, td, resolvePeer);
    assert.equal((await fx.stock.getStock('sku-limited')).available, 50);

    const reserves = Array.from({ length: 200 }, (_, i) =>
      app.inject({
        method: 'POST',
        url: '/api/stock/sku-limited/reserve',
        headers: { [TEST_PEER_HEADER]: ORDER },
        payload: { quantity: 1, order_id: `order-${i}` },
      }),
    );
    // Reads interleaved with the writes: none may ever see a negative level.
    const reads = Array.from({ length: 50 }, () =>
      app.inject({ method: 'GET', url: '/api/stock/sku-limited', headers: { [TEST_PEER_HEADER]: PAYMENT } }),
    );
    const [written, read] = await Promise.all([Promise.all(reserves), Promise.all(reads)]);

    const byStatus = new Map<number, number>();
    for (const res of written) byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(byStatus), { 201: 50, 409: 150 });
    for (const res of written.filter((r) => r.statusCode === 409)) {
      assert.deepEqual(res.json(), {
        code: 'INSUFFICIENT_STOCK',
        message: 'only 0 of sku-limited available, 1 requested',
      });
    }
    for (const res of read) {
      const s = res.json<Stock>();
      assert.ok(s.available >= 0 && s.available + s.reserved === 50, `consistent, never negative: ${res.body}`);
    }
    assert.deepEqual(await fx.stock.getStock('sku-limited'), { product_id: 'sku-limited', available: 0, reserved: 50 });
  });

  test('four processes-worth of connections (worker threads) racing on one file: exactly 50 of 200 succeed', async (t) => {
    const fx = await openTestStore(t);
    const barrier = new Int32Array(new SharedArrayBuffer(4));
    const workers = Array.from({ length: 4 }, (_, w) => {
      const workerData: ReserveWorkerData = {
        database: fx.database,
        productId: 'sku-limited',
        orderIds: Array.from({ length: 50 }, (_, i) => `worker-${w}-order-${i}`),
        nowMs: fx.clock.ms,
        barrier,
        parties: 4,
      };
      return new Worker(new URL('./support/reserve-worker.ts', import.meta.url), { workerData });
    });
    t.after(() => Promise.all(workers.map((w) => w.terminate())));
    const results = await Promise.all(workers.map(async (w) => (await once(w, 'message')) as [ReserveWorkerResult]));

    const total: Record<string, number> = {};
    for (const [r] of results) for (const [k, v] of Object.entries(r)) total[k] = (total[k] ?? 0) + v;
    assert.deepEqual(total, { ok: 50, INSUFFICIENT_STOCK: 150 });
    assert.deepEqual(await fx.stock.getStock('sku-limited'), { product_id: 'sku-limited', available: 0, reserved: 50 });
  });
});
