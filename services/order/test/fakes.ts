import type { ChargeOutcome, ChargeRequest, InventoryClient, PaymentClient, Product } from '../src/clients/types.ts';
import { UpstreamError } from '../src/clients/upstream-error.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** FakeInventory is an in-memory inventory with switches for faults. */
export class FakeInventory implements InventoryClient {
  readonly protocol = 'grpc' as const;
  down = false;
  readonly calls: string[] = [];
  readonly products = new Map<string, Product>();
  readonly reservations = new Map<
    string,
    { productId: string; quantity: number; state: 'reserved' | 'released' | 'committed' }[]
  >();

  constructor(products: { id: string; price: number; stock: number; currency?: string }[]) {
    for (const p of products)
      this.products.set(p.id, {
        product_id: p.id,
        name: p.id,
        price_cents: p.price,
        currency: p.currency ?? 'EUR',
        available: p.stock,
        reserved: 0,
      });
  }

  #check(op: string): void {
    this.calls.push(op);
    if (this.down) throw new UpstreamError('inventory', 'unavailable', 'UNREACHABLE', 'connection refused');
  }
  listProducts(): Promise<Product[]> {
    this.#check('list');
    return Promise.resolve([...this.products.values()].map((p) => ({ ...p })));
  }
  reserve(orderId: string, productId: string, quantity: number): Promise<void> {
    this.#check(`reserve ${productId}`);
    const p = this.products.get(productId)!;
    const list = this.reservations.get(orderId) ?? [];
    if (list.some((r) => r.productId === productId)) return Promise.resolve();
    if (p.available < quantity)
      return Promise.reject(
        new UpstreamError('inventory', 'rejected', 'INSUFFICIENT_STOCK', `only ${p.available} available`, {
          status: 409,
        }),
      );
    p.available -= quantity;
    p.reserved += quantity;
    list.push({ productId, quantity, state: 'reserved' });
    this.reservations.set(orderId, list);
    return Promise.resolve();
  }
  release(orderId: string): Promise<void> {
    this.#check('release');
    for (const r of this.reservations.get(orderId) ?? []) {
      if (r.state !== 'reserved') continue;
      const p = this.products.get(r.productId)!;
      p.available += r.quantity;
      p.reserved -= r.quantity;
      r.state = 'released';
    }
    return Promise.resolve();
  }
  commit(orderId: string): Promise<void> {
    this.#check('commit');
    for (const r of this.reservations.get(orderId) ?? []) {
      if (r.state !== 'reserved') continue;
      this.products.get(r.productId)!.reserved -= r.quantity;
      r.state = 'committed';
    }
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** FakePayment charges once per idempotency key and per order, with switches for declines, latency and outages. */
export class FakePayment implements PaymentClient {
  mode: 'ok' | 'decline' | 'down' | 'processor-error' = 'ok';
  latencyMs = 0;
  readonly charges = new Map<string, { key: string; outcome: ChargeOutcome; amount: number }>();
  readonly refunds: string[] = [];
  attempts = 0;
  /** chargeInFlight makes findByOrder see no charge yet, as while an earlier attempt is still on its way to payment. */
  chargeInFlight = false;

  async charge(req: ChargeRequest): Promise<ChargeOutcome> {
    this.attempts++;
    if (this.mode === 'down') throw new UpstreamError('payment', 'unavailable', 'UNREACHABLE', 'connection refused');
    if (this.mode === 'processor-error')
      throw new UpstreamError('payment', 'unavailable', 'PROCESSOR_ERROR', 'processor failed', { status: 502 });
    // The charge is recorded when the request arrives, even if the answer is late: that is what makes the outcome "unknown".
    let existing = this.charges.get(req.orderId);
    if (!existing) {
      const outcome: ChargeOutcome =
        this.mode === 'decline'
          ? { status: 'declined', payment_id: `pay-${this.charges.size + 1}`, decline_reason: 'card_declined' }
          : { status: 'succeeded', payment_id: `pay-${this.charges.size + 1}` };
      existing = { key: req.idempotencyKey, outcome, amount: req.amount };
      this.charges.set(req.orderId, existing);
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    return existing.outcome;
  }
  findByOrder(orderId: string): Promise<ChargeOutcome | null> {
    if (this.mode === 'down')
      return Promise.reject(new UpstreamError('payment', 'unavailable', 'UNREACHABLE', 'connection refused'));
    if (this.chargeInFlight) return Promise.resolve(null);
    return Promise.resolve(this.charges.get(orderId)?.outcome ?? null);
  }
  refund(paymentId: string): Promise<void> {
    this.refunds.push(paymentId);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
