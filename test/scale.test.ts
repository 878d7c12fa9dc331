// The scale suite (`npm run test:scale`): 3 replicas of payment and
// inventory and 2 of order, on one PostgreSQL, behind the harness's
// round-robin TCP balancers (scripts/tcp-balancer.ts, mTLS end to end).
// 500 shoppers at once for 100 units of one product: exactly 100 orders
// confirmed, one succeeded payment each, the ledger equal to the confirmed
// totals, stock 0 and nothing pending once the reconciler has run, checked
// straight on the three databases. First with every replica up (the positive
// control), then with one replica of each service SIGKILLed mid-run.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { createDevCerts, freePorts, Shop, type ServiceName } from '../scripts/shop.ts';
import { startShopPostgres, type PgClient, type ShopPostgres } from '../scripts/shop-postgres.ts';

const SHOPPERS = 500;
const UNITS = 100;
const PRICE_CENTS = 1250;
const REPLICAS = { payment: 3, inventory: 3, order: 2 } as const;
const SERVICES: readonly ServiceName[] = ['order', 'payment', 'inventory'];
// One product per run, so each run's invariants are its own.
const RUNS = ['all-up', 'kills'] as const;
const productOf = (run: (typeof RUNS)[number]): string => `sku-scale-${run}`;

let dir: string;
let pg: ShopPostgres;
let shop: Shop;
const exits: string[] = [];
// Enough connections for every shopper at once; the order balancer spreads them over the order replicas.
const agent = new Agent({ connections: SHOPPERS });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'scale-'));
  const certsDir = join(dir, 'certs');
  await createDevCerts(certsDir, true, ['order', 'payment', 'inventory', 'postgres']);
  const seedFile = join(dir, 'catalogue.json');
  await writeFile(
    seedFile,
    JSON.stringify(
      RUNS.map((r) => ({
        product_id: productOf(r),
        name: r,
        price_cents: PRICE_CENTS,
        currency: 'EUR',
        on_hand: UNITS,
      })),
    ),
  );
  pg = await startShopPostgres({ certsDir, replicas: 3 });
  shop = new Shop({
    dataDir: join(dir, 'shop'),
    certsDir,
    ports: await freePorts(),
    replicas: REPLICAS,
    env: {
      inventory: { SEED_FILE: seedFile, ...pg.env('inventory') },
      payment: pg.env('payment'),
      order: {
        ...pg.env('order'),
        // Inventory over HTTP: gRPC keeps one HTTP/2 connection per channel, so
        // a per-connection balancer would pin each order replica to one
        // inventory replica; HTTP/1.1 opens a connection per call in flight.
        INVENTORY_PROTOCOL: 'http',
        // Generous: 500 orders at once on a small machine must not fail by timeouts.
        UPSTREAM_TIMEOUT_MS: '10000',
        RECONCILE_INTERVAL_MS: '250',
        PENDING_GRACE_MS: '2000',
      },
    },
    onExit: (name, code, signal, replica) => exits.push(`${name}-${replica} ${signal ?? code ?? '?'}`),
  });
  await shop.startAll();
});

// Everything the suite started is stopped, also when a test failed.
after(async () => {
  await shop.stopAll();
  await pg.stop();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  shop.killAllNow();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withDb<T>(name: ServiceName, fn: (db: PgClient) => Promise<T>): Promise<T> {
  const db = await pg.admin(name);
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

/** served is how many requests each replica of a service has answered (its own shop_requests_total). */
async function served(name: ServiceName): Promise<number[]> {
  return Promise.all(
    Array.from({ length: shop.replicas(name) }, async (_, i) => {
      const text = await (await request(`${shop.opsUrl(name, i + 1)}/metrics`)).body.text();
      return [...text.matchAll(/^shop_requests_total\{[^}]*\} (\S+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
    }),
  );
}

/** Outcome is what one shopper finally got. */
interface Outcome {
  status: number;
  orderStatus?: string;
  reason?: string | null;
  attempts: number;
}

/**
 * shop500 lets SHOPPERS shoppers order one unit of `product` at once, each as
 * a careful client: one Idempotency-Key, sent again after a lost connection
 * or a 503 (a replica killed under it), until an order comes back.
 */
async function shop500(product: string, onAnswer: (n: number) => void): Promise<Outcome[]> {
  let answered = 0;
  const one = async (n: number): Promise<Outcome> => {
    const key = randomUUID();
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await request(`${shop.orderUrl}/orders`, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({
            customer_id: `shopper-${n}`,
            currency: 'EUR',
            items: [{ product_id: product, quantity: 1 }],
          }),
          signal: AbortSignal.timeout(60_000),
        });
        const body = (await res.body.json()) as { status?: string; failure_reason?: string | null };
        if ((res.statusCode === 503 || res.statusCode === 409) && attempt < 20) {
          await sleep(250 * attempt);
          continue;
        }
        onAnswer(++answered);
        return { status: res.statusCode, orderStatus: body.status, reason: body.failure_reason, attempts: attempt };
      } catch (err) {
        if (attempt >= 20) {
          onAnswer(++answered);
          return { status: 0, reason: (err as Error).message, attempts: attempt };
        }
        await sleep(100 * attempt);
      }
    }
  };
  return Promise.all(Array.from({ length: SHOPPERS }, (_, n) => one(n)));
}

/** count runs a `SELECT COUNT(*) AS n …` on a service's database. */
function count(name: ServiceName, sql: string, values: unknown[] = []): Promise<number> {
  return withDb(name, async (db) => Number((await db.query(sql, values)).rows[0]?.n ?? NaN));
}

/** settle waits until the reconciler has left no order of `product` pending (bounded). */
async function settle(product: string): Promise<number> {
  const pending = (): Promise<number> =>
    count(
      'order',
      `SELECT COUNT(*) AS n FROM orders o JOIN order_items i ON i.order_id = o.id
       WHERE i.product_id = $1 AND o.status = 'pending'`,
      [product],
    );
  for (const until = Date.now() + 90_000; Date.now() < until;) {
    if ((await pending()) === 0) return 0;
    await sleep(500);
  }
  return pending();
}

/** Ledger is what the three databases say about one product's orders. */
interface Ledger {
  confirmed: number;
  failed: number;
  pending: number;
  confirmedTotal: number;
  /** net is what payment kept: succeeded charges minus refunds, over this product's orders. */
  net: number;
  onHand: number;
  held: number;
  inProgressKeys: number;
  problems: string[];
}

/** ledger reads the invariants of `product`'s orders straight from the databases (as test/chaos.test.ts does on SQLite). */
async function ledger(product: string): Promise<Ledger> {
  // The driver gives BIGINT columns as strings: every figure goes through Number().
  const orders = await withDb('order', async (db) =>
    (
      await db.query(
        `SELECT o.id, o.status, o.total_cents, o.payment_id FROM orders o
         WHERE EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.product_id = $1)`,
        [product],
      )
    ).rows.map((o) => ({
      id: String(o.id),
      status: String(o.status),
      total: Number(o.total_cents),
      paymentId: typeof o.payment_id === 'string' ? o.payment_id : null,
    })),
  );
  const paid = await withDb('payment', async (db) =>
    (
      await db.query(
        `SELECT p.payment_id, p.order_id, p.amount,
                COALESCE((SELECT SUM(r.amount) FROM refunds r WHERE r.payment_id = p.payment_id), 0) AS refunded
         FROM payments p WHERE p.status = 'succeeded' AND p.order_id = ANY($1::text[])`,
        [orders.map((o) => o.id)],
      )
    ).rows.map((p) => ({
      paymentId: String(p.payment_id),
      orderId: String(p.order_id),
      amount: Number(p.amount),
      refunded: Number(p.refunded),
    })),
  );
  const inProgressKeys = await count(
    'payment',
    `SELECT COUNT(*) AS n FROM idempotency_keys WHERE state = 'in_progress'`,
  );
  const onHand = await withDb('inventory', async (db) =>
    Number((await db.query(`SELECT on_hand FROM products WHERE product_id = $1`, [product])).rows[0]?.on_hand ?? NaN),
  );
  const held = await count(
    'inventory',
    `SELECT COUNT(*) AS n FROM reservations WHERE product_id = $1 AND status = 'reserved'`,
    [product],
  );
  const committed = await withDb(
    'inventory',
    async (db) =>
      new Set(
        (
          await db.query(`SELECT order_id FROM reservations WHERE product_id = $1 AND status = 'committed'`, [product])
        ).rows.map((r) => String(r.order_id)),
      ),
  );

  const problems: string[] = [];
  const byOrder = new Map<string, typeof paid>();
  for (const p of paid) byOrder.set(p.orderId, [...(byOrder.get(p.orderId) ?? []), p]);
  for (const o of orders) {
    const ps = byOrder.get(o.id) ?? [];
    if (o.status === 'confirmed') {
      if (ps.length !== 1) problems.push(`confirmed order ${o.id} has ${ps.length} succeeded payments`);
      else if (ps[0]?.paymentId !== o.paymentId || ps[0].amount !== o.total || ps[0].refunded !== 0)
        problems.push(
          `confirmed order ${o.id}: payment ${JSON.stringify(ps[0])} is not its unrefunded total ${o.total}`,
        );
      if (!committed.has(o.id)) problems.push(`confirmed order ${o.id} has no committed reservation`);
    } else {
      for (const p of ps)
        if (p.refunded !== p.amount)
          problems.push(`${o.status} order ${o.id}: payment ${p.paymentId} not fully refunded`);
      if (committed.has(o.id)) problems.push(`${o.status} order ${o.id} has a committed reservation`);
    }
  }
  const withStatus = (s: string): number => orders.filter((o) => o.status === s).length;
  return {
    confirmed: withStatus('confirmed'),
    failed: withStatus('failed'),
    pending: withStatus('pending'),
    confirmedTotal: orders.filter((o) => o.status === 'confirmed').reduce((s, o) => s + o.total, 0),
    net: paid.reduce((s, p) => s + p.amount - p.refunded, 0),
    onHand,
    held,
    inProgressKeys,
    problems,
  };
}

function tally(outcomes: Outcome[]): string {
  const m = new Map<string, number>();
  for (const o of outcomes) {
    const k =
      o.status === 201 || o.status === 200
        ? `${o.status === 200 ? 'replayed ' : ''}${o.orderStatus ?? ''}${o.reason ? `:${o.reason}` : ''}`
        : `HTTP ${o.status}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m].map(([k, v]) => `${k} ${v}`).join(', ');
}

function assertSoldOutExactly(l: Ledger, what: string): void {
  assert.deepEqual(l.problems, [], `${what}: every order's payment and reservation agree with its status`);
  assert.equal(l.pending, 0, `${what}: nothing pending after the reconciler`);
  assert.equal(l.confirmed, UNITS, `${what}: exactly ${UNITS} orders confirmed`);
  assert.equal(l.confirmedTotal, UNITS * PRICE_CENTS);
  assert.equal(l.net, l.confirmedTotal, `${what}: payment's ledger (charges − refunds) = the confirmed totals`);
  assert.equal(l.onHand, 0, `${what}: stock 0`);
  assert.equal(l.held, 0, `${what}: no reservation left held`);
  assert.equal(l.inProgressKeys, 0, `${what}: no charge or refund left in progress`);
}

describe(`scale: ${REPLICAS.order} order, ${REPLICAS.payment} payment, ${REPLICAS.inventory} inventory replicas on one PostgreSQL`, () => {
  test('the services keep their data in PostgreSQL (not in a SQLite file per replica)', async () => {
    for (const name of SERVICES) {
      const tables = await count(
        name,
        `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public'`,
      );
      assert.ok(tables > 0, `${name} created no tables in its PostgreSQL database: does it read DATABASE_URL?`);
    }
    const catalogue = await count('inventory', `SELECT COUNT(*) AS n FROM products`);
    assert.equal(catalogue, RUNS.length, 'the catalogue was seeded once, not once per replica');
  });

  test(`every replica up: ${SHOPPERS} orders at once for ${UNITS} units → exactly ${UNITS} confirmed`, async () => {
    const before = {
      order: await served('order'),
      payment: await served('payment'),
      inventory: await served('inventory'),
    };
    const t0 = Date.now();
    const outcomes = await shop500(productOf('all-up'), () => undefined);
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(await settle(productOf('all-up')), 0, 'the reconciler settled every pending order');
    const l = await ledger(productOf('all-up'));
    console.log(
      `scale all-up: ${tally(outcomes)} in ${seconds.toFixed(1)} s; ledger ${JSON.stringify({ ...l, problems: l.problems.length })}`,
    );
    // Positive control for the balancing: every replica took part, so the
    // invariants below are held by the database across processes.
    for (const name of SERVICES) {
      const now = await served(name);
      assert.ok(
        now.every((n, i) => n > (before[name][i] ?? 0)),
        `every ${name} replica answered requests (${before[name].join(',')} → ${now.join(',')})`,
      );
    }
    assert.deepEqual(
      outcomes.filter((o) => o.status !== 201 && o.status !== 200),
      [],
      'every shopper got an order back (201, or 200 for a replay of its Idempotency-Key)',
    );
    // With every replica up an order fails for want of stock, or because a
    // service shed load (503 when its database pool stays busy: 500 orders at
    // once on a small, shared machine); never for anything else.
    for (const o of outcomes)
      assert.ok(
        o.orderStatus === 'confirmed' || /^(out_of_stock|[a-z]+_unavailable)?$/.test(o.reason ?? ''),
        `answer ${JSON.stringify(o)}`,
      );
    assert.ok(
      outcomes.filter((o) => o.orderStatus === 'confirmed').length <= UNITS,
      'no more confirmations than units',
    );
    assertSoldOutExactly(l, 'all up');
    assert.deepEqual(exits, [], 'no replica exited');
  });

  test(`one replica of each service SIGKILLed mid-run: still exactly ${UNITS} confirmed, nothing charged twice`, async () => {
    const victims = [
      ['payment', 2],
      ['inventory', 3],
      ['order', 2],
    ] as const;
    let killed = false;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      for (const [name, replica] of victims) {
        const pid = shop.pid(name, replica);
        assert.ok(pid !== undefined, `${name}-${replica} runs before the kill`);
        process.kill(pid, 'SIGKILL');
      }
    };
    // Mid-run: once a fifth of the shoppers have their answer, orders are in
    // every stage on every replica.
    const outcomes = await shop500(productOf('kills'), (n) => {
      if (n === SHOPPERS / 5) kill();
    });
    assert.ok(killed, 'the replicas were killed during the run');
    assert.equal(
      await settle(productOf('kills')),
      0,
      'the reconciler (on the surviving order replica) settled every pending order',
    );
    const l = await ledger(productOf('kills'));
    console.log(`scale kills: ${tally(outcomes)}; ledger ${JSON.stringify({ ...l, problems: l.problems.length })}`);
    assert.deepEqual(
      [...exits].sort(),
      victims.map(([n, r]) => `${n}-${r} SIGKILL`).sort(),
      'the three victims died, and nothing else',
    );
    assert.deepEqual(
      outcomes.filter((o) => o.status !== 201 && o.status !== 200),
      [],
      'every shopper got an order back (201, or 200 replaying its Idempotency-Key after a lost connection)',
    );
    assertSoldOutExactly(l, 'with kills');
  });
});
