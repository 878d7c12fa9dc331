import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
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
    const { createTestTrustDomain, MemorySource } = await import('@shop/auth/testing');
    const { identityCheck } = await import('../src/ops-server.ts');
    const td = await createTestTrustDomain('example.org');
    const valid = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    assert.equal(identityCheck(valid)(), true);
    const hour = 3_600_000;
    const expired = MemorySource.create(
      await td.svid('/payment', { notBefore: new Date(Date.now() - 2 * hour), notAfter: new Date(Date.now() - hour) }),
      [td.bundle],
    );
    assert.equal(identityCheck(expired)(), false);
  });
});
