// The demo's traffic generator: shoppers placing orders against the order
// service's public API, and a running tally. Used by `npm start`, and on its
// own: `node scripts/traffic.ts --url http://127.0.0.1:8080 --duration 30`.
import { parseArgs } from 'node:util';
import { request } from 'undici';

/** Tally counts what the shoppers saw. */
export interface Tally {
  placed: number;
  confirmed: number;
  pending: number;
  failed: Record<string, number>;
  rejected: Record<string, number>;
  errors: number;
  confirmedTotalCents: number;
  orderIds: string[];
}

interface Product {
  product_id: string;
  currency: string;
  available: number;
}

/** TrafficOptions configure the generator. */
export interface TrafficOptions {
  url: string;
  /** concurrency is the number of shoppers. Default: 4. */
  concurrency?: number;
  /** pauseMs between one shopper's orders. Default: 100. */
  pauseMs?: number;
  signal: AbortSignal;
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}

/** runTraffic places orders until `signal` aborts, updating `tally` as it goes. */
export async function runTraffic(o: TrafficOptions, tally: Tally): Promise<void> {
  let products: Product[] = [];
  const refresh = async (): Promise<void> => {
    try {
      const res = await request(`${o.url}/products`, { signal: AbortSignal.timeout(2000) });
      if (res.statusCode === 200) products = ((await res.body.json()) as { products: Product[] }).products;
      else await res.body.dump();
    } catch {
      // The order service did not answer at all: counted, so an unreachable
      // shop shows in the tally instead of shoppers silently waiting.
      tally.errors++;
    }
  };
  await refresh();
  const refresher = setInterval(() => void refresh(), 2000);
  const shopper = async (n: number): Promise<void> => {
    while (!o.signal.aborted) {
      if (products.length > 0) {
        const count = 1 + Math.floor(Math.random() * 2);
        const chosen = new Map<string, number>();
        for (let i = 0; i < count; i++) chosen.set(pick(products).product_id, 1 + Math.floor(Math.random() * 3));
        const body = {
          customer_id: `shopper-${n}`,
          currency: 'EUR',
          items: [...chosen].map(([product_id, quantity]) => ({ product_id, quantity })),
        };
        try {
          const res = await request(`${o.url}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(10_000),
          });
          const out = (await res.body.json()) as {
            order_id?: string;
            status?: string;
            failure_reason?: string | null;
            code?: string;
            total_cents?: number;
          };
          if (res.statusCode === 201) {
            tally.placed++;
            if (out.order_id) tally.orderIds.push(out.order_id);
            if (out.status === 'confirmed') {
              tally.confirmed++;
              tally.confirmedTotalCents += out.total_cents ?? 0;
            } else if (out.status === 'pending') tally.pending++;
            else {
              const reason = (out.failure_reason ?? 'unknown').split(':')[0] ?? 'unknown';
              tally.failed[reason] = (tally.failed[reason] ?? 0) + 1;
            }
          } else {
            const code = `${res.statusCode} ${out.code ?? ''}`.trim();
            tally.rejected[code] = (tally.rejected[code] ?? 0) + 1;
          }
        } catch {
          tally.errors++;
        }
      }
      await new Promise((r) => setTimeout(r, o.pauseMs ?? 100));
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 4 }, (_, i) => shopper(i + 1)));
  clearInterval(refresher);
}

/** newTally returns an empty tally. */
export function newTally(): Tally {
  return {
    placed: 0,
    confirmed: 0,
    pending: 0,
    failed: {},
    rejected: {},
    errors: 0,
    confirmedTotalCents: 0,
    orderIds: [],
  };
}

/** tallyLine is one line of the running tally, as the compose traffic service prints it. */
export function tallyLine(t: Tally): string {
  const failed = Object.entries(t.failed)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
  const rejected = Object.entries(t.rejected)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
  return (
    `placed=${String(t.placed)} confirmed=${String(t.confirmed)} pending=${String(t.pending)} ` +
    `failed=${String(Object.values(t.failed).reduce((a, b) => a + b, 0))}${failed ? `(${failed})` : ''} ` +
    `rejected=${String(Object.values(t.rejected).reduce((a, b) => a + b, 0))}${rejected ? `(${rejected})` : ''} ` +
    `errors=${String(t.errors)}`
  );
}

if (import.meta.main) {
  const readArgs = () => {
    try {
      return parseArgs({
        options: {
          url: { type: 'string', default: 'http://127.0.0.1:8080' },
          // 0: until SIGINT or SIGTERM (the compose traffic service).
          duration: { type: 'string', default: '30' },
          concurrency: { type: 'string', default: '4' },
          // Print a one-line tally every this many seconds; 0: only the summary at the end.
          report: { type: 'string', default: '0' },
        },
      }).values;
    } catch (err) {
      console.error(`traffic: ${(err as Error).message}`);
      console.error('options: --url <order base URL> --duration <s, 0 = until stopped> --concurrency <n> --report <s>');
      process.exit(2);
    }
  };
  const values = readArgs();
  const duration = Number(values.duration);
  const report = Number(values.report);
  const concurrency = Number(values.concurrency);
  for (const [name, v, min] of [
    ['--duration', duration, 0],
    ['--report', report, 0],
    ['--concurrency', concurrency, 1],
  ] as const) {
    if (!Number.isInteger(v) || v < min) {
      console.error(`traffic: ${name} must be an integer >= ${String(min)}`);
      process.exit(2);
    }
  }
  const controller = new AbortController();
  const tally = newTally();
  const stop = (): void => {
    controller.abort();
  };
  if (duration > 0) setTimeout(stop, duration * 1000);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const ticker =
    report > 0
      ? setInterval(() => {
          console.log(`traffic: ${tallyLine(tally)}`);
        }, report * 1000)
      : undefined;
  await runTraffic({ url: values.url, concurrency, signal: controller.signal }, tally);
  clearInterval(ticker);
  console.log(JSON.stringify({ ...tally, orderIds: tally.orderIds.length }, null, 2));
}
