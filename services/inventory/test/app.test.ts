import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import {
  createHeaderPeerResolver,
  createTestTrustDomain,
  TEST_PEER_HEADER,
  type TestTrustDomain,
} from '@shop/auth-testing';
import type { OrderReservations, Product, Reservation, Stock } from '@shop/contracts';
import {
  buildTestApp,
  INVENTORY,
  openTestStore,
  ORDER,
  PARTNER_ORDER,
  PAYMENT,
  TEST_CATALOGUE,
  type TestStore,
} from './support/fixture.ts';

type Resolver = Awaited<ReturnType<typeof createHeaderPeerResolver>>;

let td: TestTrustDomain;
let resolvePeer: Resolver;

before(async () => {
  td = await createTestTrustDomain('example.org');
  const ours = await createHeaderPeerResolver(td, ['/order', '/payment', '/inventory']);
  // A verified caller of another trust domain, to show that reads are
  // limited to our own: the header names the trust domain to resolve in.
  const partner = await createHeaderPeerResolver(await createTestTrustDomain('partner.example'), ['/order']);
  resolvePeer = (req) => (req.headers[TEST_PEER_HEADER] === PARTNER_ORDER ? partner(req) : ours(req));
});

interface Harness extends TestStore {
  app: FastifyInstance;
  call(
    method: 'GET' | 'POST',
    url: string,
    options?: { peer?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>;
  stockOf(productId: string): Promise<Stock>;
}

async function harness(t: TestContext, options: { ttlSeconds?: number } = {}): Promise<Harness> {
  const fx = await openTestStore(t, options);
  const app = await buildTestApp(t, fx, td, resolvePeer);
  return Object.assign(fx, {
    app,
    call: (
      method: 'GET' | 'POST',
      url: string,
      o: { peer?: string | null; body?: unknown; headers?: Record<string, string> } = {},
    ) => {
      const peer = o.peer === undefined ? ORDER : o.peer;
      const headers: Record<string, string> = { ...(peer ? { [TEST_PEER_HEADER]: peer } : {}), ...o.headers };
      if (typeof o.body === 'string')
        return app.inject({
          method,
          url,
          headers: { 'content-type': 'application/json', ...headers },
          payload: o.body,
        });
      return app.inject({ method, url, headers, ...(o.body === undefined ? {} : { payload: o.body as object }) });
    },
    stockOf: (productId: string) => fx.stock.getStock(productId),
  });
}

const reserveOf = (quantity: number, orderId: string) => ({ quantity, order_id: orderId });

describe('authorization: reads for our trust domain, writes for the order service', () => {
  let n = 0;
  const routes: {
    name: string;
    method: 'GET' | 'POST';
    url: () => string;
    body?: () => unknown;
    allowed: string[];
    status: number;
  }[] = [
    {
      name: 'GET /api/products',
      method: 'GET',
      url: () => '/api/products',
      allowed: [ORDER, PAYMENT, INVENTORY],
      status: 200,
    },
    {
      name: 'GET /api/stock/:productId',
      method: 'GET',
      url: () => '/api/stock/sku-a',
      allowed: [ORDER, PAYMENT, INVENTORY],
      status: 200,
    },
    {
      name: 'POST /api/stock/:productId/reserve',
      method: 'POST',
      url: () => '/api/stock/sku-a/reserve',
      body: () => reserveOf(1, `authz-${++n}`),
      allowed: [ORDER],
      status: 201,
    },
    {
      name: 'POST /api/reservations/:orderId/release',
      method: 'POST',
      url: () => '/api/reservations/authz-r/release',
      allowed: [ORDER],
      status: 200,
    },
    {
      name: 'POST /api/reservations/:orderId/commit',
      method: 'POST',
      url: () => '/api/reservations/authz-c/commit',
      allowed: [ORDER],
      status: 200,
    },
  ];
  const everyone = [ORDER, PAYMENT, INVENTORY, PARTNER_ORDER];

  for (const route of routes) {
    test(`${route.name}: ${route.allowed.map((id) => id.split('/').pop()).join(', ')} allowed; every other identity 403; none 401`, async (t) => {
      const h = await harness(t);
      for (const orderId of ['authz-r', 'authz-c']) await h.stock.reserve('sku-b', reserveOf(1, orderId));
      const before = await h.stock.listProducts();
      for (const peer of everyone.filter((id) => !route.allowed.includes(id))) {
        const res = await h.call(route.method, route.url(), { peer, body: route.body?.() });
        assert.equal(res.statusCode, 403, `${peer} is refused`);
        assert.equal(res.json<{ caller: string }>().caller, peer);
        assert.equal(res.json<{ code: string }>().code, 'AUTH_ERR_PEER_UNAUTHORIZED');
      }
      const anonymous = await h.call(route.method, route.url(), { peer: null, body: route.body?.() });
      assert.equal(anonymous.statusCode, 401);
      assert.equal(anonymous.json<{ code: string }>().code, 'AUTH_ERR_PEER_NO_CERTIFICATE');
      const unverified = await h.call(route.method, route.url(), {
        peer: 'spiffe://example.org/ghost',
        body: route.body?.(),
      });
      assert.equal(unverified.statusCode, 401);
      assert.equal(unverified.json<{ code: string }>().code, 'AUTH_ERR_PEER_UNVERIFIED');
      assert.deepEqual(await h.stock.listProducts(), before, 'refused calls changed nothing');
      // Positive control, after the refusals so they are shown to have changed nothing.
      for (const peer of route.allowed) {
        const res = await h.call(route.method, route.url(), { peer, body: route.body?.() });
        assert.equal(res.statusCode, route.status, `${peer} is allowed: ${res.body}`);
      }
    });
  }
});

describe('reads', () => {
  test('GET /api/products lists the catalogue with stock levels', async (t) => {
    const h = await harness(t);
    await h.stock.reserve('sku-a', reserveOf(3, 'o-1'));
    const res = await h.call('GET', '/api/products', { peer: PAYMENT });
    assert.equal(res.statusCode, 200);
    const products = res.json<Product[]>();
    assert.deepEqual(
      products.map((p) => p.product_id),
      TEST_CATALOGUE.map((p) => p.product_id),
    );
    assert.deepEqual(products[0], {
      product_id: 'sku-a',
      name: 'Product A',
      price_cents: 1000,
      currency: 'EUR',
      available: 7,
      reserved: 3,
    });
  });

  test('GET /api/stock/:productId answers available and reserved', async (t) => {
    const h = await harness(t);
    await h.stock.reserve('sku-a', reserveOf(4, 'o-1'));
    const res = await h.call('GET', '/api/stock/sku-a', { peer: PAYMENT });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { product_id: 'sku-a', available: 6, reserved: 4 });
  });
});

describe('bad input: the right 4xx with a message naming what to fix, and nothing written', () => {
  const big = 'x'.repeat(2048);
  const cases: {
    name: string;
    method?: 'GET' | 'POST';
    url: string;
    body?: unknown;
    headers?: Record<string, string>;
    status: number;
    code: string;
    message?: RegExp;
  }[] = [
    {
      name: 'malformed JSON',
      url: '/api/stock/sku-a/reserve',
      body: '{"quantity": 1,',
      status: 400,
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
    },
    {
      name: 'empty JSON body',
      url: '/api/stock/sku-a/reserve',
      body: '',
      status: 400,
      code: 'FST_ERR_CTP_EMPTY_JSON_BODY',
    },
    {
      name: 'no body at all',
      url: '/api/stock/sku-a/reserve',
      status: 400,
      code: 'INVALID_REQUEST',
      message: /body must be object/,
    },
    {
      name: 'body is an array',
      url: '/api/stock/sku-a/reserve',
      body: [reserveOf(1, 'o-bad')],
      status: 400,
      code: 'INVALID_REQUEST',
      message: /body must be object/,
    },
    {
      name: 'a form, not JSON',
      url: '/api/stock/sku-a/reserve',
      body: 'quantity=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    },
    {
      name: 'plain text, not JSON',
      url: '/api/stock/sku-a/reserve',
      body: '1',
      headers: { 'content-type': 'text/plain' },
      status: 400,
      code: 'INVALID_REQUEST',
      message: /body must be object/,
    },
    {
      name: 'oversized body',
      url: '/api/stock/sku-a/reserve',
      body: { quantity: 1, order_id: 'o-bad', pad: big },
      status: 413,
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
    },
    {
      name: 'unknown product',
      url: '/api/stock/sku-nope/reserve',
      body: reserveOf(1, 'o-bad'),
      status: 404,
      code: 'UNKNOWN_PRODUCT',
      message: /sku-nope/,
    },
    {
      name: 'malformed product ID',
      url: '/api/stock/-a/reserve',
      body: reserveOf(1, 'o-bad'),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /params\/productId/,
    },
    {
      name: 'quantity 0',
      url: '/api/stock/sku-a/reserve',
      body: reserveOf(0, 'o-bad'),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /quantity must be >= 1/,
    },
    {
      name: 'negative quantity',
      url: '/api/stock/sku-a/reserve',
      body: reserveOf(-3, 'o-bad'),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /quantity must be >= 1/,
    },
    {
      name: 'fractional quantity',
      url: '/api/stock/sku-a/reserve',
      body: reserveOf(1.5, 'o-bad'),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /quantity must be integer/,
    },
    {
      name: 'quantity as a string',
      url: '/api/stock/sku-a/reserve',
      body: { quantity: '2', order_id: 'o-bad' },
      status: 400,
      code: 'INVALID_REQUEST',
      message: /quantity must be integer/,
    },
    {
      name: 'absurd quantity',
      url: '/api/stock/sku-a/reserve',
      body: reserveOf(1001, 'o-bad'),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /quantity must be <= 1000/,
    },
    {
      name: 'missing quantity',
      url: '/api/stock/sku-a/reserve',
      body: { order_id: 'o-bad' },
      status: 400,
      code: 'INVALID_REQUEST',
      message: /quantity/,
    },
    {
      name: 'missing order_id',
      url: '/api/stock/sku-a/reserve',
      body: { quantity: 1 },
      status: 400,
      code: 'INVALID_REQUEST',
      message: /order_id/,
    },
    {
      name: 'empty order_id',
      url: '/api/stock/sku-a/reserve',
      body: reserveOf(1, ''),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /order_id must match/,
    },
    {
      name: 'order_id with a slash',
      url: '/api/stock/sku-a/reserve',
      body: reserveOf(1, 'a/b'),
      status: 400,
      code: 'INVALID_REQUEST',
      message: /order_id must match/,
    },
    {
      name: 'order_id not a string',
      url: '/api/stock/sku-a/reserve',
      body: { quantity: 1, order_id: 42 },
      status: 400,
      code: 'INVALID_REQUEST',
      message: /order_id must be string/,
    },
    {
      name: 'misspelt field',
      url: '/api/stock/sku-a/reserve',
      body: { quantity: 1, order_id: 'o-bad', qty: 1 },
      status: 400,
      code: 'INVALID_REQUEST',
      message: /additional properties/,
    },
    {
      name: 'stock of an unknown product',
      method: 'GET',
      url: '/api/stock/sku-nope',
      status: 404,
      code: 'UNKNOWN_PRODUCT',
    },
    {
      name: 'commit of an order with no reservations',
      url: '/api/reservations/o-none/commit',
      status: 404,
      code: 'RESERVATION_NOT_FOUND',
      message: /o-none/,
    },
    {
      name: 'malformed order ID in the path',
      url: '/api/reservations/bad%20id/commit',
      status: 400,
      code: 'INVALID_REQUEST',
      message: /params\/orderId/,
    },
    { name: 'unknown route', method: 'GET', url: '/api/nothing', status: 404, code: 'NOT_FOUND' },
  ];

  test('positive control: the well-formed request is accepted', async (t) => {
    const h = await harness(t);
    const res = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(1, 'o-bad') });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json<Reservation>().status, 'reserved');
  });

  for (const c of cases) {
    test(`${c.name} → ${c.status} ${c.code}`, async (t) => {
      const h = await harness(t);
      await h.stock.reserve('sku-b', reserveOf(2, 'o-other'));
      const before = await h.stock.listProducts();
      const res = await h.call(c.method ?? 'POST', c.url, { body: c.body, headers: c.headers });
      assert.equal(res.statusCode, c.status, res.body);
      const body = res.json<{ code: string; message: string }>();
      assert.equal(body.code, c.code);
      assert.equal(typeof body.message, 'string');
      if (c.message) assert.match(body.message, c.message);
      assert.deepEqual(await h.stock.listProducts(), before, 'the store is unchanged');
      assert.deepEqual(await h.stock.reservationsOf('o-bad'), []);
    });
  }

  test('insufficient stock → 409 INSUFFICIENT_STOCK saying how many are available; nothing reserved', async (t) => {
    const h = await harness(t);
    await h.stock.reserve('sku-b', reserveOf(2, 'o-1'));
    const res = await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(4, 'o-2') });
    assert.equal(res.statusCode, 409);
    assert.deepEqual(res.json(), { code: 'INSUFFICIENT_STOCK', message: 'only 3 of sku-b available, 4 requested' });
    assert.deepEqual(await h.stockOf('sku-b'), { product_id: 'sku-b', available: 3, reserved: 2 });
    assert.deepEqual(await h.stock.reservationsOf('o-2'), []);
    // Positive control: exactly what is available can be reserved.
    assert.equal((await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(3, 'o-2') })).statusCode, 201);
    assert.deepEqual(await h.stockOf('sku-b'), { product_id: 'sku-b', available: 0, reserved: 5 });
  });
});

describe('reservations are idempotent by order_id', () => {
  test('reserve: 201 first, 200 with the same reservation on replay; another quantity → 409 RESERVATION_CONFLICT', async (t) => {
    const h = await harness(t, { ttlSeconds: 120 });
    const first = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(2, 'o-1') });
    assert.equal(first.statusCode, 201);
    const r = first.json<Reservation>();
    assert.match(r.reservation_id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...r, reservation_id: '' },
      {
        reservation_id: '',
        order_id: 'o-1',
        product_id: 'sku-a',
        quantity: 2,
        status: 'reserved',
        expires_at: new Date(h.clock.ms + 120_000).toISOString(),
      },
    );
    const replay = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(2, 'o-1') });
    assert.equal(replay.statusCode, 200);
    assert.deepEqual(replay.json(), r);
    assert.deepEqual(
      await h.stockOf('sku-a'),
      { product_id: 'sku-a', available: 8, reserved: 2 },
      'held once, not twice',
    );

    const conflict = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(3, 'o-1') });
    assert.equal(conflict.statusCode, 409);
    assert.equal(conflict.json<{ code: string }>().code, 'RESERVATION_CONFLICT');
    assert.match(conflict.json<{ message: string }>().message, /already reserved 2 of sku-a/);
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 8, reserved: 2 });
  });

  test('an order reserves several products; release gives all back and is idempotent; then commit → 409, reserve → 409', async (t) => {
    const h = await harness(t);
    assert.equal((await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(2, 'o-1') })).statusCode, 201);
    assert.equal((await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(5, 'o-1') })).statusCode, 201);
    assert.equal((await h.stockOf('sku-b')).available, 0);

    for (let i = 0; i < 2; i++) {
      const res = await h.call('POST', '/api/reservations/o-1/release');
      assert.equal(res.statusCode, 200, `release #${i + 1}`);
      const body = res.json<OrderReservations>();
      assert.equal(body.status, 'released');
      assert.deepEqual(
        body.reservations.map((r) => [r.product_id, r.quantity, r.status]),
        [
          ['sku-a', 2, 'released'],
          ['sku-b', 5, 'released'],
        ],
      );
    }
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 10, reserved: 0 });
    assert.deepEqual(await h.stockOf('sku-b'), { product_id: 'sku-b', available: 5, reserved: 0 });

    const commit = await h.call('POST', '/api/reservations/o-1/commit');
    assert.equal(commit.statusCode, 409);
    assert.equal(commit.json<{ code: string }>().code, 'RESERVATION_CONFLICT');
    const again = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(2, 'o-1') });
    assert.equal(again.statusCode, 409, 'a released reservation is not revived by a late replay');
    assert.equal(again.json<{ code: string }>().code, 'RESERVATION_CONFLICT');
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 10, reserved: 0 });
  });

  test('a failed reserve is compensated by release: 200 even when the order reserved nothing', async (t) => {
    const h = await harness(t);
    // The order saga: the first item reserves, the second is out of stock, then it releases the order.
    assert.equal((await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(1, 'o-1') })).statusCode, 201);
    assert.equal((await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(9, 'o-1') })).statusCode, 409);
    const partial = await h.call('POST', '/api/reservations/o-1/release');
    assert.equal(partial.statusCode, 200);
    assert.deepEqual(
      partial.json<OrderReservations>().reservations.map((r) => [r.product_id, r.status]),
      [['sku-a', 'released']],
    );
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 10, reserved: 0 });

    // The first item already failed: nothing was ever reserved under o-2.
    assert.equal((await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(9, 'o-2') })).statusCode, 409);
    const none = await h.call('POST', '/api/reservations/o-2/release', { body: {} }); // the order service sends {}
    assert.equal(none.statusCode, 200);
    assert.deepEqual(none.json(), { order_id: 'o-2', status: 'released', reservations: [] });
  });

  test('commit takes the stock for good and is idempotent; then release → 409', async (t) => {
    const h = await harness(t);
    await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(3, 'o-1') });
    await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(1, 'o-1') });
    for (let i = 0; i < 2; i++) {
      const res = await h.call('POST', '/api/reservations/o-1/commit');
      assert.equal(res.statusCode, 200, `commit #${i + 1}`);
      assert.deepEqual(
        res.json<OrderReservations>().reservations.map((r) => [r.product_id, r.status]),
        [
          ['sku-a', 'committed'],
          ['sku-b', 'committed'],
        ],
      );
    }
    assert.deepEqual(
      await h.stockOf('sku-a'),
      { product_id: 'sku-a', available: 7, reserved: 0 },
      'on hand went down by 3, once',
    );
    assert.deepEqual(await h.stockOf('sku-b'), { product_id: 'sku-b', available: 4, reserved: 0 });

    const release = await h.call('POST', '/api/reservations/o-1/release');
    assert.equal(release.statusCode, 409);
    assert.equal(release.json<{ code: string }>().code, 'RESERVATION_CONFLICT');
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 7, reserved: 0 });
  });
});

describe('expiry', () => {
  test('an unexpired reservation still commits (positive control)', async (t) => {
    const h = await harness(t, { ttlSeconds: 60 });
    await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(3, 'o-1') });
    h.clock.advance(59);
    assert.equal((await h.call('POST', '/api/reservations/o-1/commit')).statusCode, 200);
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 7, reserved: 0 });
  });

  test('past its TTL a reservation stops counting, cannot be committed, is swept to "expired", and release is a no-op', async (t) => {
    const h = await harness(t, { ttlSeconds: 60 });
    await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(3, 'o-1') });
    assert.deepEqual(await h.stockOf('sku-a'), { product_id: 'sku-a', available: 7, reserved: 3 });
    h.clock.advance(60);
    assert.deepEqual(
      await h.stockOf('sku-a'),
      { product_id: 'sku-a', available: 10, reserved: 0 },
      'expired before any sweep',
    );

    const commit = await h.call('POST', '/api/reservations/o-1/commit');
    assert.equal(commit.statusCode, 409);
    assert.equal(commit.json<{ code: string }>().code, 'RESERVATION_EXPIRED');
    assert.deepEqual(
      await h.stockOf('sku-a'),
      { product_id: 'sku-a', available: 10, reserved: 0 },
      'nothing committed',
    );

    const replay = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(3, 'o-1') });
    assert.equal(replay.statusCode, 409);
    assert.equal(replay.json<{ code: string }>().code, 'RESERVATION_EXPIRED');

    assert.equal(await h.stock.sweepExpired(), 1);
    assert.equal(await h.stock.sweepExpired(), 0);
    assert.deepEqual(
      (await h.stock.reservationsOf('o-1')).map((r) => r.status),
      ['expired'],
    );

    const release = await h.call('POST', '/api/reservations/o-1/release');
    assert.equal(release.statusCode, 200);
    assert.deepEqual(
      release.json<OrderReservations>().reservations.map((r) => r.status),
      ['expired'],
    );

    const other = await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(10, 'o-2') });
    assert.equal(other.statusCode, 201, 'the expired stock is available to other orders');
  });
});

describe('restart', () => {
  test('a reopened store keeps products, stock and reservations, and is not re-seeded', async (t) => {
    const h = await harness(t);
    await h.call('POST', '/api/stock/sku-a/reserve', { body: reserveOf(2, 'o-held') });
    await h.call('POST', '/api/stock/sku-b/reserve', { body: reserveOf(4, 'o-sold') });
    await h.call('POST', '/api/reservations/o-sold/commit');
    const products = await h.stock.listProducts();
    const held = await h.stock.reservationsOf('o-held');
    await h.app.close();

    const store = await h.reopen([{ product_id: 'sku-new', name: 'New', price_cents: 1, currency: 'EUR', on_hand: 1 }]);
    assert.deepEqual(await store.listProducts(), products);
    assert.deepEqual(await store.reservationsOf('o-held'), held);
    assert.deepEqual(await store.getStock('sku-b'), { product_id: 'sku-b', available: 1, reserved: 0 });
    assert.deepEqual(
      await store.reserve('sku-a', reserveOf(2, 'o-held')),
      { reservation: held[0], created: false },
      'a replay after restart finds the reservation',
    );
  });
});
