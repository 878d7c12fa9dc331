import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase, transaction, type Migration } from '@shop/service-kit';

/** OrderStatus is what a shopper sees. */
export type OrderStatus = 'pending' | 'confirmed' | 'failed';

/**
 * OrderStage is where the saga stands; a pending order in any stage but
 * `done` is the reconciler's to finish if the request that started it did not.
 */
export type OrderStage = 'reserving' | 'charging' | 'committing' | 'compensating' | 'done';

/** OrderItem is one line of an order, priced when the order was placed. */
export interface OrderItem {
  product_id: string;
  quantity: number;
  unit_price_cents: number;
}

/** Order is an order as the API returns it. */
export interface Order {
  order_id: string;
  customer_id: string;
  currency: string;
  total_cents: number;
  status: OrderStatus;
  stage: OrderStage;
  failure_reason: string | null;
  payment_id: string | null;
  items: OrderItem[];
  created_at: string;
  updated_at: string;
}

const migrations: Migration[] = [
  (db) => {
    db.exec(`
      CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        total_cents INTEGER NOT NULL CHECK (total_cents > 0),
        status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
        stage TEXT NOT NULL CHECK (stage IN ('reserving', 'charging', 'committing', 'compensating', 'done')),
        failure_reason TEXT,
        payment_id TEXT,
        request_key TEXT UNIQUE,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX orders_open ON orders (status, stage, updated_at);
      CREATE TABLE order_items (
        order_id TEXT NOT NULL REFERENCES orders (id),
        product_id TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
        PRIMARY KEY (order_id, product_id)
      );
    `);
  },
  // The fingerprint of the request that created an order under an
  // Idempotency-Key, so a reuse of the key for another request is refused.
  // Orders placed before this step have none (NULL): see sameRequest in orders.ts.
  (db) => {
    db.exec('ALTER TABLE orders ADD COLUMN request_fingerprint TEXT');
  },
];

interface OrderRow {
  id: string;
  customer_id: string;
  currency: string;
  total_cents: number;
  status: OrderStatus;
  stage: OrderStage;
  failure_reason: string | null;
  payment_id: string | null;
  created_at: number;
  updated_at: number;
}

/** NewOrder is what placing an order stores first, before any upstream call. */
export interface NewOrder {
  customerId: string;
  currency: string;
  items: OrderItem[];
  requestKey?: string;
  /** requestFingerprint identifies the request behind `requestKey` (a hash of its canonical body); a key reused with another one is refused. */
  requestFingerprint?: string;
}

/**
 * CreateResult is a new order (`created`), or the order an already used
 * request key created, with the fingerprint stored with it (null for an
 * order stored before fingerprints) for the caller to compare.
 */
export type CreateResult =
  { order: Order; created: true } | { order: Order; created: false; storedFingerprint: string | null };

/** OrderStore owns the order service's SQLite database. */
export class OrderStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  #open = true;

  constructor(dataDir: string, now: () => number = Date.now) {
    this.#db = openDatabase(dataDir === ':memory:' ? ':memory:' : join(dataDir, 'order.db'), migrations);
    this.#now = now;
  }

  /** isOpen is true until close(). */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * create stores a new pending order in stage `reserving`, or returns the
   * order a repeated request key already created (orders.ts decides whether
   * it is the same request).
   */
  create(o: NewOrder): CreateResult {
    return transaction(this.#db, () => {
      if (o.requestKey !== undefined) {
        const existing = this.#db
          .prepare('SELECT id, request_fingerprint FROM orders WHERE request_key = ?')
          .get(o.requestKey) as { id: string; request_fingerprint: string | null } | undefined;
        if (existing) {
          const order = this.get(existing.id) as Order;
          return { order, created: false, storedFingerprint: existing.request_fingerprint };
        }
      }
      const id = randomUUID();
      const now = this.#now();
      const total = o.items.reduce((sum, i) => sum + i.quantity * i.unit_price_cents, 0);
      this.#db
        .prepare(
          `INSERT INTO orders (id, customer_id, currency, total_cents, status, stage, request_key, request_fingerprint, created_at, updated_at)
           VALUES (?, ?, ?, ?, 'pending', 'reserving', ?, ?, ?, ?)`,
        )
        .run(
          id,
          o.customerId,
          o.currency,
          total,
          o.requestKey ?? null,
          o.requestKey === undefined ? null : (o.requestFingerprint ?? null),
          now,
          now,
        );
      const insert = this.#db.prepare(
        'INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (?, ?, ?, ?)',
      );
      for (const i of o.items) insert.run(id, i.product_id, i.quantity, i.unit_price_cents);
      return { order: this.get(id) as Order, created: true as const };
    });
  }

  /** get returns an order with its items, or undefined. */
  get(id: string): Order | undefined {
    const row = this.#db.prepare('SELECT * FROM orders WHERE id = ?').get(id) as OrderRow | undefined;
    if (!row) return undefined;
    const items = this.#db
      .prepare('SELECT product_id, quantity, unit_price_cents FROM order_items WHERE order_id = ? ORDER BY product_id')
      .all(id) as unknown as OrderItem[];
    return {
      order_id: row.id,
      customer_id: row.customer_id,
      currency: row.currency,
      total_cents: row.total_cents,
      status: row.status,
      stage: row.stage,
      failure_reason: row.failure_reason,
      payment_id: row.payment_id,
      items: items.map((i) => ({ ...i })),
      created_at: new Date(row.created_at).toISOString(),
      updated_at: new Date(row.updated_at).toISOString(),
    };
  }

  /** advance moves a pending order to another stage (and records what it learned on the way). */
  advance(id: string, stage: OrderStage, fields: { paymentId?: string; failureReason?: string } = {}): void {
    this.#db
      .prepare(
        `UPDATE orders SET stage = ?, payment_id = COALESCE(?, payment_id), failure_reason = COALESCE(?, failure_reason),
         attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'`,
      )
      .run(stage, fields.paymentId ?? null, fields.failureReason ?? null, this.#now(), id);
  }

  /** finish ends an order as confirmed or failed. */
  finish(id: string, status: 'confirmed' | 'failed', failureReason?: string): void {
    this.#db
      .prepare(
        `UPDATE orders SET status = ?, stage = 'done', failure_reason = COALESCE(?, failure_reason), updated_at = ?
         WHERE id = ? AND status = 'pending'`,
      )
      .run(status, failureReason ?? null, this.#now(), id);
  }

  /** touch marks an order as looked at now (so the reconciler backs off from it). */
  touch(id: string): void {
    this.#db.prepare('UPDATE orders SET attempts = attempts + 1, updated_at = ? WHERE id = ?').run(this.#now(), id);
  }

  /** stalePending lists pending orders untouched for `graceMs`, oldest first. */
  stalePending(graceMs: number, limit = 50): Order[] {
    const rows = this.#db
      .prepare(`SELECT id FROM orders WHERE status = 'pending' AND updated_at <= ? ORDER BY updated_at LIMIT ?`)
      .all(this.#now() - graceMs, limit) as { id: string }[];
    return rows.map((r) => this.get(r.id) as Order);
  }

  /** counts returns the number of orders by status (for the demo's summary and tests). */
  counts(): Record<OrderStatus, number> {
    const rows = this.#db.prepare('SELECT status, COUNT(*) AS n FROM orders GROUP BY status').all() as {
      status: OrderStatus;
      n: number;
    }[];
    const out: Record<OrderStatus, number> = { pending: 0, confirmed: 0, failed: 0 };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  /** close closes the database. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#db.close();
  }
}
