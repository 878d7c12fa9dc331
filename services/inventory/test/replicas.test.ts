// Three inventory replicas on one PostgreSQL database: concurrent reserves
// never oversell, because each reserve holds the product's row while it
// checks and writes (InventoryStore.lockProduct), whichever replica runs it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { Env, ServiceError, readDatabaseConfig } from '@shop/service-kit';
import { StockService } from '../src/stock.ts';
import { Clock, TEST_CATALOGUE } from './support/fixture.ts';

let cluster: PostgresCluster;
before(async () => {
  cluster = await startPostgres({ roles: [{ name: 'inventory' }] });
});
after(() => cluster.stop());

test('150 reserves of 1 unit spread over three replicas, 50 in stock: exactly 50 succeed, none oversold', async (t) => {
  // Reserves of one product queue on its row: no statement timeout, so the wait itself never ends in a 503.
  const database = readDatabaseConfig(
    new Env({ DATABASE_URL: cluster.url('inventory'), DATABASE_STATEMENT_TIMEOUT_MS: '0', DATABASE_POOL_MAX: '20' }),
    {
      dataDir: '/unused',
      file: 'unused',
    },
  );
  const clock = new Clock();
  // Started together: the seed is written once (ON CONFLICT DO NOTHING), the migrations once (advisory lock).
  const replicas = await Promise.all(
    [1, 2, 3].map(() =>
      StockService.open({ database, reservationTtlSeconds: 300, seed: TEST_CATALOGUE, now: clock.now }),
    ),
  );
  t.after(() => Promise.all(replicas.map((r) => r.close())));
  // Positive control: every replica sees the 50 units before the race.
  for (const r of replicas) assert.equal((await r.getStock('sku-limited')).available, 50);
  assert.equal((await replicas[0]?.listProducts())?.length, TEST_CATALOGUE.length, 'seeded once');

  // Each caller retries a 503 (STORE_UNAVAILABLE: on a loaded machine, opening many connections at
  // once can take longer than the pool allows), as the order service does: the outcome counted is the final one.
  const outcomes = await Promise.all(
    Array.from({ length: 150 }, async (_, i) => {
      const replica = replicas[i % 3] as StockService;
      for (let attempt = 1; ; attempt++) {
        try {
          await replica.reserve('sku-limited', { quantity: 1, order_id: `order-${String(i)}` });
          return 'ok';
        } catch (err) {
          const code = err instanceof ServiceError ? err.code : String(err);
          if (code !== 'STORE_UNAVAILABLE' || attempt === 30) return code;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }),
  );
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  assert.deepEqual(counts, { ok: 50, INSUFFICIENT_STOCK: 100 });
  for (const r of replicas) {
    assert.deepEqual(await r.getStock('sku-limited'), { product_id: 'sku-limited', available: 0, reserved: 50 });
  }
});
