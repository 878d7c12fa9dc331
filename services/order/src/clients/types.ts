import type { PaymentStatus, Product } from '@shop/contracts';

/** Product is a catalogue entry with its current availability, as inventory's contract defines it. */
export type { Product };

/** InventoryClient is what order needs from inventory, over gRPC or HTTP alike. */
export interface InventoryClient {
  readonly protocol: 'grpc' | 'http';
  listProducts(): Promise<Product[]>;
  /** reserve is idempotent by (orderId, productId). */
  reserve(orderId: string, productId: string, quantity: number): Promise<void>;
  /** release frees every reservation of the order; idempotent. */
  release(orderId: string): Promise<void>;
  /** commit turns the order's reservations into sales; idempotent. */
  commit(orderId: string): Promise<void>;
  close(): Promise<void>;
}

/** ChargeOutcome is what payment decided about a charge: the fields order needs of payment's ChargeResponse or PaymentView. */
export interface ChargeOutcome {
  status: PaymentStatus;
  payment_id: string;
  decline_reason?: string;
}

/** ChargeRequest is one charge, keyed for idempotency. */
export interface ChargeRequest {
  orderId: string;
  amount: number;
  currency: string;
  userId: string;
  idempotencyKey: string;
}

/** PaymentClient is what order needs from payment. */
export interface PaymentClient {
  charge(req: ChargeRequest): Promise<ChargeOutcome>;
  /** findByOrder returns the outcome of the order's charge, or null if payment has none. */
  findByOrder(orderId: string): Promise<ChargeOutcome | null>;
  refund(paymentId: string, idempotencyKey: string): Promise<void>;
  close(): Promise<void>;
}
