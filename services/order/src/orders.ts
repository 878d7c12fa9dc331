import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Counter, Gauge } from 'prom-client';
import { ServiceError, type Logger, type ServiceMetrics } from '@shop/service-kit';
import { orderError } from './errors.ts';
import type { Product } from './clients/types.ts';
import { UpstreamError } from './clients/upstream-error.ts';
import type { NewOrder, Order, OrderItem, OrderStore } from './store.ts';
import type { Upstreams } from './upstreams.ts';

/** PlaceOrderInput is a validated POST /orders body. */
export interface PlaceOrderInput {
  customer_id: string;
  currency: string;
  items: { product_id: string; quantity: number }[];
  expected_total_cents?: number;
}

/** The charge's idempotency key is derived from the order, so every retry and the reconciler reuse it. */
export function chargeKey(orderId: string): string {
  return `order-${orderId}-charge`;
}

function refundKey(orderId: string): string {
  return `order-${orderId}-refund`;
}

function reasonOf(err: unknown, fallback: string): string {
  if (err instanceof UpstreamError) {
    if (err.code === 'INSUFFICIENT_STOCK') return 'out_of_stock';
    return `${err.upstream.split(':')[0] ?? 'upstream'}_unavailable`;
  }
  return fallback;
}

// Whether a request under an already used key is the one that created
// `order`: by fingerprint when both have one, otherwise (an order stored
// before fingerprints, or a caller without one) by what the order holds.
function sameRequest(storedFingerprint: string | null, order: Order, o: NewOrder): boolean {
  if (storedFingerprint !== null && o.requestFingerprint !== undefined)
    return storedFingerprint === o.requestFingerprint;
  const lines = (items: { product_id: string; quantity: number }[]): string =>
    JSON.stringify(items.map((i) => [i.product_id, i.quantity]).sort());
  return order.customer_id === o.customerId && order.currency === o.currency && lines(order.items) === lines(o.items);
}

/**
 * OrderService runs the order saga: reserve stock, charge the card, commit
 * the reservation — and compensates (release, refund) when a step fails.
 * Every step is recorded before it is taken, so an order whose request died
 * half-way is finished by the reconciler: nothing is lost, and the charge's
 * idempotency key means nothing is charged twice.
 */
export class OrderService {
  readonly #store: OrderStore;
  readonly #up: Upstreams;
  readonly #log: Logger;
  readonly #orders: Counter<'status' | 'reason'>;
  #catalogue: { at: number; products: Map<string, Product> } | undefined;
  // Orders a request of this process is working on; the reconciler leaves them
  // alone (a shortcut: across replicas, the order's lease in the database decides).
  readonly #inFlight = new Set<string>();
  /** owner names this process in the leases it takes on orders. */
  readonly owner: string;

  constructor(
    store: OrderStore,
    upstreams: Upstreams,
    log: Logger,
    metrics: ServiceMetrics,
    options: { owner?: string } = {},
  ) {
    this.owner = options.owner ?? `${hostname()}/${String(process.pid)}/${randomUUID().slice(0, 8)}`;
    this.#store = store;
    this.#up = upstreams;
    this.#log = log;
    this.#orders = new Counter({
      name: 'shop_orders_total',
      help: 'Orders by final status and failure reason.',
      labelNames: ['status', 'reason'],
      registers: [metrics.registry],
    });
    new Gauge({
      name: 'shop_orders_pending',
      help: 'Orders still pending (being placed or waiting for the reconciler).',
      registers: [metrics.registry],
      async collect() {
        if (!store.isOpen) return;
        try {
          this.set((await store.counts()).pending);
        } catch {
          // The database is away: /health/ready says so; the gauge keeps its last value.
        }
      },
    });
  }

  /** catalogue returns inventory's products (cached for a second: prices change rarely, stock is checked by reserve). */
  async catalogue(): Promise<Product[]> {
    this.#up.failFastIfOpen(['inventory']);
    return [...(await this.#products()).values()];
  }

  async #products(): Promise<Map<string, Product>> {
    if (this.#catalogue && Date.now() - this.#catalogue.at < 1000) return this.#catalogue.products;
    try {
      const list = await this.#up.listProducts();
      this.#catalogue = { at: Date.now(), products: new Map(list.map((p) => [p.product_id, p])) };
      return this.#catalogue.products;
    } catch (err) {
      throw this.#unavailable(err);
    }
  }

  #unavailable(err: unknown): ServiceError {
    if (err instanceof ServiceError) return err;
    const e = err as UpstreamError;
    const retryAfter = e.code === 'BREAKER_OPEN' ? '3' : '1';
    return orderError('UPSTREAM_UNAVAILABLE', `${e.upstream || 'an upstream'} is unavailable: ${e.message}`, {
      cause: err,
      headers: { 'retry-after': retryAfter },
    });
  }

  /**
   * place validates an order against the catalogue, stores it, and runs the
   * saga as far as it can. `requestFingerprint` identifies the request behind
   * `requestKey`, so the store can refuse the key's reuse for another one.
   */
  async place(
    input: PlaceOrderInput,
    requestKey?: string,
    requestFingerprint?: string,
  ): Promise<{ order: Order; created: boolean }> {
    this.#up.failFastIfOpen(['inventory', 'payment']);
    const products = await this.#products();
    const items: OrderItem[] = [];
    const seen = new Set<string>();
    for (const i of input.items) {
      const p = products.get(i.product_id);
      if (!p)
        throw orderError(
          'UNKNOWN_PRODUCT',
          `product ${JSON.stringify(i.product_id)} is not in the catalogue; GET /products lists them`,
        );
      if (seen.has(i.product_id))
        throw orderError('DUPLICATE_ITEM', `product ${i.product_id} appears twice; put the total quantity on one line`);
      seen.add(i.product_id);
      if (p.currency !== input.currency) {
        throw orderError(
          'CURRENCY_MISMATCH',
          `product ${p.product_id} is priced in ${p.currency}, the order is in ${input.currency}`,
        );
      }
      items.push({ product_id: p.product_id, quantity: i.quantity, unit_price_cents: p.price_cents });
    }
    const total = items.reduce((s, i) => s + i.quantity * i.unit_price_cents, 0);
    if (input.expected_total_cents !== undefined && input.expected_total_cents !== total) {
      throw orderError(
        'AMOUNT_MISMATCH',
        `expected_total_cents is ${input.expected_total_cents} but the items cost ${total} ${input.currency} at current prices`,
      );
    }
    const request: NewOrder = {
      customerId: input.customer_id,
      currency: input.currency,
      items,
      requestKey,
      requestFingerprint,
    };
    const stored = await this.#store.create(request, this.owner);
    const { order, created } = stored;
    if (!stored.created) {
      if (!sameRequest(stored.storedFingerprint, order, request)) {
        throw orderError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was already used for another order request (another body or customer); retry with the same body, or use a new key for a new order',
        );
      }
      return { order, created };
    }
    this.#inFlight.add(order.order_id);
    try {
      await this.#run(order);
    } finally {
      this.#inFlight.delete(order.order_id);
      await this.#store.unclaim(order.order_id, this.owner).catch(() => undefined);
    }
    return { order: (await this.#store.get(order.order_id)) as Order, created };
  }

  /**
   * #run takes a pending order from its current stage as far as it can go
   * now. `chargeMayExist` is true when an earlier charge of this order may
   * have reached payment (any order the reconciler finds in `charging`): then
   * only payment's answer under the order's key can fail the order, never a
   * failure to reach payment.
   */
  async #run(order: Order, chargeMayExist = false): Promise<void> {
    const id = order.order_id;
    // Each step renews our lease; lost (we were too slow, another replica took over): stop here.
    if (order.stage !== 'done' && !(await this.#store.claim(id, this.owner))) {
      this.#log.warn({ orderId: id }, 'order leased to another replica; leaving it to that one');
      return;
    }
    switch (order.stage) {
      case 'reserving': {
        try {
          for (const item of order.items) await this.#up.reserve(id, item.product_id, item.quantity);
        } catch (err) {
          // No charge is ever attempted when stock could not be reserved.
          return this.#compensate(order, reasonOf(err, 'reserve_failed'));
        }
        await this.#store.advance(id, 'charging');
        return this.#run((await this.#store.get(id)) as Order);
      }
      case 'charging': {
        let outcome;
        try {
          outcome = await this.#up.charge({
            orderId: id,
            amount: order.total_cents,
            currency: order.currency,
            userId: order.customer_id,
            idempotencyKey: chargeKey(id),
          });
        } catch (err) {
          // Another key charged this order (a caller whose SPIFFE ID changed):
          // the charge exists, so the reconciler looks it up by order.
          const chargedElsewhere = err instanceof UpstreamError && err.code === 'ORDER_ALREADY_CHARGED';
          if (err instanceof UpstreamError && err.kind === 'rejected' && !chargedElsewhere) {
            return this.#compensate(order, `payment_rejected:${err.code}`);
          }
          if (err instanceof UpstreamError && err.kind === 'unavailable' && !chargeMayExist) {
            // Known not charged: every attempt of this request was answered
            // "nothing charged" (processor error) or never reached payment
            // (open breaker, refused connection), and no earlier one exists.
            return this.#compensate(order, err.code === 'PROCESSOR_ERROR' ? 'payment_error' : 'payment_unavailable');
          }
          // No answer, or an earlier attempt may still land: the charge may or
          // may not exist. Failing the order now could leave a customer charged
          // for a failed order, so it stays pending until payment answers under
          // the same key (the reconciler asks again).
          await this.#store.touch(id);
          this.#log.warn(
            { orderId: id, err: { code: (err as UpstreamError).code, message: (err as Error).message } },
            'charge outcome unknown; order left pending for the reconciler',
          );
          return;
        }
        return this.#afterCharge(order, outcome);
      }
      case 'committing': {
        try {
          await this.#up.commit(id);
        } catch (err) {
          if (err instanceof UpstreamError && err.kind === 'rejected') {
            return this.#compensate(order, `commit_rejected:${err.code}`);
          }
          await this.#store.touch(id);
          return;
        }
        await this.#store.finish(id, 'confirmed');
        this.#orders.inc({ status: 'confirmed', reason: '' });
        return;
      }
      case 'compensating':
        return this.#compensate(order, order.failure_reason ?? 'failed');
      case 'done':
        return;
    }
  }

  async #afterCharge(
    order: Order,
    outcome: { status: 'succeeded' | 'declined'; payment_id: string; decline_reason?: string },
  ): Promise<void> {
    if (outcome.status === 'declined') {
      return this.#compensate(order, `card_declined:${outcome.decline_reason ?? 'declined'}`);
    }
    await this.#store.advance(order.order_id, 'committing', { paymentId: outcome.payment_id });
    return this.#run((await this.#store.get(order.order_id)) as Order);
  }

  /** #compensate releases stock (and refunds a charge that went through), then fails the order; retried by the reconciler until done. */
  async #compensate(order: Order, reason: string): Promise<void> {
    const id = order.order_id;
    await this.#store.advance(id, 'compensating', { failureReason: reason });
    const current = (await this.#store.get(id)) as Order;
    try {
      await this.#up.release(id);
      if (current.payment_id) await this.#up.refund(current.payment_id, refundKey(id));
    } catch (err) {
      this.#log.warn(
        { orderId: id, err: { message: (err as Error).message } },
        'compensation incomplete; the reconciler will retry',
      );
      return;
    }
    await this.#store.finish(id, 'failed', current.failure_reason ?? reason);
    this.#orders.inc({ status: 'failed', reason: (current.failure_reason ?? reason).split(':')[0] ?? reason });
  }

  /**
   * reconcileOnce settles pending orders nobody is working on: a charge whose
   * outcome is unknown is looked up at payment (and retried with the same key
   * if payment never saw it); half-done commits and compensations are
   * finished. An order is taken only with its lease (another replica may
   * be on it, or its placer may still run): at most one replica works on it.
   * Returns how many orders it looked at.
   */
  async reconcileOnce(graceMs: number): Promise<number> {
    const stale = (await this.#store.stalePending(graceMs)).filter((o) => !this.#inFlight.has(o.order_id));
    let looked = 0;
    for (const order of stale) {
      if (!(await this.#store.claim(order.order_id, this.owner))) continue;
      looked++;
      this.#inFlight.add(order.order_id);
      try {
        if (order.stage === 'charging') {
          const found = await this.#up.findCharge(order.order_id);
          if (found) {
            this.#log.info({ orderId: order.order_id, outcome: found.status }, 'reconciler: charge outcome found');
            await this.#afterCharge(order, found);
            continue;
          }
        }
        // "No charge found" may still race a charge in flight to payment, so a
        // charging order is charged again under its key, never failed unasked.
        await this.#run(order, order.stage === 'charging');
      } catch (err) {
        await this.#store.touch(order.order_id).catch(() => undefined);
        this.#log.warn(
          { orderId: order.order_id, err: { message: (err as Error).message } },
          'reconciler: order still pending',
        );
      } finally {
        this.#inFlight.delete(order.order_id);
        await this.#store.unclaim(order.order_id, this.owner).catch(() => undefined);
      }
    }
    return looked;
  }

  /** get returns an order, or 404. */
  async get(id: string): Promise<Order> {
    const order = await this.#store.get(id);
    if (!order) throw orderError('ORDER_NOT_FOUND', `no order ${JSON.stringify(id)}`);
    return order;
  }
}
