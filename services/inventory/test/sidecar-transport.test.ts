// SHOP_TRANSPORT=sidecar: the inventory process serves its HTTP and gRPC APIs
// in plaintext on loopback with no identity of its own; a non-loopback HOST
// is refused at start. The default (mTLS) is server.test.ts's and grpc.test.ts's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeTempDir } from '@shop/auth-testing';
import { createInventoryGrpcClient } from '@shop/contracts';
import { spawnService } from '@shop/service-kit/testing';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

describe('SHOP_TRANSPORT=sidecar', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await makeTempDir('inventory-sidecar-'));
  });
  after(async () => {
    await cleanup();
  });

  test('HTTP and gRPC in plaintext on loopback, no identity, audit lines name the caller as unknown', async (t) => {
    const s = spawnService(t, SERVER, { SHOP_TRANSPORT: 'sidecar', GRPC_PORT: '0', DATA_DIR: join(dir, 'ok') });
    const started = await s.line('inventory started');
    assert.equal(started.transport, 'sidecar');
    const http = new URL(String(started.http));
    assert.equal(http.protocol, 'http:');
    const res = await fetch(`${http.origin}/api/products`);
    assert.equal(res.status, 200);

    const client = createInventoryGrpcClient(String(started.grpc), grpc.credentials.createInsecure());
    t.after(() => {
      client.close();
    });
    const { products } = await client.listProducts({}, { deadline: Date.now() + 5000 });
    assert.ok(products.length > 0);
    // The audit line of the gRPC call may reach stdout after its answer reaches us (slower on PostgreSQL).
    const auditLines = (): typeof s.lines => s.lines.filter((l) => l.msg === 'authz by sidecar');
    for (const deadline = Date.now() + 5000; auditLines().length < 2 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const audits = auditLines();
    assert.ok(audits.length >= 2, 'one audit line per HTTP request and per gRPC call');
    for (const a of audits) {
      assert.equal((a.authz as { caller?: string }).caller, 'unknown: authorized by the sidecar');
    }
    s.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });

  test('a non-loopback HOST is refused at start with SVC_ERR_SIDECAR_NOT_LOOPBACK', async (t) => {
    const s = spawnService(t, SERVER, {
      SHOP_TRANSPORT: 'sidecar',
      GRPC_PORT: '0',
      HOST: '0.0.0.0',
      DATA_DIR: join(dir, 'bad'),
    });
    assert.equal(await s.exited, 1);
    assert.match(s.stderr(), /^inventory: failed to start: SVC_ERR_SIDECAR_NOT_LOOPBACK: HOST: /m);
  });
});
