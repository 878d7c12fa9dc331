// Issue 17 on inventory's mTLS HTTP port, against a real listening server:
// denials of unknown URLs must not add metric series, and parser-level
// errors answer `{ code, message }`.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Agent, request as undiciRequest } from 'undici';
import { MemorySource, createTestTrustDomain } from '@shop/auth-testing';
import { createServiceMetrics } from '@shop/service-kit';
import { jsonOf, rawHttp, request } from '@shop/service-kit/testing';
import { buildApp } from '../src/app.ts';
import { ORDER, openTestStore } from './support/fixture.ts';

test('regression: issue 17 — inventory’s mTLS port: bounded denial labels, { code, message } for parser-level errors', async (t) => {
  const fx = await openTestStore(t);
  const td = await createTestTrustDomain('example.org');
  const source = MemorySource.create(await td.svid('/inventory'), [td.bundle]);
  const metrics = createServiceMetrics('inventory');
  const app = await buildApp({ stock: fx.stock, source, metrics, orderId: ORDER });
  const none = new Agent({ connect: { rejectUnauthorized: false } });
  t.after(async () => {
    await none.close();
    await app.close();
    await source.close();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const issued = await td.issue('/order');
  const asOrder = { port, tls: { cert: issued.certPem, key: issued.keyPem } };

  // Positive controls: the order service is served; a known route's denial is labelled with its pattern.
  const served = await rawHttp(asOrder, request('GET', '/api/stock/sku-a', ['Host: inventory']));
  assert.equal(served.status, 200, served.body);
  assert.equal(jsonOf(served).product_id, 'sku-a');
  const known = await undiciRequest(`https://127.0.0.1:${port}/api/stock/sku-a?x=1`, { dispatcher: none });
  assert.equal(known.statusCode, 401);
  await known.body.dump();
  const series = async (): Promise<string[]> =>
    (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('shop_authz_denials_total{'));
  assert.ok((await series()).some((l) => l.includes('route="/api/stock/:productId"')));

  const before = await series();
  for (let i = 0; i < 300; i++) {
    const res = await undiciRequest(`https://127.0.0.1:${port}/scan/${i}?q=${i}`, { dispatcher: none });
    assert.equal(res.statusCode, 401);
    await res.body.dump();
  }
  const after = await series();
  assert.ok(after.length <= before.length + 1, after.join('\n'));
  assert.ok(!after.some((l) => l.includes('/scan/')), 'no URL in any label');

  const cases: [string, string][] = [
    ['GARBAGE\r\n\r\n', 'BAD_REQUEST'],
    [request('GET', '/api/stock/sku-a', []), 'MISSING_HOST'],
    [request('GET', '/api/stock/sku-a', ['Host: a', 'Host: b']), 'DUPLICATE_HOST'],
    ['GET /api/stock/sku-a\r\n\r\n', 'HTTP_VERSION_REQUIRED'],
    [request('GET', '/api/stock/sku-a', ['Host: a', `X-Big: ${'x'.repeat(20_000)}`]), 'HEADERS_TOO_LARGE'],
  ];
  for (const [data, code] of cases) {
    const res = await rawHttp(asOrder, data);
    const body = jsonOf(res);
    assert.deepEqual(Object.keys(body).sort(), ['code', 'message'], res.body);
    assert.equal(body.code, code);
    assert.ok(res.closed, `${code}: the connection is closed`);
  }
  const noCert = await rawHttp({ port, tls: {} }, request('GET', '/api/stock/sku-a', ['Host: a', 'Host: b']));
  assert.equal(jsonOf(noCert).code, 'DUPLICATE_HOST', 'refused as malformed before the caller check');
});
