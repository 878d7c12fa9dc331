// The inventory API's messages, shared by the HTTP bodies, the gRPC messages and the
// store: one shape per concept, snake_case as on the wire.

/** ReservationStatus is the life cycle of a reservation: reserved, then exactly one of the other three. */
export type ReservationStatus = 'reserved' | 'released' | 'committed' | 'expired';

/** Stock is what `GET /api/stock/:productId` and `GetStock` answer. */
export interface Stock {
  product_id: string;
  /** available is on hand minus active reservations; never negative. */
  available: number;
  /** reserved is the sum of active (unexpired, uncommitted) reservations. */
  reserved: number;
}

/** Product is one catalogue entry with its stock levels. */
export interface Product extends Stock {
  name: string;
  price_cents: number;
  /** currency is an ISO 4217 code, e.g. "EUR". */
  currency: string;
}

/** GetStockRequest asks for the stock of one product. */
export interface GetStockRequest {
  product_id: string;
}

/** ListProductsRequest is empty; it exists so the gRPC method can grow parameters. */
export type ListProductsRequest = Record<string, never>;

/** ListProductsResponse is the catalogue as gRPC returns it (HTTP returns the bare array). */
export interface ListProductsResponse {
  products: Product[];
}

/** ReserveBody is the JSON body of `POST /api/stock/:productId/reserve`. */
export interface ReserveBody {
  /** quantity is an integer from 1 to MAX_QUANTITY. */
  quantity: number;
  /** order_id makes the call idempotent: one reservation per (order_id, product_id). */
  order_id: string;
}

/** ReserveRequest is ReserveBody plus the product, as gRPC's `Reserve` takes it. */
export interface ReserveRequest extends ReserveBody {
  product_id: string;
}

/** Reservation is stock held for one order and one product. */
export interface Reservation {
  reservation_id: string;
  order_id: string;
  product_id: string;
  quantity: number;
  status: ReservationStatus;
  /** expires_at is an RFC 3339 UTC timestamp; after it an uncommitted reservation no longer holds stock. */
  expires_at: string;
}

/** OrderRequest names an order, for `Release` and `Commit`. */
export interface OrderRequest {
  order_id: string;
}

/** ReleaseRequest is the gRPC `Release` request. */
export type ReleaseRequest = OrderRequest;

/** CommitRequest is the gRPC `Commit` request. */
export type CommitRequest = OrderRequest;

/** OrderReservations is what release and commit answer: every reservation of the order, after the call. */
export interface OrderReservations {
  order_id: string;
  /** status is what the call did to the order. */
  status: 'released' | 'committed';
  reservations: Reservation[];
}
