import type { Dispatcher } from 'undici';
import { callJson, errorOf, type HttpAnswer } from './http-call.ts';
import type { InventoryClient, Product } from './types.ts';
import { UpstreamError } from './upstream-error.ts';

const UPSTREAM = 'inventory';

function expectOk(res: HttpAnswer): unknown {
  if (res.status >= 200 && res.status < 300) return res.body;
  const { code, message } = errorOf(res.body, res.status);
  throw new UpstreamError(UPSTREAM, 'rejected', code, message, { status: res.status });
}

/** createInventoryHttpClient talks to inventory's HTTP API over the given mTLS dispatcher. */
export function createInventoryHttpClient(baseUrl: string, dispatcher: Dispatcher, timeoutMs: number): InventoryClient {
  const post = async (path: string, body: unknown = {}): Promise<void> => {
    expectOk(await callJson(UPSTREAM, dispatcher, `${baseUrl}${path}`, { method: 'POST', body, timeoutMs }));
  };
  return {
    protocol: 'http',
    async listProducts(): Promise<Product[]> {
      // The contract: GET /api/products answers the bare array (gRPC wraps it in `products`).
      return expectOk(await callJson(UPSTREAM, dispatcher, `${baseUrl}/api/products`, { timeoutMs })) as Product[];
    },
    reserve: (orderId, productId, quantity) =>
      post(`/api/stock/${encodeURIComponent(productId)}/reserve`, { order_id: orderId, quantity }),
    release: (orderId) => post(`/api/reservations/${encodeURIComponent(orderId)}/release`),
    commit: (orderId) => post(`/api/reservations/${encodeURIComponent(orderId)}/commit`),
    async close(): Promise<void> {
      await dispatcher.close();
    },
  };
}
