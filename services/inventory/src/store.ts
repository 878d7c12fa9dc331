import { randomUUID } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabase, transaction, type Migration } from '@shop/service-kit';
import { inventoryError } from './errors.ts';
import type { OrderReservations, Product, Reservation, ReservationStatus, ReserveBody, Stock } from './messages.ts';
import type { SeedProduct } from './seed.ts';
import { checkOrderId, checkProductId, checkQuantity } from './validation.ts';

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
  /** reservationTtlSeconds is how long an uncommitted reservation holds stock. */
  reservationTtlSeconds: number;
  /** seed is the catalogue written when the products table is empty. Default: none. */
  seed?: readonly SeedProduct[];
  /** now is the clock, in milliseconds since the epoch (tests move it by hand). Default: Date.now. */
  now?: () => number;
}

/** ReserveResult is a reservation and whether this call created it (false: an idempotent replay). */
export interface ReserveResult {
  reservation: Reservation;
  created: boolean;
}

interface ProductRow {
  product_id: string;
  name: string;
  price_cents: number;
  currency: string;
  on_hand: number;
  reserved: number;
}

interface ReservationRow {
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
 * InventoryStore owns products, stock on hand and reservations in SQLite.
 * Every check-then-write runs in one IMMEDIATE transaction, so concurrent
 * reserves (from any number of connections or processes) never oversell.
 * A reservation is active while its status is "reserved" and it has not
 * passed expires_at; only active reservations count against availability.
 */
export class InventoryStore {
  readonly #db: DatabaseSync;
  readonly #ttlMs: number;
  readonly #now: () => number;
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
  #sweeper: NodeJS.Timeout | undefined;

  private constructor(db: DatabaseSync, options: StoreOptions) {
    this.#db = db;
    this.#ttlMs = options.reservationTtlSeconds * 1000;
    this.#now = options.now ?? Date.now;
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
    if (!Number.isInteger(options.reservationTtlSeconds) || options.reservationTtlSeconds < 1) {
      throw new RangeError(`reservationTtlSeconds must be a positive integer, got ${options.reservationTtlSeconds}`);
    }
    const db = openDatabase(options.file, MIGRATIONS);
    try {
      if (options.seed) seedIfEmpty(db, options.seed);
      return new InventoryStore(db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** isOpen is true until close(); the readiness check reads it. */
  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  /** listProducts returns the catalogue with stock levels, ordered by product_id. */
  listProducts(): Product[] {
    return this.#op(() => this.#sql.products.all({ now: this.#now() }) as unknown as ProductRow[]).map(toProduct);
  }

  /** getStock returns a product's availability, or throws UNKNOWN_PRODUCT. */
  getStock(productId: string): Stock {
    checkProductId(productId);
    const p = this.#op(() => this.#product(productId, this.#now()));
    return { product_id: p.product_id, available: p.on_hand - p.reserved, reserved: p.reserved };
  }

  /**
   * reserve holds `quantity` of a product for an order. Replaying the same
   * (order_id, product_id, quantity) returns the existing reservation with
   * `created: false`; a different quantity is RESERVATION_CONFLICT, and a
   * released, committed or expired one is not revived.
   */
  reserve(productId: string, body: ReserveBody): ReserveResult {
    checkProductId(productId);
    const quantity = checkQuantity(body.quantity);
    const orderId = checkOrderId(body.order_id);
    return this.#write((now) => {
      const product = this.#product(productId, now);
      const existing = this.#sql.reservationOf.get({ order_id: orderId, product_id: productId }) as
        ReservationRow | undefined;
      if (existing) {
        const status = effectiveStatus(existing, now);
        if (status === 'reserved' && existing.quantity === quantity)
          return { reservation: toReservation(existing), created: false };
        if (status === 'reserved') {
          throw inventoryError(
            'RESERVATION_CONFLICT',
            `order ${orderId} already reserved ${existing.quantity} of ${productId}, not ${quantity}; replay with quantity ${existing.quantity} or use another order_id`,
          );
        }
        if (status === 'expired') {
          throw inventoryError(
            'RESERVATION_EXPIRED',
            `the reservation of ${productId} for order ${orderId} expired at ${iso(existing.expires_at)}; use another order_id`,
          );
        }
        throw inventoryError(
          'RESERVATION_CONFLICT',
          `the reservation of ${productId} for order ${orderId} is already ${status}; use another order_id`,
        );
      }
      const available = product.on_hand - product.reserved;
      if (quantity > available) {
        throw inventoryError(
          'INSUFFICIENT_STOCK',
          `only ${available} of ${productId} available, ${quantity} requested`,
        );
      }
      const row: ReservationRow = {
        reservation_id: randomUUID(),
        order_id: orderId,
        product_id: productId,
        quantity,
        status: 'reserved',
        expires_at: now + this.#ttlMs,
      };
      this.#sql.insertReservation.run({
        reservation_id: row.reservation_id,
        order_id: orderId,
        product_id: productId,
        quantity,
        now,
        expires_at: row.expires_at,
      });
      return { reservation: toReservation(row), created: true };
    });
  }

  /**
   * release gives back every active reservation of an order. Releasing again,
   * after expiry, or for an order that reserved nothing changes nothing and
   * succeeds, so a caller can always compensate a reserve whose outcome it
   * does not know. An order with a committed reservation is
   * RESERVATION_CONFLICT, and nothing is released.
   */
  release(orderId: string): OrderReservations {
    checkOrderId(orderId);
    return this.#write((now) => {
      const rows = this.#sql.reservationsOfOrder.all({ order_id: orderId }) as unknown as ReservationRow[];
      const committed = rows.find((r) => r.status === 'committed');
      if (committed) {
        throw inventoryError(
          'RESERVATION_CONFLICT',
          `order ${orderId} is committed (${committed.product_id}); a committed reservation cannot be released`,
        );
      }
      for (const r of rows) {
        if (r.status !== 'reserved') continue;
        r.status = r.expires_at > now ? 'released' : 'expired';
        this.#sql.setStatus.run({ status: r.status, now, reservation_id: r.reservation_id });
      }
      return { order_id: orderId, status: 'released', reservations: rows.map(toReservation) };
    });
  }

  /**
   * commit turns every reservation of an order into a sale: on_hand goes down
   * for good. Committing again changes nothing and succeeds. If any of the
   * order's reservations was released (RESERVATION_CONFLICT) or has expired
   * (RESERVATION_EXPIRED), nothing is committed.
   */
  commit(orderId: string): OrderReservations {
    checkOrderId(orderId);
    return this.#write((now) => {
      const rows = this.#sql.reservationsOfOrder.all({ order_id: orderId }) as unknown as ReservationRow[];
      if (rows.length === 0)
        throw inventoryError('RESERVATION_NOT_FOUND', `order ${orderId} has no reservations to commit`);
      for (const r of rows) {
        const status = effectiveStatus(r, now);
        if (status === 'released') {
          throw inventoryError(
            'RESERVATION_CONFLICT',
            `order ${orderId} was released (${r.product_id}); a released reservation cannot be committed`,
          );
        }
        if (status === 'expired') {
          throw inventoryError(
            'RESERVATION_EXPIRED',
            `the reservation of ${r.product_id} for order ${orderId} expired at ${iso(r.expires_at)}; it cannot be committed`,
          );
        }
      }
      for (const r of rows) {
        if (r.status !== 'reserved') continue;
        this.#sql.takeOnHand.run({ quantity: r.quantity, product_id: r.product_id });
        r.status = 'committed';
        this.#sql.setStatus.run({ status: r.status, now, reservation_id: r.reservation_id });
      }
      return { order_id: orderId, status: 'committed', reservations: rows.map(toReservation) };
    });
  }

  /** reservationsOf returns every reservation of an order (any status), ordered by product_id. */
  reservationsOf(orderId: string): Reservation[] {
    checkOrderId(orderId);
    const now = this.#now();
    return this.#op(() => this.#sql.reservationsOfOrder.all({ order_id: orderId }) as unknown as ReservationRow[]).map(
      (r) => toReservation({ ...r, status: effectiveStatus(r, now) }),
    );
  }

  /** sweepExpired marks reservations past their expiry as "expired" and returns how many it marked. */
  sweepExpired(): number {
    return Number(this.#write((now) => this.#sql.expire.run({ now }).changes));
  }

  /** startSweeper runs sweepExpired every `intervalMs` until close(); the timer does not keep the process alive. */
  startSweeper(intervalMs: number, onSwept?: (count: number, error?: unknown) => void): void {
    clearInterval(this.#sweeper);
    this.#sweeper = setInterval(() => {
      try {
        onSwept?.(this.sweepExpired());
      } catch (err) {
        onSwept?.(0, err);
      }
    }, intervalMs);
    this.#sweeper.unref();
  }

  /** close stops the sweeper and closes the database; later calls fail with STORE_UNAVAILABLE. */
  close(): void {
    clearInterval(this.#sweeper);
    if (this.#db.isOpen) this.#db.close();
  }

  #product(productId: string, now: number): ProductRow {
    const p = this.#sql.product.get({ product_id: productId, now }) as ProductRow | undefined;
    if (!p) throw inventoryError('UNKNOWN_PRODUCT', `no product ${productId}; GET /api/products lists them`);
    return p;
  }

  #write<T>(fn: (now: number) => T): T {
    return this.#op(() => transaction(this.#db, () => fn(this.#now())));
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

function effectiveStatus(r: ReservationRow, now: number): ReservationStatus {
  return r.status === 'reserved' && r.expires_at <= now ? 'expired' : r.status;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function toReservation(r: ReservationRow): Reservation {
  return {
    reservation_id: r.reservation_id,
    order_id: r.order_id,
    product_id: r.product_id,
    quantity: r.quantity,
    status: r.status,
    expires_at: iso(r.expires_at),
  };
}

function toProduct(p: ProductRow): Product {
  return {
    product_id: p.product_id,
    name: p.name,
    price_cents: p.price_cents,
    currency: p.currency,
    available: p.on_hand - p.reserved,
    reserved: p.reserved,
  };
}
