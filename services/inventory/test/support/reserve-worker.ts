// A worker thread that reserves through its own connection to a shared
// database (a SQLite file, or PostgreSQL), for the cross-connection oversell test.
import { parentPort, workerData } from 'node:worker_threads';
import { ServiceError, type DatabaseConfig } from '@shop/service-kit';
import { StockService } from '../../src/stock.ts';

/** ReserveWorkerData is what the test passes to each worker. */
export interface ReserveWorkerData {
  database: DatabaseConfig;
  productId: string;
  orderIds: string[];
  /** nowMs is the test's clock, which the worker's stock service shares. */
  nowMs: number;
  /** barrier is an Int32Array(1) over shared memory: workers start reserving together once it reaches `parties`. */
  barrier: Int32Array;
  parties: number;
}

/** ReserveWorkerResult counts what the worker's reserves answered, by code ("ok" for success). */
export type ReserveWorkerResult = Record<string, number>;

const data = workerData as ReserveWorkerData;
const stock = await StockService.open({ database: data.database, reservationTtlSeconds: 300, now: () => data.nowMs });
const result: ReserveWorkerResult = {};
// Start together, so the reserves really overlap instead of running one worker after another.
Atomics.add(data.barrier, 0, 1);
Atomics.notify(data.barrier, 0);
for (let seen = Atomics.load(data.barrier, 0); seen < data.parties; seen = Atomics.load(data.barrier, 0)) {
  Atomics.wait(data.barrier, 0, seen, 1000);
}
try {
  for (const orderId of data.orderIds) {
    let outcome = 'ok';
    try {
      await stock.reserve(data.productId, { quantity: 1, order_id: orderId });
    } catch (err) {
      outcome = err instanceof ServiceError ? err.code : String(err);
    }
    result[outcome] = (result[outcome] ?? 0) + 1;
  }
} finally {
  await stock.close();
}
parentPort?.postMessage(result);
