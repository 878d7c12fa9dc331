// Issue 17: on an mTLS port, a denied request to an unknown route recorded
// its raw URL, query string included, as the `route` label of
// shop_authz_denials_total: 300 requests without a certificate grew /metrics
// from 19 KB to 1.26 MB. Labels must come from route patterns (or a fixed
// "unmatched"), never from what the caller sends.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { fastifyMtlsOptions, spiffeAuth } from '@shop/auth/fastify';
import { MemorySource, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';
import { installHttpBasics, serviceFastifyOptions } from '../src/http-server.ts';
import { authHooks, createServiceMetrics, type ServiceMetrics } from '../src/metrics.ts';

const ORDER = 'spiffe://example.org/order';

describe('regression: issue 17 — metric labels on an mTLS port never carry the URL', () => {
  let td: TestTrustDomain;
  let source: MemorySource;
  let app: FastifyInstance;
  let metrics: ServiceMetrics;
  let url: string;
  const lines: Record<string, unknown>[] = [];
  const agents: Agent[] = [];

  const agent = (cert?: { certPem: string; keyPem: string }): Agent => {
    const a = new Agent({
      connect: { rejectUnauthorized: false, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) },
    });
    agents.push(a);
    return a;
  };
  const seriesOf = async (name: string): Promise<string[]> =>
    (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith(`${name}{`));

  before(async () => {
    td = await createTestTrustDomain('example.org');
    source = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    metrics = createServiceMetrics('payment');
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const options = { https: fastifyMtlsOptions(source), logger: { level: 'info', stream } };
    app = Fastify(serviceFastifyOptions(options));
    installHttpBasics(app, metrics);
    await app.register(spiffeAuth, { source, allow: [ORDER], ...authHooks(metrics) });
    app.post('/api/charge', () => ({ charged: true }));
    app.get('/api/payments/:id', (req) => ({ id: (req.params as { id: string }).id }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const a of agents) await a.close();
    await app.close();
    await source.close();
  });

  test('positive controls: denials on known routes are labelled with the route pattern, 401 and 403 alike', async () => {
    const none = agent();
    const anonymous = await request(`${url}/api/payments/p-1?order_id=o-1`, { dispatcher: none });
    assert.equal(anonymous.statusCode, 401);
    await anonymous.body.dump();
    const payment = agent(await td.issue('/payment'));
    const forbidden = await request(`${url}/api/charge?x=1`, { method: 'POST', dispatcher: payment });
    assert.equal(forbidden.statusCode, 403);
    await forbidden.body.dump();
    const allowed = await request(`${url}/api/charge`, { method: 'POST', dispatcher: agent(await td.issue('/order')) });
    assert.equal(allowed.statusCode, 200, 'the allowed caller still passes');
    await allowed.body.dump();

    const denials = await seriesOf('shop_authz_denials_total');
    assert.ok(
      denials.some((l) => l.includes('route="/api/payments/:id"') && l.includes('caller="none"')),
      denials.join('\n'),
    );
    assert.ok(
      denials.some((l) => l.includes('route="/api/charge"') && l.includes('caller="spiffe://example.org/payment"')),
      denials.join('\n'),
    );
  });

  test('300 requests without a certificate to random unknown URLs with query strings: the series stay bounded', async () => {
    const none = agent();
    const denialsBefore = await seriesOf('shop_authz_denials_total');
    const requestsBefore = await seriesOf('shop_requests_total');
    const sizeBefore = (await metrics.registry.metrics()).length;
    for (let i = 0; i < 300; i++) {
      const res = await request(`${url}/probe-${i}/${'a'.repeat(i % 50)}?token=${i}&q=${'x'.repeat(100)}`, {
        dispatcher: none,
      });
      assert.equal(res.statusCode, 401);
      await res.body.dump();
    }
    const denials = await seriesOf('shop_authz_denials_total');
    const requests = await seriesOf('shop_requests_total');
    assert.ok(denials.length <= denialsBefore.length + 1, `one new series at most:\n${denials.join('\n')}`);
    assert.ok(requests.length <= requestsBefore.length + 1, `one new series at most:\n${requests.join('\n')}`);
    const unmatched = denials.find((l) => l.includes('route="unmatched"'));
    assert.ok(unmatched?.endsWith(' 300'), `all 300 under route="unmatched": ${String(unmatched)}`);
    const text = await metrics.registry.metrics();
    assert.ok(!/probe-|token=/.test(text), 'no URL in any label');
    assert.ok(text.length - sizeBefore < 4096, `/metrics grew by ${text.length - sizeBefore} bytes`);
  });

  test('the audit line still names the URL as sent (cut at 256 characters), beside the pattern', async () => {
    const long = `/unknown-route?q=${'y'.repeat(400)}`;
    const res = await request(url + long, { dispatcher: agent() });
    assert.equal(res.statusCode, 401);
    await res.body.dump();
    const audit = lines
      .filter((l) => l.msg === 'authz deny')
      .map((l) => l.authz as { route: string; url: string })
      .find((a) => a.url.startsWith('/unknown-route?q='));
    assert.ok(audit, 'an audit line for the request');
    assert.equal(audit.route, 'unmatched');
    assert.equal(audit.url, long.slice(0, 256));
  });
});
