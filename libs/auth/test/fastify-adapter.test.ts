import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { authorizeMemberOf } from '../src/authorize/authorizer.ts';
import { spiffeAuth, type HttpDecision } from '../src/adapters/fastify.ts';
import type { PeerResult } from '../src/tls/connection-verifier.ts';
import {
  createHeaderPeerResolver,
  MemorySource,
  createTestTrustDomain,
  type TestTrustDomain,
} from '@shop/auth-testing';

describe('fastify plugin: decisions, audit log and request.peer', () => {
  let td: TestTrustDomain;
  let resolvePeer: (req: { headers: Record<string, unknown> }) => PeerResult;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    resolvePeer = await createHeaderPeerResolver(td, ['/order', '/payment']);
  });

  async function build() {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const decisions: HttpDecision[] = [];
    const source = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    const app = Fastify({ logger: { level: 'info', stream } });
    await app.register(spiffeAuth, {
      source,
      allow: authorizeMemberOf('example.org'),
      resolvePeer,
      onDecision: (d) => decisions.push(d),
    });
    app.post('/api/charge', { config: { spiffe: { allow: ['spiffe://example.org/order'] } } }, (req) => {
      req.log.info('charging');
      return {
        caller: req.peer?.id.toString(),
        td: req.peer?.trustDomain.name,
        hasCert: req.peer?.certificate !== undefined,
      };
    });
    app.get('/api/stock', (req) => ({ caller: req.peer?.id.toString() }));
    return { app, lines, decisions };
  }

  test('allowed caller: handler sees request.peer; one audit line; caller on every log line', async () => {
    const { app, lines, decisions } = await build();
    const res = await app.inject({
      method: 'POST',
      url: '/api/charge',
      headers: { 'x-test-peer': 'spiffe://example.org/order' },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { caller: 'spiffe://example.org/order', td: 'example.org', hasCert: true });
    const audit = lines.filter((l) => l.msg === 'authz allow');
    assert.equal(audit.length, 1);
    assert.deepEqual((audit[0]!.authz as HttpDecision).caller, 'spiffe://example.org/order');
    assert.equal((audit[0]!.authz as HttpDecision).rule, 'ID is one of [spiffe://example.org/order]');
    assert.equal(lines.find((l) => l.msg === 'charging')?.caller, 'spiffe://example.org/order');
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.status, d.route]),
      [['allow', 200, '/api/charge']],
    );
    await app.close();
  });

  test('other identity → 403 and no handler; no identity → 401; both audited', async () => {
    const { app, lines, decisions } = await build();
    const forbidden = await app.inject({
      method: 'POST',
      url: '/api/charge',
      headers: { 'x-test-peer': 'spiffe://example.org/payment' },
    });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json<{ caller: string }>().caller, 'spiffe://example.org/payment');
    const anonymous = await app.inject({ method: 'POST', url: '/api/charge' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(anonymous.json<{ code: string }>().code, 'AUTH_ERR_PEER_NO_CERTIFICATE');
    assert.equal(lines.filter((l) => l.msg === 'charging').length, 0, 'the handler never ran');
    assert.deepEqual(
      decisions.map((d) => [d.decision, d.status]),
      [
        ['deny', 403],
        ['deny', 401],
      ],
    );
    assert.equal(lines.filter((l) => l.msg === 'authz deny').length, 2);
    await app.close();
  });

  test('the plugin-wide default rule applies to routes without their own', async () => {
    const { app } = await build();
    const ok = await app.inject({
      method: 'GET',
      url: '/api/stock',
      headers: { 'x-test-peer': 'spiffe://example.org/payment' },
    });
    assert.equal(ok.statusCode, 200);
    const unknownPeer = await app.inject({
      method: 'GET',
      url: '/api/stock',
      headers: { 'x-test-peer': 'spiffe://example.org/ghost' },
    });
    assert.equal(unknownPeer.statusCode, 401);
    assert.equal(unknownPeer.json<{ code: string }>().code, 'AUTH_ERR_PEER_UNVERIFIED');
    await app.close();
  });

  test('without resolvePeer, a plain-HTTP request has no client identity → 401 (positive control above)', async () => {
    const source = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    const app = Fastify();
    await app.register(spiffeAuth, { source });
    app.get('/x', () => 'never');
    const res = await app.inject({
      method: 'GET',
      url: '/x',
      headers: { 'x-test-peer': 'spiffe://example.org/order' },
    });
    assert.equal(res.statusCode, 401);
    assert.match(res.json<{ message: string }>().message, /did not arrive over TLS/);
    await app.close();
  });
});
