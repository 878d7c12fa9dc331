// What the inventory tests share: a small catalogue, a clock moved by hand,
// and the stock service over a store in a temporary directory that the test removes when it ends.
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { makeTempDir, MemorySource, type TestTrustDomain } from '@shop/auth-testing';
import { createServiceMetrics, type DatabaseConfig } from '@shop/service-kit';
import { testDatabaseConfig } from '@shop/service-kit/testing';
import { buildApp } from '../../src/app.ts';
import type { SeedProduct } from '../../src/seed.ts';
import { StockService } from '../../src/stock.ts';

/** TEST_CATALOGUE is seeded into every test store. */
export const TEST_CATALOGUE: readonly SeedProduct[] = [
  { product_id: 'sku-a', name: 'Product A', price_cents: 1000, currency: 'EUR', on_hand: 10 },
  { product_id: 'sku-b', name: 'Product B', price_cents: 250, currency: 'EUR', on_hand: 5 },
  { product_id: 'sku-limited', name: 'Limited', price_cents: 1990, currency: 'EUR', on_hand: 50 },
];

/** ORDER, PAYMENT, INVENTORY and PARTNER_ORDER are the callers the tests use. */
export const ORDER = 'spiffe://example.org/order';
export const PAYMENT = 'spiffe://example.org/payment';
export const INVENTORY = 'spiffe://example.org/inventory';
/** PARTNER_ORDER is verified, but of another trust domain. */
export const PARTNER_ORDER = 'spiffe://partner.example/order';

/** Clock is a hand-moved clock for the store's `now`. */
export class Clock {
  ms = Date.parse('2030-01-01T00:00:00.000Z');
  readonly now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** TestStore is the stock service over a store in a temporary database (SQLite, or PostgreSQL with SHOP_TEST_DATABASE=postgres), with its clock. */
export interface TestStore {
  stock: StockService;
  clock: Clock;
  /** database is the store's database, for a second connection to it. */
  database: DatabaseConfig;
  /** reopen closes the store and opens the same database again, as a restart does. */
  reopen(seed?: readonly SeedProduct[]): Promise<StockService>;
}

/** openTestStore opens a store in a fresh temp dir; `t.after` closes it and removes the dir, also on failure. */
export async function openTestStore(t: TestContext, options: { ttlSeconds?: number } = {}): Promise<TestStore> {
  const { dir, cleanup } = await makeTempDir('inventory-test-');
  const clock = new Clock();
  const database = await testDatabaseConfig(dir, 'inventory.db');
  const open = (seed: readonly SeedProduct[]): Promise<StockService> =>
    StockService.open({ database, reservationTtlSeconds: options.ttlSeconds ?? 300, seed, now: clock.now });
  const fixture: TestStore = {
    stock: await open(TEST_CATALOGUE),
    clock,
    database,
    async reopen(seed = TEST_CATALOGUE) {
      await fixture.stock.close();
      fixture.stock = await open(seed);
      return fixture.stock;
    },
  };
  t.after(async () => {
    await fixture.stock.close();
    await cleanup();
  });
  return fixture;
}

/**
 * buildTestApp builds inventory's HTTP app on a test store, with its own
 * identity from `td` and the caller taken from `resolvePeer` (inject() has no
 * TLS socket); everything is closed when the test ends.
 */
export async function buildTestApp(
  t: TestContext,
  fx: TestStore,
  td: TestTrustDomain,
  resolvePeer: NonNullable<Parameters<typeof buildApp>[0]['resolvePeer']>,
): Promise<FastifyInstance> {
  const source = MemorySource.create(await td.svid('/inventory'), [td.bundle]);
  const app = await buildApp({
    stock: fx.stock,
    source,
    metrics: createServiceMetrics('inventory'),
    orderId: ORDER,
    resolvePeer,
  });
  t.after(async () => {
    await app.close();
    await source.close();
  });
  return app;
}
