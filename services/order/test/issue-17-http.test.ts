// Issue 17, the order API's part: coerced types were accepted and charged,
// an Idempotency-Key reused with another body or customer returned the first
// customer's order, and parser-level errors did not answer the documented
// `{ code, message }`.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { testDatabaseUrl, testEngine } from '@shop/pg-testing';
import { testDatabaseConfig } from '@shop/service-kit/testing';
import { afterEach, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { makeTempDir } from '@shop/auth-testing';
import { createServiceMetrics, HTTP_PROTOCOL_ERRORS } from '@shop/service-kit';
import { jsonOf, rawHttp, readErrorTable, request } from '@shop/service-kit/testing';
import { buildApp } from '../src/app.ts';
import { OrderService } from '../src/orders.ts';
import { OrderStore, type Order } from '../src/store.ts';
import { Upstreams } from '../src/upstreams.ts';
import { FakeInventory, FakePayment } from './fakes.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface World {
  app: FastifyInstance;
  payment: FakePayment;
  store: OrderStore;
  dir: string;
  close: () => Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** world builds the order API on fakes; `dir` reuses a data directory (a restart). Closed after each test. */
async function world(dir?: string): Promise<World> {
  const tmp = dir ? undefined : await makeTempDir('order-issue17-');
  if (tmp) cleanups.push(tmp.cleanup);
  const inventory = new FakeInventory([
    { id: 'sku-1', price: 700, stock: 50 },
    { id: 'sku-2', price: 500, stock: 50 },
  ]);
  const payment = new FakePayment();
  const metrics = createServiceMetrics('order');
  const upstreams = new Upstreams(inventory, payment, { timeoutMs: 200, resetTimeoutMs: 500, metrics, log: quiet });
  const dataDir = dir ?? (tmp as { dir: string }).dir;
  const store = await OrderStore.open(await testDatabaseConfig(dataDir, 'order.db'));
  const app = await buildApp({ orders: new OrderService(store, upstreams, quiet, metrics), metrics });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await app.close();
    await upstreams.close();
    await store.close();
  };
  cleanups.push(close);
  return { app, payment, store, dir: dataDir, close };
}

async function place(app: FastifyInstance, body: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method: 'POST',
    url: '/orders',
    payload: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });
  return { status: res.statusCode, body: res.json<Order & { code?: string; message?: string }>(), raw: res.body };
}

const anOrder = {
  customer_id: 'c-1',
  currency: 'EUR',
  items: [{ product_id: 'sku-1', quantity: 2 }],
  expected_total_cents: 1400,
};

describe('regression: issue 17 — the order API does not coerce types', () => {
  test('positive control: the proper types → 201 confirmed, charged once', async () => {
    const w = await world();
    const res = await place(w.app, anOrder);
    assert.equal(res.status, 201, res.raw);
    assert.equal(res.body.status, 'confirmed');
    assert.equal(res.body.total_cents, 1400);
    assert.equal(w.payment.charges.size, 1);
  });

  const line = (quantity: unknown) => ({ ...anOrder, items: [{ product_id: 'sku-1', quantity }] });
  const cases: [string, unknown][] = [
    ['quantity "2"', line('2')],
    ['quantity true', line(true)],
    ['quantity [1]', line([1])],
    ['quantity 2.0e0 as a string', line('2.0e0')],
    ['customer_id 123', { ...anOrder, customer_id: 123 }],
    ['customer_id true', { ...anOrder, customer_id: true }],
    ['currency ["EUR"]', { ...anOrder, currency: ['EUR'] }],
    ['expected_total_cents "1400"', { ...anOrder, expected_total_cents: '1400' }],
    ['expected_total_cents [1400]', { ...anOrder, expected_total_cents: [1400] }],
    ['product_id 1', { ...anOrder, items: [{ product_id: 1, quantity: 2 }] }],
    ['items as one object, not a list', { ...anOrder, items: { product_id: 'sku-1', quantity: 2 } }],
    ['an unknown field on a line', { ...anOrder, items: [{ product_id: 'sku-1', quantity: 2, note: 'x' }] }],
  ];
  for (const [name, body] of cases) {
    test(`${name} → 400 INVALID_REQUEST, nothing stored or charged`, async () => {
      const w = await world();
      const res = await place(w.app, body);
      assert.equal(res.status, 400, res.raw);
      assert.equal(res.body.code, 'INVALID_REQUEST');
      assert.match(res.body.message ?? '', /body/, 'the message names the field');
      assert.deepEqual(await w.store.counts(), { pending: 0, confirmed: 0, failed: 0 });
      assert.equal(w.payment.attempts, 0);
    });
  }
});

describe('regression: issue 17 — an Idempotency-Key reused for another request → 422 IDEMPOTENCY_KEY_REUSED', () => {
  const key = { 'idempotency-key': 'cart-17' };

  test('positive control: the same key with the same body → 200 with the same order, however the JSON is laid out', async () => {
    const w = await world();
    const first = await place(
      w.app,
      { ...anOrder, items: [...anOrder.items, { product_id: 'sku-2', quantity: 1 }], expected_total_cents: 1900 },
      key,
    );
    assert.equal(first.status, 201, first.raw);
    const again = await place(
      w.app,
      {
        expected_total_cents: 1900,
        items: [
          { quantity: 1, product_id: 'sku-2' },
          { product_id: 'sku-1', quantity: 2 },
        ],
        currency: 'EUR',
        customer_id: 'c-1',
      },
      key,
    );
    assert.equal(again.status, 200, again.raw);
    assert.equal(again.body.order_id, first.body.order_id);
    assert.equal(w.payment.charges.size, 1, 'charged once');
  });

  const others: [string, object][] = [
    ['another customer', { ...anOrder, customer_id: 'c-2' }],
    ['another quantity', { ...anOrder, items: [{ product_id: 'sku-1', quantity: 3 }], expected_total_cents: 2100 }],
    ['another product', { ...anOrder, items: [{ product_id: 'sku-2', quantity: 2 }], expected_total_cents: 1000 }],
    [
      'an extra line',
      { ...anOrder, items: [...anOrder.items, { product_id: 'sku-2', quantity: 1 }], expected_total_cents: 1900 },
    ],
    ['no expected total where the first had one', { customer_id: 'c-1', currency: 'EUR', items: anOrder.items }],
  ];
  for (const [name, body] of others) {
    test(`${name} → 422, and neither the first order nor its customer is disclosed`, async () => {
      const w = await world();
      const first = await place(w.app, anOrder, key);
      assert.equal(first.status, 201, first.raw);
      const reused = await place(w.app, body, key);
      assert.equal(reused.status, 422, reused.raw);
      assert.equal(reused.body.code, 'IDEMPOTENCY_KEY_REUSED');
      assert.match(reused.body.message ?? '', /new key/);
      assert.ok(!reused.raw.includes(first.body.order_id), 'no order ID in the answer');
      assert.ok(!reused.raw.includes('c-1'), 'no customer in the answer');
      assert.deepEqual(await w.store.counts(), { pending: 0, confirmed: 1, failed: 0 }, 'nothing new stored');
      assert.equal(w.payment.charges.size, 1, 'nothing new charged');
      const replay = await place(w.app, anOrder, key);
      assert.equal(replay.status, 200, 'the key still replays its own request');
      assert.equal(replay.body.order_id, first.body.order_id);
    });
  }

  test('an order keyed before the fingerprint migration: its own request replays, another customer → 422', async () => {
    const before = await world();
    const first = await place(before.app, anOrder, key);
    assert.equal(first.status, 201, first.raw);
    await before.close();
    // Turn the database back into the schema before fingerprints, as an older release left it.
    const undo =
      'ALTER TABLE orders DROP COLUMN request_fingerprint; ALTER TABLE orders DROP COLUMN lease_owner; ALTER TABLE orders DROP COLUMN lease_until;';
    if (testEngine() === 'sqlite') {
      const db = new DatabaseSync(join(before.dir, 'order.db'));
      db.exec(`${undo} PRAGMA user_version = 1`);
      db.close();
    } else {
      const db = new pg.Client({ connectionString: await testDatabaseUrl(join(before.dir, 'order.db')) });
      await db.connect();
      await db.query(`${undo} DELETE FROM schema_migrations WHERE version > 1`);
      await db.end();
    }

    const after = await world(before.dir);
    const replay = await place(after.app, { ...anOrder, items: [{ quantity: 2, product_id: 'sku-1' }] }, key);
    assert.equal(replay.status, 200, replay.raw);
    assert.equal(replay.body.order_id, first.body.order_id);
    const other = await place(after.app, { ...anOrder, customer_id: 'c-2' }, key);
    assert.equal(other.status, 422, other.raw);
    assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED');
    const fresh = await place(after.app, anOrder, { 'idempotency-key': 'cart-18' });
    assert.equal(fresh.status, 201, 'a new key still places a new order after the migration');
  });
});

const README = new URL('../README.md', import.meta.url);

describe('regression: issue 17 — parser-level errors on the public API answer { code, message }, as the README says', () => {
  const host = ['Host: shop.test'];
  const json = (body: string): string[] => [
    ...host,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  const body = JSON.stringify(anOrder);
  const cases: [name: string, data: string, code: string][] = [
    ['garbage request line', 'GARBAGE\r\n\r\n', 'BAD_REQUEST'],
    [
      'headers over 16 KiB',
      request('GET', '/products', [...host, `X-Big: ${'x'.repeat(20_000)}`]),
      'HEADERS_TOO_LARGE',
    ],
    ['HTTP/1.1 without Host', request('GET', '/orders/x', []), 'MISSING_HOST'],
    ['two Host headers', request('GET', '/orders/x', [...host, 'Host: evil.test']), 'DUPLICATE_HOST'],
    ['no HTTP version', 'GET /orders/x\r\n\r\n', 'HTTP_VERSION_REQUIRED'],
    ['HTTP/2.0 request line', request('GET', '/orders/x', host, 'HTTP/2.0'), 'HTTP_VERSION_NOT_SUPPORTED'],
    ['a path that does not decode', request('GET', '/orders/%zz', [...host, 'Connection: close']), 'BAD_URL'],
    [
      'a too long order ID',
      request('GET', `/orders/${'x'.repeat(101)}`, [...host, 'Connection: close']),
      'PATH_PARAMETER_TOO_LONG',
    ],
    [
      'a conflicting Content-Length and Transfer-Encoding',
      request('POST', '/orders', [...json(body), 'Transfer-Encoding: chunked']) + body,
      'BAD_REQUEST',
    ],
    [
      'a body that is not JSON',
      request('POST', '/orders', json('{"customer_id":')) + '{"customer_id":',
      'FST_ERR_CTP_INVALID_JSON_BODY',
    ],
    [
      'a content type without a parser',
      request('POST', '/orders', [...host, 'Content-Type: application/xml', 'Content-Length: 2', 'Connection: close']) +
        'hi',
      'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    ],
    ['no such route', request('GET', '/nope?x=1', [...host, 'Connection: close']), 'NOT_FOUND'],
  ];

  test('every answer is { code, message } with a status and code the README table lists (positive control: a good request is 201)', async () => {
    const w = await world();
    await w.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (w.app.server.address() as AddressInfo).port;
    const table = await readErrorTable(README);
    const rows = new Set([...table].map(([code, row]) => `${row.http} ${code}`));
    assert.ok(rows.has('400 INVALID_REQUEST'), 'the table parser finds rows');

    const good = await rawHttp({ port }, request('POST', '/orders', json(body)) + body);
    assert.equal(good.status, 201, good.body);

    for (const [name, data, code] of cases) {
      const res = await rawHttp({ port }, data);
      const answer = jsonOf(res);
      assert.deepEqual(Object.keys(answer).sort(), ['code', 'message'], `${name}: ${res.body}`);
      assert.equal(answer.code, code, name);
      assert.ok(
        rows.has(`${res.status} ${answer.code}`),
        `${name}: ${res.status} ${answer.code} is not in the README's error table`,
      );
    }
    assert.deepEqual(
      await w.store.counts(),
      { pending: 0, confirmed: 1, failed: 0 },
      'only the good request was stored',
    );
  });

  test('the README lists every protocol-level code of service-kit with its status, and IDEMPOTENCY_KEY_REUSED', async () => {
    const table = await readErrorTable(README);
    for (const [code, status] of Object.entries({ ...HTTP_PROTOCOL_ERRORS, IDEMPOTENCY_KEY_REUSED: 422 })) {
      assert.equal(table.get(code)?.http, String(status), `${code} (${status})`);
    }
  });
});
