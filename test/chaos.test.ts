// The chaos suite: the shop with shoppers, then faults in turn — payment
// frozen, payment slower than order's timeout, payment failing half its
// charges, inventory killed and restarted — and, once the reconciler has
// settled, the money invariants checked straight on the three databases.
// `npm run test:chaos`; CI runs it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { createDevCerts, freePorts, Shop } from '../scripts/shop.ts';

const CATALOGUE = [
  { product_id: 'sku-a', name: 'A', price_cents: 1000, currency: 'EUR', on_hand: 100_000 },
  { product_id: 'sku-b', name: 'B', price_cents: 250, currency: 'EUR', on_hand: 100_000 },
  { product_id: 'sku-c', name: 'C', price_cents: 4999, currency: 'EUR', on_hand: 100_000 },
  // Runs out during the run: out-of-stock compensations happen under the faults too.
  { product_id: 'sku-limited', name: 'Limited', price_cents: 700, currency: 'EUR', on_hand: 60 },
];

// Order's timeouts, short so that every fault trips a breaker in seconds.
const UPSTREAM_TIMEOUT_MS = 500;
const BREAKER_RESET_MS = 1000;
// The longest an order request may take: its upstream calls (stock lines,
// charge, commit), each at most 3 attempts of UPSTREAM_TIMEOUT_MS plus
// backoff. A shopper gives up (and the test fails) past it.
const ANSWER_BUDGET_MS = 5 * (3 * UPSTREAM_TIMEOUT_MS + 600);

let dir: string;
let shop: Shop;
const agent = new Agent({ connections: 16 });

before(async () => {
  // A short folder of its own: the services' data, logs and certificates.
  dir = await mkdtemp(join(tmpdir(), 'chaos-'));
  const certsDir = join(dir, 'certs');
  await createDevCerts(certsDir, true);
  const seedFile = join(dir, 'catalogue.json');
  await writeFile(seedFile, JSON.stringify(CATALOGUE));
  shop = new Shop({
    dataDir: dir,
    certsDir,
    ports: await freePorts(),
    env: {
      inventory: { SEED_FILE: seedFile },
      order: {
        UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
        BREAKER_RESET_MS: String(BREAKER_RESET_MS),
        RECONCILE_INTERVAL_MS: '250',
        PENDING_GRACE_MS: '1000',
      },
    },
  });
  await shop.startAll();
});

// Every process the suite started is stopped, also when a test failed
// (a frozen one is thawed first by stop()).
after(async () => {
  await shop.stopAll();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  shop.killAllNow();
});

/** Answer is what one shopper's request saw. */
interface Answer {
  at: number;
  ms: number;
  status: number;
  code?: string;
  orderStatus?: string;
  reason?: string | null;
  retryAfter?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}

/** shoppers place orders (each with its own Idempotency-Key) until stopped, recording every answer. */
function shoppers(count: number, answers: Answer[]): { stop: () => Promise<void> } {
  let stopped = false;
  const one = async (n: number): Promise<void> => {
    while (!stopped) {
      const lines = new Map<string, number>();
      for (let i = 0, k = 1 + Math.floor(Math.random() * 2); i < k; i++)
        lines.set(pick(CATALOGUE).product_id, 1 + Math.floor(Math.random() * 3));
      const t0 = Date.now();
      try {
        const res = await request(`${shop.orderUrl}/orders`, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          body: JSON.stringify({
            customer_id: `shopper-${n}`,
            currency: 'EUR',
            items: [...lines].map(([product_id, quantity]) => ({ product_id, quantity })),
          }),
          signal: AbortSignal.timeout(ANSWER_BUDGET_MS),
        });
        const body = (await res.body.json()) as { code?: string; status?: string; failure_reason?: string | null };
        const retryAfter = res.headers['retry-after'];
        answers.push({
          at: t0,
          ms: Date.now() - t0,
          status: res.statusCode,
          code: body.code,
          orderStatus: body.status,
          reason: body.failure_reason,
          retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
        });
      } catch (err) {
        answers.push({ at: t0, ms: Date.now() - t0, status: 0, code: (err as Error).name });
      }
      await sleep(20);
    }
  };
  const running = Promise.all(Array.from({ length: count }, (_, n) => one(n)));
  return {
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/** BreakerWatch records the order service's breaker states over time, from its /metrics. */
class BreakerWatch {
  readonly changes: { at: number; breaker: string; state: number }[] = [];
  readonly #last = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    this.#timer = setInterval(() => void this.#poll(), 100);
  }

  async #poll(): Promise<void> {
    try {
      const res = await request(`${shop.opsUrl('order')}/metrics`, { signal: AbortSignal.timeout(1000) });
      const text = await res.body.text();
      for (const m of text.matchAll(/^shop_circuit_breaker_state\{breaker="([^"]+)"[^}]*\} (\d+)/gm)) {
        const [breaker, state] = [m[1] as string, Number(m[2])];
        if (this.#last.get(breaker) !== state) {
          this.#last.set(breaker, state);
          this.changes.push({ at: Date.now(), breaker, state });
        }
      }
    } catch {
      // order busy for a moment: the next poll catches up
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** openedAfter is how long after `t` the breaker first opened (state 2), or undefined. */
  openedAfter(breaker: string, t: number): number | undefined {
    const c = this.changes.find((x) => x.breaker === breaker && x.state === 2 && x.at >= t);
    return c && c.at - t;
  }

  /** closedAfter is how long after `t` the breaker was closed (state 0): 0 if it already was, undefined if never. */
  closedAfter(breaker: string, t: number): number | undefined {
    const mine = this.changes.filter((x) => x.breaker === breaker);
    if (mine.findLast((x) => x.at < t)?.state === 0) return 0;
    const c = mine.find((x) => x.state === 0 && x.at >= t);
    return c && c.at - t;
  }
}

async function setFaults(faults: { latency_ms?: number; failure_rate?: number }): Promise<void> {
  const res = await request(`http://127.0.0.1:${shop.ports.paymentAdmin}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  assert.equal(res.statusCode, 200, await res.body.text());
}

function openDb(service: 'order' | 'payment' | 'inventory'): DatabaseSync {
  return new DatabaseSync(join(dir, service, `${service}.db`), { readOnly: true });
}

function pendingOrders(): number {
  const db = openDb('order');
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM orders WHERE status = 'pending'`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Fault is one disturbance: `on` starts it, `off` ends it. */
interface Fault {
  name: string;
  breaker: string;
  /** unreachable: nothing answers while the fault lasts. */
  unreachable: boolean;
  on: () => Promise<void> | void;
  off: () => Promise<void> | void;
}

const FAULTS: Fault[] = [
  {
    name: 'payment frozen (SIGSTOP)',
    breaker: 'payment:http',
    unreachable: true,
    on: () => {
      shop.freeze('payment');
    },
    off: () => {
      shop.thaw('payment');
    },
  },
  {
    name: "payment slower than order's timeout",
    breaker: 'payment:http',
    unreachable: false,
    on: () => setFaults({ latency_ms: 3 * UPSTREAM_TIMEOUT_MS }),
    off: () => setFaults({ latency_ms: 0 }),
  },
  {
    name: 'payment failing half its charges',
    breaker: 'payment:http',
    unreachable: false,
    on: () => setFaults({ failure_rate: 0.5 }),
    off: () => setFaults({ failure_rate: 0 }),
  },
  {
    name: 'inventory killed and restarted',
    breaker: 'inventory:grpc',
    unreachable: true,
    on: async () => {
      await shop.stop('inventory', 'SIGKILL');
    },
    off: () => shop.start('inventory'),
  },
];

test('chaos: faults in turn under shoppers; afterwards every confirmed order has exactly one payment, no failed order a charge', async () => {
  const answers: Answer[] = [];
  const watch = new BreakerWatch();
  watch.start();
  const load = shoppers(6, answers);
  const report: string[] = [];
  const windows: { name: string; from: number; to: number }[] = [];
  try {
    const confirmedSoFar = (): number => answers.filter((a) => a.orderStatus === 'confirmed').length;
    for (const until = Date.now() + 30_000; confirmedSoFar() < 20 && Date.now() < until;) await sleep(200);
    assert.ok(confirmedSoFar() >= 20, `positive control: orders are confirmed before any fault (${confirmedSoFar()})`);
    for (const f of FAULTS) {
      const t0 = Date.now();
      await f.on();
      await sleep(6000);
      const t1 = Date.now();
      await f.off();
      // Calm until the breaker has closed again (bounded), then a little more.
      for (const until = Date.now() + 30_000; Date.now() < until;) {
        if (watch.closedAfter(f.breaker, t1) !== undefined) break;
        await sleep(200);
      }
      await sleep(2000);
      windows.push({ name: f.name, from: t0, to: t1 });
      const opened = watch.openedAfter(f.breaker, t0);
      const closed = watch.closedAfter(f.breaker, t1);
      const during = answers.filter((a) => a.at >= t0 && a.at < t1);
      const outcomes = new Map<string, number>();
      for (const a of during) {
        const k = a.status === 201 ? `${a.orderStatus ?? ''}${a.reason ? `:${a.reason}` : ''}` : String(a.status);
        outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      }
      report.push(
        `${f.name}: breaker ${f.breaker} ${opened === undefined ? 'stayed closed' : `opened after ${opened} ms`}, ` +
          `${closed === undefined ? 'not closed' : `closed ${closed} ms after the fault ended`}; ` +
          `answers: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`,
      );
      // An upstream that answers nothing must trip its breaker; a slow or
      // flaky one may or may not, depending on how many calls still succeed.
      if (f.unreachable) assert.notEqual(opened, undefined, `${f.name}: the ${f.breaker} breaker opened`);
      if (opened !== undefined)
        assert.notEqual(closed, undefined, `${f.name}: the ${f.breaker} breaker closed again once the fault ended`);
    }
  } finally {
    await load.stop();
    watch.stop();
    shop.thaw('payment');
  }

  // The order API kept answering: within its budget, and 503 only with Retry-After.
  const slowest = Math.max(...answers.map((a) => a.ms));
  const noAnswer = answers.filter((a) => a.status === 0);
  assert.deepEqual(noAnswer, [], `every request was answered within ${ANSWER_BUDGET_MS} ms`);
  for (const a of answers.filter((x) => x.status === 503)) {
    assert.equal(a.code, 'UPSTREAM_UNAVAILABLE');
    assert.ok(Number(a.retryAfter) >= 1, `503 with Retry-After (${JSON.stringify(a)})`);
  }
  const unexpected = answers.filter((a) => ![201, 503].includes(a.status));
  assert.deepEqual(unexpected, [], 'only 201 (an order) or 503 (an upstream is out)');

  // The reconciler settles every order left pending.
  const deadline = Date.now() + 60_000;
  while (pendingOrders() > 0 && Date.now() < deadline) await sleep(250);

  const order = openDb('order');
  const payment = openDb('payment');
  const inventory = openDb('inventory');
  try {
    const counts = order.prepare('SELECT status, COUNT(*) AS n FROM orders GROUP BY status').all() as {
      status: string;
      n: number;
    }[];
    const n = Object.fromEntries(counts.map((c) => [c.status, c.n]));
    report.push(
      `orders: ${n.confirmed ?? 0} confirmed, ${n.failed ?? 0} failed, ${n.pending ?? 0} pending; ` +
        `${answers.length} answers, slowest ${slowest} ms`,
    );
    for (const w of windows) {
      const reasons = order
        .prepare(
          `SELECT failure_reason AS reason, COUNT(*) AS n FROM orders WHERE status = 'failed'
           AND created_at >= ? AND created_at < ? GROUP BY failure_reason`,
        )
        .all(w.from, w.to + 4000) as { reason: string; n: number }[];
      report.push(`  failed during ${w.name}: ${reasons.map((r) => `${r.reason}=${r.n}`).join(', ') || 'none'}`);
    }
    console.log(`chaos report:\n${report.join('\n')}`);

    assert.equal(n.pending ?? 0, 0, 'nothing pending once the reconciler settled');
    assert.ok((n.confirmed ?? 0) > 50, 'the shop sold through the run');
    assert.ok((n.failed ?? 0) > 0, 'the faults failed some orders (the suite exercised compensation)');

    // Payment's ledger: succeeded payments with what was refunded of each.
    const paid = payment
      .prepare(
        `SELECT p.payment_id, p.order_id, p.amount, p.currency,
                COALESCE((SELECT SUM(r.amount) FROM refunds r WHERE r.payment_id = p.payment_id), 0) AS refunded
         FROM payments p WHERE p.status = 'succeeded'`,
      )
      .all() as { payment_id: string; order_id: string; amount: number; currency: string; refunded: number }[];
    const byOrder = new Map<string, typeof paid>();
    for (const p of paid) byOrder.set(p.order_id, [...(byOrder.get(p.order_id) ?? []), p]);

    const orders = order.prepare('SELECT id, status, total_cents, currency, payment_id FROM orders').all() as {
      id: string;
      status: string;
      total_cents: number;
      currency: string;
      payment_id: string | null;
    }[];
    const confirmed = new Set<string>();
    for (const o of orders) {
      const ps = byOrder.get(o.id) ?? [];
      if (o.status === 'confirmed') {
        confirmed.add(o.id);
        assert.equal(ps.length, 1, `confirmed order ${o.id} has exactly one succeeded payment`);
        const [p] = ps as [(typeof paid)[number]];
        assert.deepEqual(
          { id: p.payment_id, amount: p.amount, currency: p.currency, refunded: p.refunded },
          { id: o.payment_id, amount: o.total_cents, currency: o.currency, refunded: 0 },
          `confirmed order ${o.id}: its payment, its total, unrefunded`,
        );
      } else {
        for (const p of ps)
          assert.equal(p.refunded, p.amount, `failed order ${o.id} has payment ${p.payment_id} not fully refunded`);
      }
    }
    for (const p of paid)
      if (!confirmed.has(p.order_id))
        assert.equal(p.refunded, p.amount, `payment ${p.payment_id} of a non-confirmed order is fully refunded`);
    const running = payment.prepare(`SELECT COUNT(*) AS n FROM idempotency_keys WHERE state = 'in_progress'`).get() as {
      n: number;
    };
    assert.equal(running.n, 0, 'no charge or refund left in progress at payment');

    // Inventory: no product below zero, committed lines = confirmed order lines, nothing held.
    const now = Date.now();
    const stock = inventory
      .prepare(
        `SELECT p.product_id, p.on_hand - COALESCE((SELECT SUM(r.quantity) FROM reservations r
           WHERE r.product_id = p.product_id AND r.status = 'reserved' AND r.expires_at > ?), 0) AS available
         FROM products p`,
      )
      .all(now) as { product_id: string; available: number }[];
    for (const s of stock) assert.ok(s.available >= 0, `${s.product_id} below zero: ${s.available}`);
    const held = inventory.prepare(`SELECT order_id, product_id FROM reservations WHERE status = 'reserved'`).all();
    assert.deepEqual(held, [], 'no reservation left held');
    const committed = inventory
      .prepare(
        `SELECT order_id, product_id, quantity FROM reservations WHERE status = 'committed' ORDER BY order_id, product_id`,
      )
      .all() as { order_id: string; product_id: string; quantity: number }[];
    const lines = order
      .prepare(
        `SELECT i.order_id, i.product_id, i.quantity FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE o.status = 'confirmed' ORDER BY i.order_id, i.product_id`,
      )
      .all() as { order_id: string; product_id: string; quantity: number }[];
    assert.deepEqual(
      committed.map((c) => ({ ...c })),
      lines.map((l) => ({ ...l })),
      'committed reservations are exactly the confirmed order lines',
    );
    const sold = inventory.prepare(`SELECT on_hand FROM products WHERE product_id = 'sku-limited'`).get() as {
      on_hand: number;
    };
    const soldLimited = lines.filter((l) => l.product_id === 'sku-limited').reduce((s, l) => s + l.quantity, 0);
    assert.equal(sold.on_hand, 60 - soldLimited, 'stock on hand = seeded − committed');
  } finally {
    order.close();
    payment.close();
    inventory.close();
  }
});
