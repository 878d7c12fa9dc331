// The inventory's SQL, and nothing else: the rules (what may be reserved,
// released, committed) are in stock.ts, which calls these inside one
// transaction per operation.
import type { ReservationStatus } from '@shop/contracts';
import {
  DatabaseUnavailableError,
  openDatabase,
  type Database,
  type DatabaseConfig,
  type DatabaseHealth,
  type Migration,
  type OpenDatabaseOptions,
} from '@shop/service-kit';
import { inventoryError } from './errors.ts';
import type { SeedProduct } from './seed.ts';

/**
 * MIGRATIONS is the store's schema, one step per version, the same for
 * SQLite and PostgreSQL (service-kit's database.ts says how); only ever append.
 */
export const MIGRATIONS: readonly Migration[] = [
  `
      CREATE TABLE products (
        product_id  TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
        currency    TEXT NOT NULL,
        on_hand     INTEGER NOT NULL CHECK (on_hand >= 0)
      ) STRICT;
      CREATE TABLE reservations (
        reservation_id TEXT PRIMARY KEY,
        order_id       TEXT NOT NULL,
        product_id     TEXT NOT NULL REFERENCES products (product_id),
        quantity       INTEGER NOT NULL CHECK (quantity > 0),
        status         TEXT NOT NULL CHECK (status IN ('reserved', 'released', 'committed', 'expired')),
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        UNIQUE (order_id, product_id)
      ) STRICT;
      CREATE INDEX reservations_by_product ON reservations (product_id, status, expires_at);
      CREATE INDEX reservations_by_status ON reservations (status, expires_at);
  `,
];

/** StoreOptions configure InventoryStore.open. */
export interface StoreOptions {
  /** database is where the store is: a SQLite file (created with its directory if missing) or PostgreSQL. */
  database: DatabaseConfig;
  /** seed is the catalogue written when the products table is empty. Default: none. */
  seed?: readonly SeedProduct[];
  /** identity and logging for the database (client certificate, lost/back lines). */
  open?: OpenDatabaseOptions;
}

/** ProductRow is a product with the sum of its active reservations at the time asked for. */
export interface ProductRow {
  product_id: string;
  name: string;
  price_cents: number;
  currency: string;
  on_hand: number;
  reserved: number;
}

/** ReservationRow is one row of the reservations table (expires_at in ms since the epoch). */
export interface ReservationRow {
  reservation_id: string;
  order_id: string;
  product_id: string;
  quantity: number;
  status: ReservationStatus;
  expires_at: number;
}

const ACTIVE = `r.status = 'reserved' AND r.expires_at > $1`;

/**
 * InventoryStore owns the database of products and reservations (SQLite or
 * PostgreSQL). A reservation counts against a product's stock while its
 * status is "reserved" and `now` has not passed expires_at. `transaction`
 * runs a check-then-write atomically, and `lockProduct` makes concurrent
 * reserves of one product — from any connection, process or replica —
 * queue on the product's row (a row lock), so none oversells. A closed,
 * locked or unreachable database is STORE_UNAVAILABLE.
 */
export class InventoryStore {
  readonly #db: Database;

  private constructor(db: Database) {
    this.#db = db;
  }

  /**
   * open opens (or creates) the store, runs pending migrations and seeds the
   * catalogue if there are no products yet.
   */
  static async open(options: StoreOptions): Promise<InventoryStore> {
    const db = await openDatabase(options.database, MIGRATIONS, options.open);
    try {
      if (options.seed) await seedIfEmpty(db, options.seed);
      return new InventoryStore(db);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /** isOpen is true until close(). */
  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  /** health is the database's readiness (the `store` check of /health/ready). */
  health(): DatabaseHealth {
    return this.#db.health();
  }

  /** close closes the database; later calls fail with STORE_UNAVAILABLE. */
  close(): Promise<void> {
    return this.#db.close();
  }

  /** read runs `fn` (reads only) with the store's errors mapped: closed, locked or unreachable is STORE_UNAVAILABLE. */
  read<T>(fn: () => Promise<T>): Promise<T> {
    return this.#op(fn);
  }

  /** transaction runs `fn` in one transaction, rolled back if it throws. */
  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.#op(() => this.#db.transaction(fn));
  }

  /**
   * lockProduct holds the product's row until the transaction ends: a no-op
   * update takes PostgreSQL's row lock (SQLite's write lock is already
   * held), so the next reserve of this product reads the stock after ours.
   */
  async lockProduct(productId: string): Promise<void> {
    await this.#db.run('UPDATE products SET on_hand = on_hand WHERE product_id = $1', [productId]);
  }

  /** product returns one product with its active reservations at `now`. */
  product(productId: string, now: number): Promise<ProductRow | undefined> {
    return this.#db.get<ProductRow>(
      `SELECT p.product_id, p.name, p.price_cents, p.currency, p.on_hand,
              COALESCE((SELECT SUM(r.quantity) FROM reservations r WHERE r.product_id = p.product_id AND ${ACTIVE}), 0) AS reserved
       FROM products p WHERE p.product_id = $2`,
      [now, productId],
    );
  }

  /** products returns the catalogue with active reservations at `now`, ordered by product_id. */
  products(now: number): Promise<ProductRow[]> {
    return this.#db.all<ProductRow>(
      `SELECT p.product_id, p.name, p.price_cents, p.currency, p.on_hand, COALESCE(SUM(r.quantity), 0) AS reserved
       FROM products p LEFT JOIN reservations r ON r.product_id = p.product_id AND ${ACTIVE}
       GROUP BY p.product_id, p.name, p.price_cents, p.currency, p.on_hand ORDER BY p.product_id`,
      [now],
    );
  }

  /** reservationOf returns the reservation of one product for one order, in any status. */
  reservationOf(orderId: string, productId: string): Promise<ReservationRow | undefined> {
    return this.#db.get<ReservationRow>(
      `SELECT reservation_id, order_id, product_id, quantity, status, expires_at
       FROM reservations WHERE order_id = $1 AND product_id = $2`,
      [orderId, productId],
    );
  }

  /** reservationsOfOrder returns every reservation of an order, in any status, ordered by product_id. */
  reservationsOfOrder(orderId: string): Promise<ReservationRow[]> {
    return this.#db.all<ReservationRow>(
      `SELECT reservation_id, order_id, product_id, quantity, status, expires_at
       FROM reservations WHERE order_id = $1 ORDER BY product_id`,
      [orderId],
    );
  }

  /** insertReservation writes a new reservation in status "reserved". */
  async insertReservation(row: ReservationRow, now: number): Promise<void> {
    await this.#db.run(
      `INSERT INTO reservations (reservation_id, order_id, product_id, quantity, status, created_at, expires_at, updated_at)
       VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $5)`,
      [row.reservation_id, row.order_id, row.product_id, row.quantity, now, row.expires_at],
    );
  }

  /** setStatus changes a reservation's status. */
  async setStatus(reservationId: string, status: ReservationStatus, now: number): Promise<void> {
    await this.#db.run('UPDATE reservations SET status = $1, updated_at = $2 WHERE reservation_id = $3', [
      status,
      now,
      reservationId,
    ]);
  }

  /** takeOnHand lowers a product's stock on hand for good (a sale). */
  async takeOnHand(productId: string, quantity: number): Promise<void> {
    await this.#db.run('UPDATE products SET on_hand = on_hand - $1 WHERE product_id = $2', [quantity, productId]);
  }

  /** expireReservations marks reservations past their expiry at `now` as "expired" and returns how many. */
  expireReservations(now: number): Promise<number> {
    return this.#db.run(
      `UPDATE reservations SET status = 'expired', updated_at = $1 WHERE status = 'reserved' AND expires_at <= $1`,
      [now],
    );
  }

  async #op<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#db.isOpen)
      throw inventoryError('STORE_UNAVAILABLE', 'the store is closed: the service is shutting down; retry');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) {
        throw inventoryError('STORE_UNAVAILABLE', storeMessage(err), { cause: err, headers: err.headers });
      }
      throw err;
    }
  }
}

// The inventory's own wording of the database layer's 503 (its contract names STORE_UNAVAILABLE).
function storeMessage(err: DatabaseUnavailableError): string {
  return err.message.replace(/^the database/, 'the store');
}

// Concurrent first starts (replicas) may both find the table empty: ON
// CONFLICT DO NOTHING lets the second's inserts fall away instead of failing.
async function seedIfEmpty(db: Database, seed: readonly SeedProduct[]): Promise<void> {
  await db.transaction(async () => {
    const row = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM products');
    if ((row?.n ?? 0) > 0) return;
    for (const p of seed) {
      await db.run(
        `INSERT INTO products (product_id, name, price_cents, currency, on_hand)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (product_id) DO NOTHING`,
        [p.product_id, p.name, p.price_cents, p.currency, p.on_hand],
      );
    }
  });
}
