// What the gRPC tests share: a stock service in a temporary directory, mTLS
// clients of the real server, and cleanups undone last-first at the end.
import assert from 'node:assert/strict';
import { authorizeId } from '@shop/auth';
import { grpcChannelCredentials } from '@shop/auth/grpc';
import { makeTempDir, type MemorySource } from '@shop/auth-testing';
import { createInventoryGrpcClient, type InventoryGrpcClient } from '@shop/contracts';
import { testDatabaseConfig } from '@shop/service-kit/testing';
import { StockService } from '../../src/stock.ts';
import { INVENTORY, TEST_CATALOGUE, type Clock } from './fixture.ts';

/** Cleanups is the list of undo steps a describe block collects and hands to closeAll in its after hook. */
export type Cleanups = (() => unknown)[];

/** openGrpcStock opens the stock service over TEST_CATALOGUE in a fresh temporary directory named `prefix`; both are undone through `cleanups`. */
export async function openGrpcStock(cleanups: Cleanups, prefix: string, clock: Clock): Promise<StockService> {
  const { dir, cleanup } = await makeTempDir(prefix);
  cleanups.push(cleanup);
  const stock = await StockService.open({
    database: await testDatabaseConfig(dir, 'inventory.db'),
    reservationTtlSeconds: 60,
    seed: TEST_CATALOGUE,
    now: clock.now,
  });
  cleanups.push(() => stock.close());
  return stock;
}

/** connectInventory opens a gRPC client of 127.0.0.1:`port` as `source`, expecting INVENTORY there; client and source are closed through `cleanups`. */
export function connectInventory(cleanups: Cleanups, port: number, source: MemorySource): InventoryGrpcClient {
  const client = createInventoryGrpcClient(`127.0.0.1:${port}`, grpcChannelCredentials(source, authorizeId(INVENTORY)));
  cleanups.push(
    () => source.close(),
    () => {
      client.close();
    },
  );
  return client;
}

/** closeAll runs `cleanups` last opened, first closed; one failing does not skip the rest, and the test fails if any did. */
export async function closeAll(cleanups: Cleanups): Promise<void> {
  const results = await Promise.allSettled(cleanups.reverse().map((c) => Promise.resolve().then(c)));
  assert.deepEqual(
    results.filter((r) => r.status === 'rejected'),
    [],
  );
}
