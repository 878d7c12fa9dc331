import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import type { IdentityView } from '../src/identity-view.ts';
import { createServiceMetrics } from '../src/metrics.ts';
import { startOpsServer } from '../src/ops-server.ts';

describe('ops server', () => {
  test('live always; ready only when every check passes, naming the failing one; metrics in Prometheus text', async () => {
    const metrics = createServiceMetrics('svc');
    let storeOpen = true;
    const app = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      checks: { identity: () => true, store: () => storeOpen },
    });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      assert.equal((await request(`${base}/health/live`)).statusCode, 200);
      const ready = await request(`${base}/health/ready`);
      assert.equal(ready.statusCode, 200);
      assert.deepEqual(await ready.body.json(), { status: 'ready', checks: { identity: true, store: true } });
      storeOpen = false;
      const notReady = await request(`${base}/health/ready`);
      assert.equal(notReady.statusCode, 503);
      assert.deepEqual(await notReady.body.json(), { status: 'not ready', checks: { identity: true, store: false } });
      metrics.handshakeFailures.inc({ code: 'AUTH_ERR_PEER_UNVERIFIED' });
      const text = await (await request(`${base}/metrics`)).body.text();
      assert.match(text, /shop_tls_handshake_failures_total\{code="AUTH_ERR_PEER_UNVERIFIED",service="svc"\} 1/);
    } finally {
      await app.close();
    }
  });
});

describe('identityCheck', () => {
  test('ready with a valid SVID (positive control), not ready once it has expired', async () => {
    const { createTestTrustDomain, MemorySource } = await import('@shop/auth-testing');
    const { identityCheck } = await import('../src/ops-server.ts');
    const td = await createTestTrustDomain('example.org');
    const valid = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    assert.equal(identityCheck(valid)(), true);
    const hour = 3_600_000;
    const expired = MemorySource.create(
      await td.svid('/payment', { notBefore: new Date(Date.now() - 2 * hour), notAfter: new Date(Date.now() - hour) }),
      [td.bundle],
    );
    const result = identityCheck(expired)();
    assert.equal(typeof result === 'boolean' ? result : result.ok, false);
  });
});

describe('observeIdentity gauges', () => {
  test('shop_identity_info and shop_identity_trust_roots follow the source: files, then a second root, then SPIFFE', async () => {
    const { createTestTrustDomain, MemorySource } = await import('@shop/auth-testing');
    const { X509Bundle } = await import('@shop/auth');
    const { observeIdentity } = await import('../src/metrics.ts');
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const staticCa = await createTestTrustDomain('example.org');
    const spireCa = await createTestTrustDomain('example.org');
    const metrics = createServiceMetrics('svc');
    const source = MemorySource.create(await staticCa.svid('/svc'), [staticCa.bundle], { kind: 'files' });
    observeIdentity(source, metrics, quiet);
    const scrape = (): Promise<string> => metrics.registry.metrics();

    let text = await scrape();
    assert.match(
      text,
      /shop_identity_info\{source="files",spiffe_id="spiffe:\/\/example\.org\/svc",issuer="example\.org test root",service="svc"\} 1/,
    );
    assert.match(text, /shop_identity_trust_roots\{trust_domain="example\.org",service="svc"\} 1/);

    // Bridged: the same trust domain now has two roots.
    const both = new X509Bundle('example.org', [staticCa.ca.certDer, spireCa.ca.certDer]);
    source.set(await staticCa.svid('/svc'), [both]);
    text = await scrape();
    assert.match(text, /shop_identity_trust_roots\{trust_domain="example\.org",service="svc"\} 2/);
    assert.equal((text.match(/^shop_identity_info\{/gm) ?? []).length, 1, 'one info series at a time');

    // A service on the Workload API reports source="spiffe" and its SVID's issuer.
    const spiffeMetrics = createServiceMetrics('svc');
    const svid = await spireCa.svid('/svc');
    observeIdentity(MemorySource.create(svid, [spireCa.bundle], { kind: 'spiffe' }), spiffeMetrics, quiet);
    assert.match(
      await spiffeMetrics.registry.metrics(),
      /shop_identity_info\{source="spiffe",spiffe_id="spiffe:\/\/example\.org\/svc"/,
    );
  });
});

describe('GET /identity', () => {
  test('absent without an identity (positive control for the route); with one: mode, ID, serial, expiry, history of rotations, trust roots', async () => {
    const { createTestTrustDomain, MemorySource } = await import('@shop/auth-testing');
    const { X509Bundle } = await import('@shop/auth');
    const { IdentityHistory } = await import('../src/identity-view.ts');
    const td = await createTestTrustDomain('example.org');
    const partner = await createTestTrustDomain('partner.example');
    const source = new MemorySource({ kind: 'files' });
    const identity = new IdentityHistory(source);
    const metrics = createServiceMetrics('svc');
    const bare = await startOpsServer({ host: '127.0.0.1', port: 0, metrics, checks: {} });
    const app = await startOpsServer({ host: '127.0.0.1', port: 0, metrics, checks: {}, identity });
    const url = (a: typeof app): string => `http://127.0.0.1:${(a.server.address() as AddressInfo).port}/identity`;
    try {
      assert.equal((await request(url(bare))).statusCode, 404);
      const before = (await (await request(url(app))).body.json()) as { ready: boolean; spiffeId: unknown };
      assert.equal(before.ready, false);
      assert.equal(before.spiffeId, null);

      const first = await td.svid('/svc');
      source.set(first, [td.bundle]);
      const second = await td.svid('/svc');
      source.set(second, [td.bundle, new X509Bundle('partner.example', [partner.ca.certDer])]);
      const res = await request(url(app));
      assert.equal(res.statusCode, 200);
      const view = (await res.body.json()) as IdentityView;
      assert.equal(view.mode, 'files');
      assert.equal(view.ready, true);
      assert.equal(view.spiffeId, 'spiffe://example.org/svc');
      assert.equal(view.serial, second.leaf.serialNumber);
      assert.notEqual(view.serial, first.leaf.serialNumber);
      assert.equal(view.notAfter, second.expiresAt.toISOString());
      assert.ok((view.secondsToExpiry ?? 0) > 0);
      assert.equal(view.rotations, 1);
      assert.deepEqual(
        view.history.map((e) => [e.kind, e.serial]),
        [
          ['loaded', first.leaf.serialNumber],
          ['rotated', second.leaf.serialNumber],
        ],
      );
      assert.deepEqual(Object.keys(view.trustRoots).sort(), ['example.org', 'partner.example']);
      assert.equal(
        view.trustRoots['partner.example']?.[0]?.sha256,
        new X509Certificate(partner.ca.certDer).fingerprint256,
      );
    } finally {
      await bare.close();
      await app.close();
    }
  });
});

describe('shop_authz_decisions_total', () => {
  test('counts allows (positive control) and denies, with caller and rule', async () => {
    const { authHooks } = await import('../src/metrics.ts');
    const metrics = createServiceMetrics('svc');
    const hooks = authHooks(metrics);
    const base = {
      transport: 'http',
      route: '/stock',
      url: '/stock',
      method: 'GET',
      rule: 'id spiffe://example.org/order',
    } as const;
    hooks.onDecision({ ...base, decision: 'allow', status: 200, caller: 'spiffe://example.org/order' });
    hooks.onDecision({ ...base, decision: 'allow', status: 200, caller: 'spiffe://example.org/order' });
    hooks.onDecision({ ...base, decision: 'deny', status: 401, caller: null, code: 'AUTH_ERR_PEER_UNVERIFIED' });
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /shop_authz_decisions_total\{protocol="http",route="\/stock",caller="spiffe:\/\/example\.org\/order",rule="id spiffe:\/\/example\.org\/order",decision="allow",service="svc"\} 2/,
    );
    assert.match(
      text,
      /shop_authz_decisions_total\{protocol="http",route="\/stock",caller="none",rule="id spiffe:\/\/example\.org\/order",decision="deny",service="svc"\} 1/,
    );
  });
});
