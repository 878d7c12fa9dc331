// Two order replicas on one PostgreSQL database: one replica at a time works
// on an order (its lease, taken with a conditional UPDATE), and an order
// whose replica died mid-saga is finished by the other once the lease runs out.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { Env, createServiceMetrics, readDatabaseConfig, type DatabaseConfig } from '@shop/service-kit';
import type { InventoryClient, PaymentClient } from '../src/clients/types.ts';
import { OrderService } from '../src/orders.ts';
import { OrderStore } from '../src/store.ts';
import { Upstreams } from '../src/upstreams.ts';
import { FakeInventory, FakePayment } from './fakes.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const oneUnit = { customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-1', quantity: 1 }] };

/** TrackingInventory records how many reserves of one order run at the same time, over all replicas. */
class TrackingInventory extends FakeInventory {
  readonly active = new Map<string, number>();
  maxPerOrder = 0;

  override async reserve(orderId: string, productId: string, quantity: number): Promise<void> {
    const n = (this.active.get(orderId) ?? 0) + 1;
    this.active.set(orderId, n);
    this.maxPerOrder = Math.max(this.maxPerOrder, n);
    try {
      await sleep(30);
      await super.reserve(orderId, productId, quantity);
    } finally {
      this.active.set(orderId, (this.active.get(orderId) ?? 1) - 1);
    }
  }
}

/** HangingInventory never answers a reserve: the replica using it is stuck mid-saga, as one being killed. */
class HangingInventory extends FakeInventory {
  override reserve(): Promise<void> {
    return new Promise(() => undefined);
  }
}

let cluster: PostgresCluster;
let made = 0;
before(async () => {
  cluster = await startPostgres({ roles: [{ name: 'order' }] });
});
after(() => cluster.stop());

async function freshDatabase(): Promise<DatabaseConfig> {
  const name = `order_${String(++made)}`;
  const admin = await cluster.admin();
  await admin.query(`CREATE DATABASE ${name} OWNER "order"`);
  await admin.end();
  const url = new URL(cluster.url('order'));
  url.pathname = `/${name}`;
  return readDatabaseConfig(new Env({ DATABASE_URL: url.href }), { dataDir: '/unused', file: 'unused' });
}

async function replica(
  t: TestContext,
  database: DatabaseConfig,
  inventory: InventoryClient,
  payment: PaymentClient,
  o: { leaseMs: number; timeoutMs?: number },
): Promise<{ orders: OrderService; store: OrderStore; upstreams: Upstreams }> {
  const store = await OrderStore.open(database, { leaseMs: o.leaseMs });
  const metrics = createServiceMetrics('order');
  const upstreams = new Upstreams(inventory, payment, {
    timeoutMs: o.timeoutMs ?? 200,
    resetTimeoutMs: 30_000,
    metrics,
    log: quiet,
    // Off: the test is about leases, and a breaker opened by the slow charges would only add retries.
    breakers: false,
  });
  t.after(async () => {
    await upstreams.close();
    await store.close();
  });
  return { orders: new OrderService(store, upstreams, quiet, metrics), store, upstreams };
}

const catalogue = [{ id: 'sku-1', price: 1250, stock: 100 }];

test('two replicas reconciling the same pending orders at once: each order is worked on by one replica at a time', async (t) => {
  const database = await freshDatabase();
  const inventory = new TrackingInventory(catalogue);
  const payment = new FakePayment();
  const a = await replica(t, database, inventory, payment, { leaseMs: 10_000 });
  const b = await replica(t, database, inventory, payment, { leaseMs: 10_000 });
  // Eight orders whose placer stopped right after storing them: pending, in stage reserving, leased to nobody.
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) {
    const { order } = await a.store.create(
      { customerId: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-1', quantity: 1, unit_price_cents: 1250 }] },
      'placer',
    );
    await a.store.unclaim(order.order_id, 'placer');
    ids.push(order.order_id);
  }

  const [byA, byB] = await Promise.all([a.orders.reconcileOnce(0), b.orders.reconcileOnce(0)]);
  assert.equal(byA + byB, 8, `every order taken once (a: ${String(byA)}, b: ${String(byB)})`);
  assert.equal(inventory.maxPerOrder, 1, 'never two replicas on one order at the same time');
  for (const id of ids) assert.equal((await b.orders.get(id)).status, 'confirmed');
  assert.equal(payment.charges.size, 8, 'one charge per order');
  assert.deepEqual(await a.store.counts(), { pending: 0, confirmed: 8, failed: 0 });
});

test('a replica killed mid-saga: the other leaves the order while its lease lives, then finishes it', async (t) => {
  const database = await freshDatabase();
  const inventory = new FakeInventory(catalogue);
  const payment = new FakePayment();
  const leaseMs = 800;
  const doomed = await replica(t, database, new HangingInventory(catalogue), payment, { leaseMs, timeoutMs: 60_000 });
  const survivor = await replica(t, database, inventory, payment, { leaseMs });

  // The doomed replica stores the order (leased to it) and hangs in the reserve step.
  void doomed.orders.place(oneUnit).catch(() => undefined);
  for (let i = 0; i < 200 && (await survivor.store.counts()).pending === 0; i++) await sleep(20);
  assert.equal((await survivor.store.counts()).pending, 1, 'the doomed replica stored the order');
  // "Killed": its store goes away with the saga still waiting on inventory.
  await doomed.store.close();

  // Positive control of the lease: while it lives, the survivor does not touch the order.
  assert.equal(await survivor.orders.reconcileOnce(0), 0, 'leased to the doomed replica');
  assert.equal((await survivor.store.counts()).pending, 1);

  await sleep(leaseMs + 100);
  assert.equal(await survivor.orders.reconcileOnce(0), 1, 'lease ran out: the survivor takes the order');
  assert.deepEqual(await survivor.store.counts(), { pending: 0, confirmed: 1, failed: 0 });
  assert.equal(payment.charges.size, 1, 'charged once');
});
