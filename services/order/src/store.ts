import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  isUniqueViolation,
  openDatabase,
  type Database,
  type DatabaseConfig,
  type DatabaseHealth,
  type Migration,
  type OpenDatabaseOptions,
} from '@shop/service-kit';

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

// One step per version, the same for SQLite and PostgreSQL (service-kit's
// database.ts says how); only ever append.
const migrations: Migration[] = [
  `
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
  `,
  // The fingerprint of the request that created an order under an
  // Idempotency-Key, so a reuse of the key for another request is refused.
  // Orders placed before this step have none (NULL): see sameRequest in orders.ts.
  'ALTER TABLE orders ADD COLUMN request_fingerprint TEXT',
  // The lease of the replica working on an order (its saga, or its
  // reconciler): taken with a conditional UPDATE, so one replica at a time
  // works on an order; a lease whose holder died runs out and is taken over.
  `
      ALTER TABLE orders ADD COLUMN lease_owner TEXT;
      ALTER TABLE orders ADD COLUMN lease_until INTEGER;
  `,
];

/** DEFAULT_LEASE_MS is how long a replica's claim on an order lasts unless renewed (each saga step renews it). */
export const DEFAULT_LEASE_MS = 15_000;

/** OrderStoreOptions configure OrderStore.open. */
export interface OrderStoreOptions {
  /** now is the clock in ms since the epoch. Default: Date.now. */
  now?: () => number;
  /** leaseMs is how long a claim on an order lasts unless renewed. Default: DEFAULT_LEASE_MS. */
  leaseMs?: number;
  /** open are the identity and logger the database needs (client certificate, lost/back lines). */
  open?: OpenDatabaseOptions;
}

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

/**
 * OrderStore owns the order service's database (SQLite under DATA_DIR, or
 * PostgreSQL). An order is worked on by whoever holds its lease
 * (`claim`): the request that placed it, then the reconciler of any replica
 * once the lease ran out; the database decides, so two replicas never run
 * the saga of one order at once.
 */
export class OrderStore {
  readonly #db: Database;
  readonly #now: () => number;
  readonly #leaseMs: number;

  private constructor(db: Database, o: OrderStoreOptions) {
    this.#db = db;
    this.#now = o.now ?? Date.now;
    this.#leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** open opens (creating and migrating if needed) the database `config` names. */
  static async open(config: DatabaseConfig, o: OrderStoreOptions = {}): Promise<OrderStore> {
    return new OrderStore(await openDatabase(config, migrations, o.open), o);
  }

  /** sqliteConfig is the default database of `dataDir`: `order.db` in it (":memory:" for none). */
  static sqliteConfig(dataDir: string): DatabaseConfig {
    return { engine: 'sqlite', file: dataDir === ':memory:' ? ':memory:' : join(dataDir, 'order.db') };
  }

  /** isOpen is true until close(). */
  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  /** health is the database's readiness (the `store` check of /health/ready). */
  health(): DatabaseHealth {
    return this.#db.health();
  }

  /**
   * create stores a new pending order in stage `reserving`, leased to
   * `owner`, or returns the order a repeated request key already created
   * (orders.ts decides whether it is the same request). Two replicas
   * creating under one key at once: the UNIQUE request_key refuses the
   * second, which then finds the first's order.
   */
  async create(o: NewOrder, owner: string): Promise<CreateResult> {
    try {
      return await this.#create(o, owner);
    } catch (err) {
      if (o.requestKey === undefined || !isUniqueViolation(err)) throw err;
      return this.#create(o, owner);
    }
  }

  #create(o: NewOrder, owner: string): Promise<CreateResult> {
    return this.#db.transaction(async () => {
      if (o.requestKey !== undefined) {
        const existing = await this.#db.get<{ id: string; request_fingerprint: string | null }>(
          'SELECT id, request_fingerprint FROM orders WHERE request_key = $1',
          [o.requestKey],
        );
        if (existing) {
          const order = (await this.get(existing.id)) as Order;
          return { order, created: false, storedFingerprint: existing.request_fingerprint };
        }
      }
      const id = randomUUID();
      const now = this.#now();
      const total = o.items.reduce((sum, i) => sum + i.quantity * i.unit_price_cents, 0);
      await this.#db.run(
        `INSERT INTO orders (id, customer_id, currency, total_cents, status, stage, request_key, request_fingerprint,
                             created_at, updated_at, lease_owner, lease_until)
         VALUES ($1, $2, $3, $4, 'pending', 'reserving', $5, $6, $7, $7, $8, $9)`,
        [
          id,
          o.customerId,
          o.currency,
          total,
          o.requestKey ?? null,
          o.requestKey === undefined ? null : (o.requestFingerprint ?? null),
          now,
          owner,
          now + this.#leaseMs,
        ],
      );
      for (const i of o.items) {
        await this.#db.run(
          'INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)',
          [id, i.product_id, i.quantity, i.unit_price_cents],
        );
      }
      return { order: (await this.get(id)) as Order, created: true as const };
    });
  }

  /** get returns an order with its items, or undefined. */
  async get(id: string): Promise<Order | undefined> {
    const row = await this.#db.get<OrderRow>('SELECT * FROM orders WHERE id = $1', [id]);
    if (!row) return undefined;
    const items = await this.#db.all<OrderItem>(
      'SELECT product_id, quantity, unit_price_cents FROM order_items WHERE order_id = $1 ORDER BY product_id',
      [id],
    );
    return {
      order_id: row.id,
      customer_id: row.customer_id,
      currency: row.currency,
      total_cents: row.total_cents,
      status: row.status,
      stage: row.stage,
      failure_reason: row.failure_reason,
      payment_id: row.payment_id,
      items: items.map((i) => ({
        product_id: i.product_id,
        quantity: i.quantity,
        unit_price_cents: i.unit_price_cents,
      })),
      created_at: new Date(row.created_at).toISOString(),
      updated_at: new Date(row.updated_at).toISOString(),
    };
  }

  /**
   * claim leases a pending order to `owner` for the lease time, if nobody
   * else holds a live lease on it (a conditional UPDATE: the database picks
   * one winner); true when `owner` now holds it. The holder claims again to
   * renew.
   */
  async claim(id: string, owner: string): Promise<boolean> {
    const now = this.#now();
    const changed = await this.#db.run(
      `UPDATE orders SET lease_owner = $1, lease_until = $2
       WHERE id = $3 AND status = 'pending' AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= $4)`,
      [owner, now + this.#leaseMs, id, now],
    );
    return changed === 1;
  }

  /** unclaim gives up `owner`'s lease on an order (its saga stopped for now), so another replica's reconciler may take it. */
  async unclaim(id: string, owner: string): Promise<void> {
    await this.#db.run('UPDATE orders SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [
      id,
      owner,
    ]);
  }

  /** advance moves a pending order to another stage (and records what it learned on the way). */
  async advance(
    id: string,
    stage: OrderStage,
    fields: { paymentId?: string; failureReason?: string } = {},
  ): Promise<void> {
    await this.#db.run(
      `UPDATE orders SET stage = $1, payment_id = COALESCE($2, payment_id), failure_reason = COALESCE($3, failure_reason),
       attempts = attempts + 1, updated_at = $4 WHERE id = $5 AND status = 'pending'`,
      [stage, fields.paymentId ?? null, fields.failureReason ?? null, this.#now(), id],
    );
  }

  /** finish ends an order as confirmed or failed. */
  async finish(id: string, status: 'confirmed' | 'failed', failureReason?: string): Promise<void> {
    await this.#db.run(
      `UPDATE orders SET status = $1, stage = 'done', failure_reason = COALESCE($2, failure_reason), updated_at = $3,
       lease_owner = NULL, lease_until = NULL
       WHERE id = $4 AND status = 'pending'`,
      [status, failureReason ?? null, this.#now(), id],
    );
  }

  /** touch marks an order as looked at now (so the reconciler backs off from it). */
  async touch(id: string): Promise<void> {
    await this.#db.run('UPDATE orders SET attempts = attempts + 1, updated_at = $1 WHERE id = $2', [this.#now(), id]);
  }

  /** stalePending lists pending orders untouched for `graceMs` and leased to nobody (or to a lease that ran out), oldest first. */
  async stalePending(graceMs: number, limit = 50): Promise<Order[]> {
    const now = this.#now();
    const rows = await this.#db.all<{ id: string }>(
      `SELECT id FROM orders WHERE status = 'pending' AND updated_at <= $1 AND (lease_until IS NULL OR lease_until <= $2)
       ORDER BY updated_at LIMIT $3`,
      [now - graceMs, now, limit],
    );
    const orders: Order[] = [];
    for (const r of rows) orders.push((await this.get(r.id)) as Order);
    return orders;
  }

  /** counts returns the number of orders by status (for the demo's summary and tests). */
  async counts(): Promise<Record<OrderStatus, number>> {
    const rows = await this.#db.all<{ status: OrderStatus; n: number }>(
      'SELECT status, COUNT(*) AS n FROM orders GROUP BY status',
    );
    const out: Record<OrderStatus, number> = { pending: 0, confirmed: 0, failed: 0 };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  /** close closes the database; idempotent. */
  close(): Promise<void> {
    return this.#db.close();
  }
}
