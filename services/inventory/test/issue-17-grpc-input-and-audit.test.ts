// Issue 17, defects 4 and 5, on inventory's real gRPC server over mTLS:
// huge fields are refused with short details and the caller's channel lives
// on; every decision is written to the service log, the claimed ID of a
// refused certificate in the log only, never in a metric label.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { GrpcDecision } from '@shop/auth/grpc';
import { createHeaderPeerResolver, createTestTrustDomain, MemorySource } from '@shop/auth-testing';
import { createServiceMetrics, type ServiceMetrics } from '@shop/service-kit';
import { inventoryErrorCode, type InventoryGrpcClient } from '@shop/contracts';
import { MAX_GRPC_MESSAGE_BYTES, startGrpcServer, type InventoryGrpcServer } from '../src/grpc.ts';
import type { StockService } from '../src/stock.ts';
import { buildTestApp, Clock, openTestStore, ORDER } from './support/fixture.ts';
import { closeAll, connectInventory, openGrpcStock, type Cleanups } from './support/grpc-fixture.ts';

type Line = Record<string, unknown> & { msg: string };

// What a refused call may send back at most: the code, the rule, 64
// characters of the input and the pattern it broke.
const DETAILS_BOUND = 300;
// The rogue certificate claims an ID no real workload has, so it can be
// told apart in logs and metrics.
const CLAIMED = 'spiffe://example.org/claimed-by-rogue';

describe('inventory gRPC: input bounds and audit lines', () => {
  const clock = new Clock();
  const cleanups: Cleanups = [];
  const lines: Line[] = [];
  let stock: StockService;
  let metrics: ServiceMetrics;
  let server: InventoryGrpcServer;
  let order: InventoryGrpcClient;
  let payment: InventoryGrpcClient;
  let rogue: InventoryGrpcClient;

  before(async () => {
    const td = await createTestTrustDomain('example.org');
    const rogueTd = await createTestTrustDomain('example.org');
    stock = await openGrpcStock(cleanups, 'inventory-issue17-', clock);
    const serverSource = MemorySource.create(await td.svid('/inventory'), [td.bundle]);
    cleanups.push(() => serverSource.close());
    metrics = createServiceMetrics('inventory');
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
        cb();
      },
    });
    server = await startGrpcServer({
      stock,
      source: serverSource,
      metrics,
      orderId: ORDER,
      host: '127.0.0.1',
      port: 0,
      log: pino({ level: 'info' }, stream),
    });
    cleanups.push(() => server.close(100));
    const client = (source: MemorySource): InventoryGrpcClient => connectInventory(cleanups, server.port, source);
    order = client(MemorySource.create(await td.svid('/order'), [td.bundle]));
    payment = client(MemorySource.create(await td.svid('/payment'), [td.bundle]));
    // Trusts the real server, presents a certificate the server cannot verify.
    rogue = client(MemorySource.create(await rogueTd.svid(CLAIMED.slice('spiffe://example.org'.length)), [td.bundle]));
  });

  after(() => closeAll(cleanups));

  const failure = async (p: Promise<unknown>): Promise<grpc.ServiceError> => {
    try {
      await p;
    } catch (err) {
      return err as grpc.ServiceError;
    }
    throw new Error('the call succeeded');
  };

  test('regression: a 1 MB product_id is refused with short details, and the channel still serves the next call', async () => {
    const r1 = await order.reserve({ product_id: 'sku-a', quantity: 1, order_id: 'big-1' });
    assert.equal(r1.status, 'reserved', 'positive control before');

    const huge = 'x'.repeat(1024 * 1024);
    for (const call of [
      () => order.reserve({ product_id: huge, quantity: 1, order_id: 'big-2' }),
      () => order.getStock({ product_id: huge }),
    ]) {
      const err = await failure(call());
      assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, err.details);
      assert.ok(err.details.length < DETAILS_BOUND, `details are ${err.details.length} characters`);
    }

    // Under the message cap but far over the contract: refused by the
    // handler's own check, quoting only the start of the input.
    const long = 'y'.repeat(MAX_GRPC_MESSAGE_BYTES / 2);
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['Reserve product_id', () => order.reserve({ product_id: long, quantity: 1, order_id: 'big-3' }), /product_id/],
      ['Reserve order_id', () => order.reserve({ product_id: 'sku-a', quantity: 1, order_id: long }), /order_id/],
      ['GetStock product_id', () => order.getStock({ product_id: long }), /product_id/],
      ['Release order_id', () => order.release({ order_id: long }), /order_id/],
      ['Commit order_id', () => order.commit({ order_id: long }), /order_id/],
    ];
    for (const [name, call, field] of cases) {
      const err = await failure(call());
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${name}: ${grpc.status[err.code]}`);
      assert.equal(inventoryErrorCode(err), 'INVALID_REQUEST', name);
      assert.match(err.details, field, name);
      assert.ok(err.details.length < DETAILS_BOUND, `${name}: details are ${err.details.length} characters`);
      assert.ok(err.details.includes(`"${'y'.repeat(64)}"…`), `${name}: quotes the first 64 characters`);
    }

    const r2 = await order.reserve({ product_id: 'sku-a', quantity: 1, order_id: 'big-4' });
    assert.equal(r2.status, 'reserved', 'positive control after: the same channel still works');
    assert.deepEqual(await order.getStock({ product_id: 'sku-a' }), { product_id: 'sku-a', available: 8, reserved: 2 });
  });

  test('regression: inventory gRPC decisions are logged — allow, PERMISSION_DENIED, UNAUTHENTICATED with the claimed ID', async () => {
    const start = lines.length;
    await order.getStock({ product_id: 'sku-b' });
    const denied = await failure(payment.reserve({ product_id: 'sku-b', quantity: 1, order_id: 'audit-1' }));
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
    const refused = await failure(rogue.getStock({ product_id: 'sku-b' }));
    assert.equal(refused.code, grpc.status.UNAUTHENTICATED);

    const audit = lines
      .slice(start)
      .filter((l) => l.msg === 'authz allow' || l.msg === 'authz deny')
      .map((l) => [l.msg, l.authz as GrpcDecision] as const);
    assert.deepEqual(
      audit.map(([msg, d]) => [msg, d.status, d.caller, d.method, d.remote, d.claimed]),
      [
        ['authz allow', 'OK', ORDER, '/inventory.v1.Inventory/GetStock', '127.0.0.1', undefined],
        [
          'authz deny',
          'PERMISSION_DENIED',
          'spiffe://example.org/payment',
          '/inventory.v1.Inventory/Reserve',
          '127.0.0.1',
          undefined,
        ],
        ['authz deny', 'UNAUTHENTICATED', null, '/inventory.v1.Inventory/GetStock', '127.0.0.1', CLAIMED],
      ],
    );
    assert.equal(audit[1]![1].rule, `ID is one of [${ORDER}]`);
    assert.equal(audit[2]![1].code, 'AUTH_ERR_PEER_UNVERIFIED');
    const rejected = lines.slice(start).filter((l) => l.msg === 'client certificate rejected');
    assert.deepEqual(
      rejected.map((l) => [l.claimed, l.remote]),
      [[CLAIMED, '127.0.0.1']],
    );

    // The claimed ID is the caller's word: logs only, never a label.
    const exposition = await metrics.registry.metrics();
    assert.ok(!exposition.includes('claimed-by-rogue'), 'no metric carries the claimed ID');
    const denials = await metrics.registry.getSingleMetricAsString('shop_authz_denials_total');
    assert.match(denials, /protocol="grpc",route="\/inventory.v1.Inventory\/GetStock",caller="none"/);
  });
});

describe('inventory HTTP: error texts do not echo whole inputs', () => {
  test('regression: a 404 for a long unknown path quotes only its start; known routes still answer (positive control)', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const fx = await openTestStore(t);
    const app = await buildTestApp(t, fx, td, await createHeaderPeerResolver(td, ['/order']));
    const peer = { 'x-test-peer': ORDER };
    const ok = await app.inject({ method: 'GET', url: '/api/products', headers: peer });
    assert.equal(ok.statusCode, 200);
    const res = await app.inject({ method: 'GET', url: `/api/${'z'.repeat(8000)}`, headers: peer });
    assert.equal(res.statusCode, 404);
    const { code, message } = res.json<{ code: string; message: string }>();
    assert.equal(code, 'NOT_FOUND');
    assert.ok(message.length < 100, `message is ${message.length} characters`);
    assert.match(message, /^no route GET \/api\/z+…$/);
  });
});
