// Issue 17 on payment's mTLS port, against a real listening server: 300
// requests without a certificate to unknown URLs grew /metrics from 19 KB to
// 1.26 MB (the URL was a label), and parser-level errors did not answer the
// documented `{ code, message }`.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Agent, request as undiciRequest } from 'undici';
import { MemorySource, createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth-testing';
import { createServiceMetrics, type ServiceMetrics } from '@shop/service-kit';
import { testDatabaseConfig } from '@shop/service-kit/testing';
import { jsonOf, rawHttp, request } from '@shop/service-kit/testing';
import { buildApp } from '../src/app.ts';
import { PaymentService } from '../src/payments.ts';
import { CardProcessor } from '../src/processor.ts';
import { PaymentStore } from '../src/store.ts';

const ORDER = 'spiffe://example.org/order';

describe('regression: issue 17 — payment’s mTLS port: bounded metric labels, { code, message } for parser-level errors', () => {
  let td: TestTrustDomain;
  let source: MemorySource;
  let store: PaymentStore;
  let app: FastifyInstance;
  let metrics: ServiceMetrics;
  let port: number;
  let orderCert: { cert: string; key: string };
  let cleanup: () => Promise<void>;

  before(async () => {
    td = await createTestTrustDomain('example.org');
    source = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    const tmp = await makeTempDir('payment-issue17-');
    cleanup = tmp.cleanup;
    store = await PaymentStore.open(await testDatabaseConfig(tmp.dir, 'payment.db'));
    metrics = createServiceMetrics('payment');
    app = await buildApp({
      config: { orderId: ORDER },
      source,
      payments: new PaymentService(store, new CardProcessor()),
      metrics,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    const issued = await td.issue('/order');
    orderCert = { cert: issued.certPem, key: issued.keyPem };
  });
  after(async () => {
    await app.close();
    await store.close();
    await source.close();
    await cleanup();
  });

  test('300 requests without a certificate to random URLs with query strings: /metrics stays small', async () => {
    const none = new Agent({ connect: { rejectUnauthorized: false } });
    const lines = async (): Promise<number> =>
      (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('shop_authz_denials_total{')).length;
    try {
      // Positive control: a known route's denial is labelled with its pattern.
      const known = await undiciRequest(`https://127.0.0.1:${port}/api/payments/p-1?x=1`, { dispatcher: none });
      assert.equal(known.statusCode, 401);
      await known.body.dump();
      assert.match(await metrics.registry.metrics(), /shop_authz_denials_total\{[^}]*route="\/api\/payments\/:id"/);

      const before = { lines: await lines(), size: (await metrics.registry.metrics()).length };
      for (let i = 0; i < 300; i++) {
        const res = await undiciRequest(`https://127.0.0.1:${port}/admin-${i}.php?id=${i}&pad=${'p'.repeat(200)}`, {
          dispatcher: none,
        });
        assert.equal(res.statusCode, 401);
        await res.body.dump();
      }
      const text = await metrics.registry.metrics();
      assert.ok((await lines()) <= before.lines + 1, 'at most one new denial series ("unmatched")');
      assert.ok(!text.includes('admin-'), 'no URL in any label');
      assert.ok(text.length - before.size < 4096, `/metrics grew by ${text.length - before.size} bytes`);
    } finally {
      await none.close();
    }
  });

  test('strictness comes before the caller check: without a certificate, two Hosts → 400 DUPLICATE_HOST, one → 401', async () => {
    const two = await rawHttp({ port, tls: {} }, request('GET', '/api/payments/p-1', ['Host: a', 'Host: b']));
    assert.equal(two.status, 400);
    assert.equal(jsonOf(two).code, 'DUPLICATE_HOST');
    assert.ok(two.closed);
    const one = await rawHttp({ port, tls: {} }, request('GET', '/api/payments/p-1', ['Host: a']));
    assert.equal(one.status, 401, 'positive control: a well-formed request reaches the caller check');
    assert.equal(jsonOf(one).code, 'AUTH_ERR_PEER_NO_CERTIFICATE');
  });

  test('as the order service: each malformed request → its code; the well-formed one is served', async () => {
    const tls = { port, tls: orderCert };
    const served = await rawHttp(tls, request('GET', '/api/payments/p-1', ['Host: a']));
    assert.equal(served.status, 404, 'positive control: authorized, and no such payment');
    assert.equal(jsonOf(served).code, 'PAYMENT_NOT_FOUND');
    const cases: [string, string][] = [
      ['GARBAGE\r\n\r\n', 'BAD_REQUEST'],
      [request('GET', '/api/payments/p-1', []), 'MISSING_HOST'],
      [request('GET', '/api/payments/p-1', ['Host: a', 'host: a']), 'DUPLICATE_HOST'],
      ['GET /api/payments/p-1\r\n\r\n', 'HTTP_VERSION_REQUIRED'],
      [request('GET', '/api/payments/p-1', ['Host: a'], 'HTTP/2.0'), 'HTTP_VERSION_NOT_SUPPORTED'],
      [request('GET', '/api/payments/p-1', ['Host: a', `X-Big: ${'x'.repeat(20_000)}`]), 'HEADERS_TOO_LARGE'],
      [request('GET', '/api/payments/%zz', ['Host: a', 'Connection: close']), 'BAD_URL'],
    ];
    for (const [data, code] of cases) {
      const res = await rawHttp(tls, data);
      const body = jsonOf(res);
      assert.deepEqual(Object.keys(body).sort(), ['code', 'message'], res.body);
      assert.equal(body.code, code);
      assert.ok(res.closed, `${code}: the connection is closed`);
    }
  });
});
