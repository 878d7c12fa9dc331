import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createTestTrustDomain, MemorySource } from '@shop/auth-testing';
import { createServiceMetrics, type ServiceMetrics } from '@shop/service-kit';
import { inventoryErrorCode, type InventoryGrpcClient } from '@shop/contracts';
import { startGrpcServer, type InventoryGrpcServer } from '../src/grpc.ts';
import type { StockService } from '../src/stock.ts';
import { Clock, ORDER, TEST_CATALOGUE } from './support/fixture.ts';
import { closeAll, connectInventory, openGrpcStock, type Cleanups } from './support/grpc-fixture.ts';

describe('gRPC over real mTLS on loopback', () => {
  const clock = new Clock();
  const cleanups: Cleanups = [];
  let stock: StockService;
  let metrics: ServiceMetrics;
  let server: InventoryGrpcServer;
  let order: InventoryGrpcClient;
  let payment: InventoryGrpcClient;

  before(async () => {
    const td = await createTestTrustDomain('example.org');
    stock = await openGrpcStock(cleanups, 'inventory-grpc-', clock);
    const serverSource = MemorySource.create(await td.svid('/inventory'), [td.bundle]);
    cleanups.push(() => serverSource.close());
    metrics = createServiceMetrics('inventory');
    server = await startGrpcServer({
      stock,
      source: serverSource,
      metrics,
      orderId: ORDER,
      host: '127.0.0.1',
      port: 0,
    });
    cleanups.push(() => server.close(100));
    const client = async (path: string): Promise<InventoryGrpcClient> =>
      connectInventory(cleanups, server.port, MemorySource.create(await td.svid(path), [td.bundle]));
    order = await client('/order');
    payment = await client('/payment');
  });

  after(() => closeAll(cleanups));

  async function rejectsWith(
    call: Promise<unknown>,
    status: grpc.status,
    code: string,
    details?: RegExp,
  ): Promise<void> {
    await assert.rejects(call, (err: grpc.ServiceError) => {
      assert.equal(err.code, status, `${grpc.status[err.code]}: ${err.details}`);
      assert.equal(inventoryErrorCode(err), code);
      if (details) assert.match(err.details, details);
      return true;
    });
  }

  test('the order identity reserves (replay-safe), reads and commits', async () => {
    const r = await order.reserve({ product_id: 'sku-a', quantity: 2, order_id: 'g-1' });
    assert.equal(r.status, 'reserved');
    assert.deepEqual(
      { ...r, reservation_id: '' },
      {
        reservation_id: '',
        order_id: 'g-1',
        product_id: 'sku-a',
        quantity: 2,
        status: 'reserved',
        expires_at: new Date(clock.ms + 60_000).toISOString(),
      },
    );
    assert.deepEqual(
      await order.reserve({ product_id: 'sku-a', quantity: 2, order_id: 'g-1' }),
      r,
      'a replay returns the same reservation',
    );
    assert.deepEqual(await order.getStock({ product_id: 'sku-a' }), { product_id: 'sku-a', available: 8, reserved: 2 });

    const committed = await order.commit({ order_id: 'g-1' });
    assert.deepEqual(committed, {
      order_id: 'g-1',
      status: 'committed',
      reservations: [{ ...r, status: 'committed' }],
    });
    assert.deepEqual(await order.commit({ order_id: 'g-1' }), committed, 'commit is idempotent');
    assert.deepEqual(
      await order.getStock({ product_id: 'sku-a' }),
      { product_id: 'sku-a', available: 8, reserved: 0 },
      'zeros arrive as 0',
    );
    assert.deepEqual(
      await order.release({ order_id: 'g-never' }),
      { order_id: 'g-never', status: 'released', reservations: [] },
      'releasing an order that reserved nothing succeeds, and an empty list arrives as []',
    );
  });

  test('the payment identity may GetStock and ListProducts, but gets PERMISSION_DENIED on Reserve, Release and Commit', async () => {
    const stock = await payment.getStock({ product_id: 'sku-b' });
    assert.equal(stock.product_id, 'sku-b');
    const { products } = await payment.listProducts();
    assert.deepEqual(
      products.map((p) => p.product_id),
      TEST_CATALOGUE.map((p) => p.product_id),
    );
    assert.deepEqual(Object.keys(products[0]!).sort(), [
      'available',
      'currency',
      'name',
      'price_cents',
      'product_id',
      'reserved',
    ]);

    await order.reserve({ product_id: 'sku-b', quantity: 1, order_id: 'g-perm' });
    const after = await payment.getStock({ product_id: 'sku-b' });
    await rejectsWith(
      payment.reserve({ product_id: 'sku-b', quantity: 1, order_id: 'g-pay' }),
      grpc.status.PERMISSION_DENIED,
      'AUTH_ERR_PEER_UNAUTHORIZED',
      /payment/,
    );
    await rejectsWith(
      payment.release({ order_id: 'g-perm' }),
      grpc.status.PERMISSION_DENIED,
      'AUTH_ERR_PEER_UNAUTHORIZED',
    );
    await rejectsWith(
      payment.commit({ order_id: 'g-perm' }),
      grpc.status.PERMISSION_DENIED,
      'AUTH_ERR_PEER_UNAUTHORIZED',
    );
    assert.deepEqual(await payment.getStock({ product_id: 'sku-b' }), after, 'refused calls changed nothing');
    // Positive control: the same release from the order identity goes through.
    assert.equal((await order.release({ order_id: 'g-perm' })).status, 'released');

    const denials = await metrics.registry.getSingleMetricAsString('shop_authz_denials_total');
    assert.match(
      denials,
      /protocol="grpc",route="\/inventory.v1.Inventory\/Reserve",caller="spiffe:\/\/example.org\/payment"/,
    );
  });

  test('domain errors map to gRPC status codes, with the error code at the start of the details', async (t) => {
    await order.reserve({ product_id: 'sku-b', quantity: 1, order_id: 'g-e1' });
    const cases: [string, () => Promise<unknown>, grpc.status, string, RegExp?][] = [
      [
        'unknown product',
        () => order.getStock({ product_id: 'sku-nope' }),
        grpc.status.NOT_FOUND,
        'UNKNOWN_PRODUCT',
        /^UNKNOWN_PRODUCT: no product sku-nope/,
      ],
      [
        'reserve of an unknown product',
        () => order.reserve({ product_id: 'sku-nope', quantity: 1, order_id: 'g-e2' }),
        grpc.status.NOT_FOUND,
        'UNKNOWN_PRODUCT',
      ],
      [
        'empty product_id',
        () => order.getStock({ product_id: '' }),
        grpc.status.INVALID_ARGUMENT,
        'INVALID_REQUEST',
        /product_id must match/,
      ],
      [
        'quantity 0 (unset)',
        () => order.reserve({ product_id: 'sku-b', quantity: 0, order_id: 'g-e2' }),
        grpc.status.INVALID_ARGUMENT,
        'INVALID_REQUEST',
        /quantity must be an integer from 1 to 1000, got 0/,
      ],
      [
        'negative quantity',
        () => order.reserve({ product_id: 'sku-b', quantity: -1, order_id: 'g-e2' }),
        grpc.status.INVALID_ARGUMENT,
        'INVALID_REQUEST',
      ],
      [
        'absurd quantity',
        () => order.reserve({ product_id: 'sku-b', quantity: 1001, order_id: 'g-e2' }),
        grpc.status.INVALID_ARGUMENT,
        'INVALID_REQUEST',
      ],
      [
        'missing order_id',
        () => order.reserve({ product_id: 'sku-b', quantity: 1, order_id: '' }),
        grpc.status.INVALID_ARGUMENT,
        'INVALID_REQUEST',
        /order_id must match/,
      ],
      [
        'insufficient stock',
        () => order.reserve({ product_id: 'sku-b', quantity: 5, order_id: 'g-e2' }),
        grpc.status.FAILED_PRECONDITION,
        'INSUFFICIENT_STOCK',
        /^INSUFFICIENT_STOCK: only 4 of sku-b available, 5 requested$/,
      ],
      [
        'another quantity for the same order',
        () => order.reserve({ product_id: 'sku-b', quantity: 2, order_id: 'g-e1' }),
        grpc.status.FAILED_PRECONDITION,
        'RESERVATION_CONFLICT',
      ],
      [
        'commit of an unknown order',
        () => order.commit({ order_id: 'g-none' }),
        grpc.status.NOT_FOUND,
        'RESERVATION_NOT_FOUND',
      ],
    ];
    const before = await stock.listProducts();
    for (const [name, call, status, code, details] of cases) {
      await t.test(name, () => rejectsWith(call(), status, code, details));
    }
    assert.deepEqual(await stock.listProducts(), before, 'no failed call wrote anything');

    await order.commit({ order_id: 'g-e1' });
    await rejectsWith(
      order.release({ order_id: 'g-e1' }),
      grpc.status.FAILED_PRECONDITION,
      'RESERVATION_CONFLICT',
      /committed/,
    );

    await order.reserve({ product_id: 'sku-a', quantity: 1, order_id: 'g-late' });
    clock.advance(61);
    await rejectsWith(
      order.commit({ order_id: 'g-late' }),
      grpc.status.FAILED_PRECONDITION,
      'RESERVATION_EXPIRED',
      /expired at/,
    );
  });
});
