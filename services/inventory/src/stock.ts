// The inventory's rules: what may be reserved, released and committed, and
// when a reservation stops holding stock. Each operation is one store
// transaction; the SQL is in store.ts.
import { randomUUID } from 'node:crypto';
import type { OrderReservations, Product, Reservation, ReservationStatus, ReserveBody, Stock } from '@shop/contracts';
import { inventoryError } from './errors.ts';
import type { SeedProduct } from './seed.ts';
import type { DatabaseConfig } from '@shop/service-kit';
import { InventoryStore, type ProductRow, type ReservationRow } from './store.ts';
import { checkOrderId, checkProductId, checkQuantity } from './validation.ts';

/** StockOptions configure a StockService. */
export interface StockOptions {
  /** reservationTtlSeconds is how long an uncommitted reservation holds stock. */
  reservationTtlSeconds: number;
  /** now is the clock, in milliseconds since the epoch (tests move it by hand). Default: Date.now. */
  now?: () => number;
}

/** ReserveResult is a reservation and whether this call created it (false: an idempotent replay). */
export interface ReserveResult {
  reservation: Reservation;
  created: boolean;
}

/**
 * StockService owns the inventory's rules over an InventoryStore. Every
 * check-then-write runs in one store transaction, so concurrent reserves
 * never oversell. A reservation is active while its status is "reserved"
 * and it has not passed its expiry; only active reservations count against
 * availability. Inputs are checked here (not only by the HTTP schemas), so
 * gRPC callers get the same answers.
 */
export class StockService {
  readonly #store: InventoryStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #ownsStore: boolean;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(store: InventoryStore, options: StockOptions, ownsStore = false) {
    if (!Number.isInteger(options.reservationTtlSeconds) || options.reservationTtlSeconds < 1) {
      throw new RangeError(`reservationTtlSeconds must be a positive integer, got ${options.reservationTtlSeconds}`);
    }
    this.#store = store;
    this.#ttlMs = options.reservationTtlSeconds * 1000;
    this.#now = options.now ?? Date.now;
    this.#ownsStore = ownsStore;
  }

  /** open opens the store in `database` (seeding an empty one) and returns the service over it; close() closes both. */
  static async open(
    options: StockOptions & { database: DatabaseConfig; seed?: readonly SeedProduct[] },
  ): Promise<StockService> {
    const store = await InventoryStore.open({ database: options.database, seed: options.seed });
    try {
      return new StockService(store, options, true);
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /** isOpen is true while the store is open. */
  get isOpen(): boolean {
    return this.#store.isOpen;
  }

  /** listProducts returns the catalogue with stock levels, ordered by product_id. */
  async listProducts(): Promise<Product[]> {
    return (await this.#store.read(() => this.#store.products(this.#now()))).map(toProduct);
  }

  /** getStock returns a product's availability, or throws UNKNOWN_PRODUCT. */
  async getStock(productId: string): Promise<Stock> {
    checkProductId(productId);
    const p = await this.#store.read(() => this.#product(productId, this.#now()));
    return { product_id: p.product_id, available: p.on_hand - p.reserved, reserved: p.reserved };
  }

  /**
   * reserve holds `quantity` of a product for an order. Replaying the same
   * (order_id, product_id, quantity) returns the existing reservation with
   * `created: false`; a different quantity is RESERVATION_CONFLICT, and a
   * released, committed or expired one is not revived. Reserves of one
   * product queue on its row (InventoryStore.lockProduct), so the
   * availability each one checks is final until it commits: no oversell,
   * whatever the number of replicas.
   */
  async reserve(productId: string, body: ReserveBody): Promise<ReserveResult> {
    checkProductId(productId);
    const quantity = checkQuantity(body.quantity);
    const orderId = checkOrderId(body.order_id);
    return this.#write(async (now) => {
      await this.#store.lockProduct(productId);
      const product = await this.#product(productId, now);
      const existing = await this.#store.reservationOf(orderId, productId);
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
      await this.#store.insertReservation(row, now);
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
  async release(orderId: string): Promise<OrderReservations> {
    checkOrderId(orderId);
    return this.#write(async (now) => {
      const rows = await this.#store.reservationsOfOrder(orderId);
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
        await this.#store.setStatus(r.reservation_id, r.status, now);
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
  async commit(orderId: string): Promise<OrderReservations> {
    checkOrderId(orderId);
    return this.#write(async (now) => {
      const rows = await this.#store.reservationsOfOrder(orderId);
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
        await this.#store.takeOnHand(r.product_id, r.quantity);
        r.status = 'committed';
        await this.#store.setStatus(r.reservation_id, r.status, now);
      }
      return { order_id: orderId, status: 'committed', reservations: rows.map(toReservation) };
    });
  }

  /** reservationsOf returns every reservation of an order (any status), ordered by product_id. */
  async reservationsOf(orderId: string): Promise<Reservation[]> {
    checkOrderId(orderId);
    const now = this.#now();
    return (await this.#store.read(() => this.#store.reservationsOfOrder(orderId))).map((r) =>
      toReservation({ ...r, status: effectiveStatus(r, now) }),
    );
  }

  /** sweepExpired marks reservations past their expiry as "expired" and returns how many it marked. */
  sweepExpired(): Promise<number> {
    return this.#write((now) => this.#store.expireReservations(now));
  }

  /**
   * startSweeper runs sweepExpired every `intervalMs` until close(); the
   * timer does not keep the process alive. Expired reservations stop
   * counting the moment they expire; the sweep only makes their status say so.
   */
  startSweeper(intervalMs: number, onSwept?: (count: number, error?: unknown) => void): void {
    clearInterval(this.#sweeper);
    this.#sweeper = setInterval(() => {
      this.sweepExpired().then(
        (count) => onSwept?.(count),
        (err: unknown) => onSwept?.(0, err),
      );
    }, intervalMs);
    this.#sweeper.unref();
  }

  /** close stops the sweeper, and closes the store if open() opened it; later calls fail with STORE_UNAVAILABLE. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    if (this.#ownsStore) await this.#store.close();
  }

  async #product(productId: string, now: number): Promise<ProductRow> {
    const p = await this.#store.product(productId, now);
    if (!p) throw inventoryError('UNKNOWN_PRODUCT', `no product ${productId}; GET /api/products lists them`);
    return p;
  }

  #write<T>(fn: (now: number) => Promise<T>): Promise<T> {
    return this.#store.transaction(() => fn(this.#now()));
  }
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
