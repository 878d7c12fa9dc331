// Input rules of the inventory API, in one place: the HTTP JSON schemas are
// built from these constants, and the service checks them again for gRPC
// callers (which have no schema validation).

/** MAX_QUANTITY is the most one reservation may hold; anything above is a client bug, not an order. */
export const MAX_QUANTITY = 1000;

/** PRODUCT_ID_PATTERN is what a product ID looks like, e.g. "sku-limited". */
export const PRODUCT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

/** ORDER_ID_PATTERN is what an order ID looks like: 1–128 letters, digits, ".", "_", ":" or "-" (a UUID fits). */
export const ORDER_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
