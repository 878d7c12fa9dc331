/** IDEMPOTENCY_KEY_HEADER is the request header that carries a charge's or refund's idempotency key (lower case, as Node gives headers). */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** CURRENCIES are the ISO 4217 codes the service accepts. */
export const CURRENCIES = ['EUR', 'USD', 'GBP'] as const;

/** Currency is one of CURRENCIES. */
export type Currency = (typeof CURRENCIES)[number];

/** MAX_AMOUNT is the largest charge or refund, in minor units (1 000 000.00). */
export const MAX_AMOUNT = 1_000_000_00;

const id = { type: 'string', minLength: 1, maxLength: 128 } as const;
const amount = { type: 'integer', minimum: 1, maximum: MAX_AMOUNT } as const;

/** ChargeBody is the body of `POST /api/charge`. */
export interface ChargeBody {
  order_id: string;
  amount: number;
  currency: string;
  user_id: string;
  card_number?: string;
}

/** chargeBodySchema validates ChargeBody; the currency list is checked by the service so it can answer UNKNOWN_CURRENCY. */
export const chargeBodySchema = {
  type: 'object',
  required: ['order_id', 'amount', 'currency', 'user_id'],
  additionalProperties: false,
  properties: {
    order_id: id,
    amount,
    currency: { type: 'string', minLength: 1, maxLength: 16 },
    user_id: id,
    card_number: { type: 'string', pattern: '^[0-9]{12,19}$' },
  },
} as const;

/** RefundBody is the body of `POST /api/refund`. */
export interface RefundBody {
  payment_id: string;
  amount?: number;
  reason?: string;
}

/** refundBodySchema validates RefundBody. */
export const refundBodySchema = {
  type: 'object',
  required: ['payment_id'],
  additionalProperties: false,
  properties: {
    payment_id: id,
    amount,
    reason: { type: 'string', minLength: 1, maxLength: 500 },
  },
} as const;

/** paymentParamsSchema validates `GET /api/payments/:id`. */
export const paymentParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id },
} as const;

/** paymentQuerySchema validates `GET /api/payments?order_id=`. */
export const paymentQuerySchema = {
  type: 'object',
  required: ['order_id'],
  additionalProperties: false,
  properties: { order_id: id },
} as const;
