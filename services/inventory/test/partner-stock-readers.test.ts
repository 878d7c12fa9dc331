// PARTNER_STOCK_READERS: named workloads of a federated trust domain may read
// stock, over HTTP and gRPC, and nothing else; our own trust domain keeps its
// rights. The SPIRE federation test (test/spire-federation.test.ts at the
// repository root) runs the same rule against real SPIRE.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import {
  createHeaderPeerResolver,
  createTestTrustDomain,
  MemorySource,
  TEST_PEER_HEADER,
  type TestTrustDomain,
} from '@shop/auth-testing';
import { createServiceMetrics } from '@shop/service-kit';
import { buildApp } from '../src/app.ts';
import { inventoryErrorCode, type InventoryGrpcClient } from '@shop/contracts';
import { startGrpcServer } from '../src/grpc.ts';
import { Clock, INVENTORY, openTestStore, ORDER, PAYMENT, TEST_CATALOGUE } from './support/fixture.ts';
import { closeAll, connectInventory, openGrpcStock, type Cleanups } from './support/grpc-fixture.ts';

/** READER is the partner workload PARTNER_STOCK_READERS names; OTHER_READER is one it does not. */
const READER = 'spiffe://partner.example/reader';
const OTHER_READER = 'spiffe://partner.example/other-reader';
const STOCK_RULE = `member of trust domain example.org or ID is one of [${READER}]`;
const MEMBERS_RULE = 'member of trust domain example.org';

let ours: TestTrustDomain;
let partner: TestTrustDomain;

before(async () => {
  ours = await createTestTrustDomain('example.org');
  partner = await createTestTrustDomain('partner.example');
});

describe('HTTP: PARTNER_STOCK_READERS may read stock and nothing else', () => {
  let resolvePeer: Awaited<ReturnType<typeof createHeaderPeerResolver>>;

  before(async () => {
    const own = await createHeaderPeerResolver(ours, ['/order', '/payment', '/inventory']);
    const theirs = await createHeaderPeerResolver(partner, ['/reader', '/other-reader']);
    resolvePeer = (req) => {
      const id = req.headers[TEST_PEER_HEADER];
      return typeof id === 'string' && id.startsWith('spiffe://partner.example/') ? theirs(req) : own(req);
    };
  });

  async function app(t: TestContext, partnerStockReaders?: string[]): Promise<FastifyInstance> {
    const fx = await openTestStore(t);
    // Inventory holds the partner's bundle, as a federated SPIRE agent delivers it.
    const source = MemorySource.create(await ours.svid('/inventory'), [ours.bundle, partner.bundle]);
    const built = await buildApp({
      stock: fx.stock,
      source,
      metrics: createServiceMetrics('inventory'),
      orderId: ORDER,
      partnerStockReaders,
      resolvePeer,
    });
    t.after(async () => {
      await built.close();
      await source.close();
    });
    return built;
  }

  const call = (a: FastifyInstance, peer: string, method: 'GET' | 'POST', url: string, payload?: object) =>
    a.inject({ method, url, headers: { [TEST_PEER_HEADER]: peer }, ...(payload ? { payload } : {}) });

  test('positive control: the named partner reads stock, and so does every workload of our trust domain', async (t) => {
    const a = await app(t, [READER]);
    for (const peer of [READER, ORDER, PAYMENT, INVENTORY]) {
      const res = await call(a, peer, 'GET', '/api/stock/sku-a');
      assert.equal(res.statusCode, 200, `${peer}: ${res.body}`);
      assert.deepEqual(res.json(), { product_id: 'sku-a', available: 10, reserved: 0 });
    }
  });

  test('another workload of the partner trust domain gets 403 on stock, the body naming the rule', async (t) => {
    const a = await app(t, [READER]);
    const res = await call(a, OTHER_READER, 'GET', '/api/stock/sku-a');
    assert.equal(res.statusCode, 403);
    assert.deepEqual(res.json(), {
      code: 'AUTH_ERR_PEER_UNAUTHORIZED',
      message: `unexpected ID "${OTHER_READER}" (rule: ${STOCK_RULE})`,
      caller: OTHER_READER,
      rule: STOCK_RULE,
    });
  });

  test('the named partner gets 403 on the catalogue, reserve, release and commit; nothing changes', async (t) => {
    const a = await app(t, [READER]);
    const routes: [string, 'GET' | 'POST', string, object?][] = [
      ['catalogue', 'GET', '/api/products'],
      ['reserve', 'POST', '/api/stock/sku-a/reserve', { quantity: 1, order_id: 'p-1' }],
      ['release', 'POST', '/api/reservations/p-1/release'],
      ['commit', 'POST', '/api/reservations/p-1/commit'],
    ];
    for (const [name, method, url, body] of routes) {
      const res = await call(a, READER, method, url, body);
      assert.equal(res.statusCode, 403, `${name}: ${res.body}`);
      assert.equal(res.json<{ code: string }>().code, 'AUTH_ERR_PEER_UNAUTHORIZED');
      assert.equal(res.json<{ caller: string }>().caller, READER);
    }
    const stock = await call(a, READER, 'GET', '/api/stock/sku-a');
    assert.deepEqual(stock.json(), { product_id: 'sku-a', available: 10, reserved: 0 }, 'no refused call reserved');
    // Positive control: the same catalogue read and reserve from our own workloads go through.
    assert.equal((await call(a, PAYMENT, 'GET', '/api/products')).statusCode, 200);
    const reserved = await call(a, ORDER, 'POST', '/api/stock/sku-a/reserve', { quantity: 1, order_id: 'p-1' });
    assert.equal(reserved.statusCode, 201);
  });

  test('the catalogue keeps the rule of our trust domain alone', async (t) => {
    const a = await app(t, [READER]);
    const res = await call(a, READER, 'GET', '/api/products');
    assert.equal(res.json<{ rule: string }>().rule, MEMBERS_RULE);
  });

  test('without PARTNER_STOCK_READERS no partner reads stock, even with its bundle held', async (t) => {
    const a = await app(t);
    assert.equal((await call(a, PAYMENT, 'GET', '/api/stock/sku-a')).statusCode, 200, 'positive control');
    const res = await call(a, READER, 'GET', '/api/stock/sku-a');
    assert.equal(res.statusCode, 403);
    assert.equal(res.json<{ rule: string }>().rule, MEMBERS_RULE);
  });
});

describe('gRPC over real mTLS: PARTNER_STOCK_READERS may GetStock and nothing else', () => {
  const cleanups: Cleanups = [];
  const clients = new Map<string, InventoryGrpcClient>();

  before(async () => {
    const clock = new Clock();
    const stock = await openGrpcStock(cleanups, 'inventory-partner-grpc-', clock);
    const serverSource = MemorySource.create(await ours.svid('/inventory'), [ours.bundle, partner.bundle]);
    cleanups.push(() => serverSource.close());
    const server = await startGrpcServer({
      stock,
      source: serverSource,
      metrics: createServiceMetrics('inventory'),
      orderId: ORDER,
      partnerStockReaders: [READER],
      host: '127.0.0.1',
      port: 0,
    });
    cleanups.push(() => server.close(100));
    for (const [td, path] of [
      [partner, '/reader'],
      [partner, '/other-reader'],
      [ours, '/payment'],
    ] as const) {
      // The partner trusts our bundle to verify inventory, as federation gives it.
      const source = MemorySource.create(await td.svid(path), [ours.bundle, partner.bundle]);
      clients.set(`spiffe://${td.name}${path}`, connectInventory(cleanups, server.port, source));
    }
  });

  after(() => closeAll(cleanups));

  const client = (id: string): InventoryGrpcClient => {
    const c = clients.get(id);
    assert.ok(c, id);
    return c;
  };

  async function denied(call: Promise<unknown>, rule: string): Promise<void> {
    await assert.rejects(call, (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED, `${grpc.status[err.code]}: ${err.details}`);
      assert.equal(inventoryErrorCode(err), 'AUTH_ERR_PEER_UNAUTHORIZED');
      assert.ok(err.details.includes(`(rule: ${rule})`), err.details);
      return true;
    });
  }

  test('positive control: the named partner and our payment workload GetStock', async () => {
    for (const id of [READER, PAYMENT]) {
      assert.deepEqual(await client(id).getStock({ product_id: 'sku-b' }), {
        product_id: 'sku-b',
        available: 5,
        reserved: 0,
      });
    }
  });

  test('another partner workload gets PERMISSION_DENIED on GetStock', async () => {
    await denied(client(OTHER_READER).getStock({ product_id: 'sku-b' }), STOCK_RULE);
  });

  test('the named partner gets PERMISSION_DENIED on ListProducts and Reserve', async () => {
    await denied(client(READER).listProducts(), MEMBERS_RULE);
    await denied(
      client(READER).reserve({ product_id: 'sku-b', quantity: 1, order_id: 'g-p' }),
      `ID is one of [${ORDER}]`,
    );
    // Positive control: our payment workload lists the catalogue on the same server.
    assert.equal((await client(PAYMENT).listProducts()).products.length, TEST_CATALOGUE.length);
  });
});
