// The inventory's SQL, and nothing else: the rules (what may be reserved,
// released, committed) are in stock.ts, which calls these inside one
// transaction per operation.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ReservationStatus } from '@shop/contracts';
import { openDatabase, transaction, type Migration } from '@shop/service-kit';
import { inventoryError } from './errors.ts';
import type { SeedProduct } from './seed.ts';

/** MIGRATIONS is the store's schema, one step per version (SQLite `user_version`); only ever append. */
export const MIGRATIONS: readonly Migration[] = [
  (db) => {
    db.exec(`
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
    `);
  },
];

/** StoreOptions configure InventoryStore.open. */
export interface StoreOptions {
  /** file is the SQLite database file (created with its directory if missing), or ":memory:". */
  file: string;
  /** seed is the catalogue written when the products table is empty. Default: none. */
  seed?: readonly SeedProduct[];
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

// SQLITE_BUSY and SQLITE_LOCKED: another process held the write lock for the
// whole busy_timeout. https://www.sqlite.org/rescode.html
const BUSY_ERRCODES = new Set([5, 6]);

/**
 * InventoryStore owns the SQLite database of products and reservations. A
 * reservation counts against a product's stock while its status is
 * "reserved" and `now` has not passed expires_at. `transaction` runs a
 * check-then-write in one IMMEDIATE transaction, so concurrent writers (from
 * any number of connections or processes) queue instead of overselling; a
 * closed or locked database is STORE_UNAVAILABLE.
 */
export class InventoryStore {
  readonly #db: DatabaseSync;
  readonly #sql: Record<
    | 'product'
    | 'products'
    | 'reservationOf'
    | 'reservationsOfOrder'
    | 'insertReservation'
    | 'setStatus'
    | 'takeOnHand'
    | 'expire',
    StatementSync
  >;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    const active = `r.status = 'reserved' AND r.expires_at > :now`;
    this.#sql = {
      product: db.prepare(`
        SELECT p.product_id, p.name, p.price_cents, p.currency, p.on_hand,
               COALESCE((SELECT SUM(r.quantity) FROM reservations r WHERE r.product_id = p.product_id AND ${active}), 0) AS reserved
        FROM products p WHERE p.product_id = :product_id`),
      products: db.prepare(`
        SELECT p.product_id, p.name, p.price_cents, p.currency, p.on_hand, COALESCE(SUM(r.quantity), 0) AS reserved
        FROM products p LEFT JOIN reservations r ON r.product_id = p.product_id AND ${active}
        GROUP BY p.product_id ORDER BY p.product_id`),
      reservationOf: db.prepare(`
        SELECT reservation_id, order_id, product_id, quantity, status, expires_at
        FROM reservations WHERE order_id = :order_id AND product_id = :product_id`),
      reservationsOfOrder: db.prepare(`
        SELECT reservation_id, order_id, product_id, quantity, status, expires_at
        FROM reservations WHERE order_id = :order_id ORDER BY product_id`),
      insertReservation: db.prepare(`
        INSERT INTO reservations (reservation_id, order_id, product_id, quantity, status, created_at, expires_at, updated_at)
        VALUES (:reservation_id, :order_id, :product_id, :quantity, 'reserved', :now, :expires_at, :now)`),
      setStatus: db.prepare(
        `UPDATE reservations SET status = :status, updated_at = :now WHERE reservation_id = :reservation_id`,
      ),
      takeOnHand: db.prepare(`UPDATE products SET on_hand = on_hand - :quantity WHERE product_id = :product_id`),
      expire: db.prepare(
        `UPDATE reservations SET status = 'expired', updated_at = :now WHERE status = 'reserved' AND expires_at <= :now`,
      ),
    };
  }

  /**
   * open opens (or creates) the store at `options.file`, runs pending
   * migrations and seeds the catalogue if there are no products yet.
   */
  static open(options: StoreOptions): InventoryStore {
    const db = openDatabase(options.file, MIGRATIONS);
    try {
      if (options.seed) seedIfEmpty(db, options.seed);
      return new InventoryStore(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** isOpen is true until close(); the readiness check reads it. */
  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  /** close closes the database; later calls fail with STORE_UNAVAILABLE. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** read runs `fn` (reads only) with the store's errors mapped: closed or locked is STORE_UNAVAILABLE. */
  read<T>(fn: () => T): T {
    return this.#op(fn);
  }

  /** transaction runs `fn` in one IMMEDIATE transaction, rolled back if it throws. */
  transaction<T>(fn: () => T): T {
    return this.#op(() => transaction(this.#db, fn));
  }

  /** product returns one product with its active reservations at `now`. */
  product(productId: string, now: number): ProductRow | undefined {
    return this.#sql.product.get({ product_id: productId, now }) as ProductRow | undefined;
  }

  /** products returns the catalogue with active reservations at `now`, ordered by product_id. */
  products(now: number): ProductRow[] {
    return this.#sql.products.all({ now }) as unknown as ProductRow[];
  }

  /** reservationOf returns the reservation of one product for one order, in any status. */
  reservationOf(orderId: string, productId: string): ReservationRow | undefined {
    return this.#sql.reservationOf.get({ order_id: orderId, product_id: productId }) as ReservationRow | undefined;
  }

  /** reservationsOfOrder returns every reservation of an order, in any status, ordered by product_id. */
  reservationsOfOrder(orderId: string): ReservationRow[] {
    return this.#sql.reservationsOfOrder.all({ order_id: orderId }) as unknown as ReservationRow[];
  }

  /** insertReservation writes a new reservation in status "reserved". */
  insertReservation(row: ReservationRow, now: number): void {
    this.#sql.insertReservation.run({
      reservation_id: row.reservation_id,
      order_id: row.order_id,
      product_id: row.product_id,
      quantity: row.quantity,
      now,
      expires_at: row.expires_at,
    });
  }

  /** setStatus changes a reservation's status. */
  setStatus(reservationId: string, status: ReservationStatus, now: number): void {
    this.#sql.setStatus.run({ status, now, reservation_id: reservationId });
  }

  /** takeOnHand lowers a product's stock on hand for good (a sale). */
  takeOnHand(productId: string, quantity: number): void {
    this.#sql.takeOnHand.run({ quantity, product_id: productId });
  }

  /** expireReservations marks reservations past their expiry at `now` as "expired" and returns how many. */
  expireReservations(now: number): number {
    return Number(this.#sql.expire.run({ now }).changes);
  }

  #op<T>(fn: () => T): T {
    if (!this.#db.isOpen)
      throw inventoryError('STORE_UNAVAILABLE', 'the store is closed: the service is shutting down; retry');
    try {
      return fn();
    } catch (err) {
      if (BUSY_ERRCODES.has((err as { errcode?: number }).errcode ?? 0)) {
        throw inventoryError('STORE_UNAVAILABLE', 'the store stayed locked by another writer; retry', { cause: err });
      }
      throw err;
    }
  }
}

function seedIfEmpty(db: DatabaseSync, seed: readonly SeedProduct[]): void {
  transaction(db, () => {
    const { n } = db.prepare('SELECT COUNT(*) AS n FROM products').get() as { n: number };
    if (n > 0) return;
    const insert = db.prepare(`
      INSERT INTO products (product_id, name, price_cents, currency, on_hand)
      VALUES (:product_id, :name, :price_cents, :currency, :on_hand)`);
    for (const p of seed) {
      insert.run({
        product_id: p.product_id,
        name: p.name,
        price_cents: p.price_cents,
        currency: p.currency,
        on_hand: p.on_hand,
      });
    }
  });
}
