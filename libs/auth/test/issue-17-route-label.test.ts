// Issue 17: a denied request to an unknown route reported its raw URL as the
// decision's `route`, which services use as a metric label; the caller picks
// the URL, so every request could add a series.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { spiffeAuth, type HttpDecision } from '../src/adapters/fastify.ts';
import { createHeaderPeerResolver, MemorySource, createTestTrustDomain } from '@shop/auth-testing';

test('regression: issue 17 — a decision names the route pattern or "unmatched", and the URL as sent apart', async () => {
  const td = await createTestTrustDomain('example.org');
  const source = MemorySource.create(await td.svid('/payment'), [td.bundle]);
  const decisions: HttpDecision[] = [];
  const app = Fastify({ logger: false });
  await app.register(spiffeAuth, {
    source,
    allow: ['spiffe://example.org/order'],
    resolvePeer: await createHeaderPeerResolver(td, ['/order', '/payment']),
    onDecision: (d) => decisions.push(d),
  });
  app.get('/api/payments/:id', () => ({ ok: true }));
  try {
    const order = { 'x-test-peer': 'spiffe://example.org/order' };
    assert.equal((await app.inject({ url: '/api/payments/p-1?order_id=o-1', headers: order })).statusCode, 200);
    assert.equal((await app.inject({ url: '/api/payments/p-2?x=1' })).statusCode, 401);
    assert.equal((await app.inject({ url: `/random-${'z'.repeat(300)}?secret=1` })).statusCode, 401);
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.route, d.url]),
      [
        ['allow', '/api/payments/:id', '/api/payments/p-1?order_id=o-1'],
        ['deny', '/api/payments/:id', '/api/payments/p-2?x=1'],
        ['deny', 'unmatched', `/random-${'z'.repeat(300)}?secret=1`.slice(0, 256)],
      ],
    );
  } finally {
    await app.close();
    await source.close();
  }
});
