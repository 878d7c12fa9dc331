// JSON schemas of the HTTP API: fastify validates requests against them (a
// failure is a 400 INVALID_REQUEST naming the field) and serializes replies
// with them.
import { MAX_QUANTITY, ORDER_ID_PATTERN, PRODUCT_ID_PATTERN } from './limits.ts';

const stockProperties = {
  product_id: { type: 'string' },
  available: { type: 'integer' },
  reserved: { type: 'integer' },
} as const;

const reservation = {
  type: 'object',
  required: ['reservation_id', 'order_id', 'product_id', 'quantity', 'status', 'expires_at'],
  properties: {
    reservation_id: { type: 'string' },
    order_id: { type: 'string' },
    product_id: { type: 'string' },
    quantity: { type: 'integer' },
    status: { type: 'string', enum: ['reserved', 'released', 'committed', 'expired'] },
    expires_at: { type: 'string' },
  },
} as const;

/** productParams is the `:productId` path parameter. */
export const productParams = {
  type: 'object',
  required: ['productId'],
  properties: { productId: { type: 'string', pattern: PRODUCT_ID_PATTERN } },
} as const;

/** orderParams is the `:orderId` path parameter. */
export const orderParams = {
  type: 'object',
  required: ['orderId'],
  properties: { orderId: { type: 'string', pattern: ORDER_ID_PATTERN } },
} as const;

/** reserveBody is the body of a reserve; unknown fields are refused so a misspelt one is not silently ignored. */
export const reserveBody = {
  type: 'object',
  required: ['quantity', 'order_id'],
  additionalProperties: false,
  properties: {
    quantity: { type: 'integer', minimum: 1, maximum: MAX_QUANTITY },
    order_id: { type: 'string', pattern: ORDER_ID_PATTERN },
  },
} as const;

/** stockReply is the reply of `GET /api/stock/:productId`. */
export const stockReply = {
  type: 'object',
  required: ['product_id', 'available', 'reserved'],
  properties: stockProperties,
} as const;

/** productsReply is the reply of `GET /api/products`. */
export const productsReply = {
  type: 'array',
  items: {
    type: 'object',
    required: ['product_id', 'name', 'price_cents', 'currency', 'available', 'reserved'],
    properties: {
      ...stockProperties,
      name: { type: 'string' },
      price_cents: { type: 'integer' },
      currency: { type: 'string' },
    },
  },
} as const;

/** reservationReply is the reply of a reserve (201 created, 200 replayed). */
export const reservationReply = reservation;

/** orderReservationsReply is the reply of release and commit. */
export const orderReservationsReply = {
  type: 'object',
  required: ['order_id', 'status', 'reservations'],
  properties: {
    order_id: { type: 'string' },
    status: { type: 'string', enum: ['released', 'committed'] },
    reservations: { type: 'array', items: reservation },
  },
} as const;
