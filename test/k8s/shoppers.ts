// Shoppers for test/k8s.test.ts: orders placed continuously against order's
// Service while the suite disturbs the cluster, each answer recorded with its
// time. A shopper writes as a careful client does: every order carries an
// Idempotency-Key, and one whose connection died under it (a pod going away)
// is sent again with the same key, so it is placed at most once; those
// resends are counted, not failed.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';

/** Answer is one order's outcome as a shopper saw it. */
export interface Answer {
  at: number;
  /** kind: ok (201/200, confirmed or pending), failed (an order failed for a technical reason), unavailable (503), other, network. */
  kind: 'ok' | 'failed' | 'unavailable' | 'other' | 'network';
  status?: number;
  retryAfter?: string;
  detail: string;
}

/** Shoppers place orders until stopped. */
export interface Shoppers {
  readonly answers: Answer[];
  readonly resends: number;
  /** stop ends the shoppers and waits for their last orders. */
  stop(): Promise<Answer[]>;
}

const TECHNICAL = /inventory_unavailable|payment_unavailable|payment_error|payment_rejected|commit_rejected/;
const PRODUCTS = ['sku-espresso', 'sku-grinder', 'sku-kettle', 'sku-mug'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** placeOrder places one order and returns the status and body. */
export async function placeOrder(
  orderUrl: string,
  key = randomUUID(),
  dispatcher?: Agent,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Record<string, unknown> }> {
  const res = await request(`${orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify({
      customer_id: 'c-k8s',
      currency: 'EUR',
      items: [{ product_id: PRODUCTS[Math.floor(Math.random() * PRODUCTS.length)] ?? 'sku-mug', quantity: 1 }],
    }),
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
    ...(dispatcher ? { dispatcher } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> };
}

/** startShoppers starts `concurrency` shoppers against `orderUrl`, each pausing `pauseMs` between orders. */
export function startShoppers(orderUrl: string, concurrency = 3, pauseMs = 100): Shoppers {
  const answers: Answer[] = [];
  let resends = 0;
  let on = true;
  const dispatcher = new Agent({ keepAliveTimeout: 4000 });
  const shopper = async (): Promise<void> => {
    while (on) {
      const key = randomUUID();
      let answer: Answer | undefined;
      for (let attempt = 1; attempt <= 3 && !answer; attempt++) {
        try {
          const r = await placeOrder(orderUrl, key, dispatcher);
          const status = typeof r.body.status === 'string' ? r.body.status : '';
          const reason = typeof r.body.failure_reason === 'string' ? r.body.failure_reason : '';
          const at = Date.now();
          if ((r.status === 201 || r.status === 200) && !TECHNICAL.test(reason)) {
            answer = { at, kind: 'ok', status: r.status, detail: status };
          } else if (r.status === 201 || r.status === 200) {
            answer = { at, kind: 'failed', status: r.status, detail: `${status} ${reason}` };
          } else if (r.status === 503) {
            const ra = r.headers['retry-after'];
            answer = {
              at,
              kind: 'unavailable',
              status: 503,
              ...(typeof ra === 'string' ? { retryAfter: ra } : {}),
              detail: typeof r.body.code === 'string' ? r.body.code : '',
            };
          } else {
            answer = { at, kind: 'other', status: r.status, detail: JSON.stringify(r.body) };
          }
        } catch (err) {
          if (attempt < 3) {
            resends++;
            await sleep(200);
          } else answer = { at: Date.now(), kind: 'network', detail: (err as Error).message };
        }
      }
      if (answer) answers.push(answer);
      await sleep(pauseMs);
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, () => shopper()));
  return {
    answers,
    get resends() {
      return resends;
    },
    async stop() {
      on = false;
      await running;
      await dispatcher.close();
      return answers;
    },
  };
}

/** summary is a one-line count of answers by kind, with the first few that were not ok. */
export function summary(answers: readonly Answer[]): string {
  const count = (k: Answer['kind']): number => answers.filter((a) => a.kind === k).length;
  const bad = answers
    .filter((a) => a.kind !== 'ok')
    .slice(0, 5)
    .map((a) => `${a.kind} ${String(a.status ?? '')} ${a.detail}`.trim());
  return (
    `ok ${String(count('ok'))}, failed ${String(count('failed'))}, 503 ${String(count('unavailable'))}, ` +
    `other ${String(count('other'))}, network ${String(count('network'))}` +
    (bad.length ? ` (first: ${bad.join('; ')})` : '')
  );
}
