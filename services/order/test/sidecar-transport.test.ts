// SHOP_TRANSPORT=sidecar: order calls inventory and payment in plaintext,
// through the client-side sidecars on loopback, and serves its API on
// loopback only. The default (mTLS to https:// upstreams) is config.test.ts's
// and server.test.ts's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTempDir } from '@shop/auth-testing';
import { ConfigError } from '@shop/service-kit';
import { spawnService } from '@shop/service-kit/testing';
import { loadConfig } from '../src/config.ts';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

describe('loadConfig with SHOP_TRANSPORT=sidecar', () => {
  test('plaintext loopback upstreams (positive control), https: upstreams by default', () => {
    const c = loadConfig({
      SHOP_TRANSPORT: 'sidecar',
      INVENTORY_GRPC_TARGET: '127.0.0.1:7001',
      PAYMENT_URL: 'http://127.0.0.1:7002',
    });
    assert.equal(c.transport, 'sidecar');
    assert.equal(c.paymentUrl, 'http://127.0.0.1:7002');
    assert.equal(c.inventoryUrl, 'http://127.0.0.1:8444');
    assert.equal(c.inventoryGrpcTarget, '127.0.0.1:7001');
    const d = loadConfig({});
    assert.equal(d.transport, 'mtls');
    assert.equal(d.paymentUrl, 'https://127.0.0.1:8443');
  });

  const refused: [string, NodeJS.ProcessEnv, string][] = [
    ['PAYMENT_URL', { PAYMENT_URL: 'http://payment.internal:8443' }, 'SVC_ERR_SIDECAR_NOT_LOOPBACK'],
    ['INVENTORY_URL', { INVENTORY_URL: 'http://10.1.2.3:8444' }, 'SVC_ERR_SIDECAR_NOT_LOOPBACK'],
    ['INVENTORY_GRPC_TARGET', { INVENTORY_GRPC_TARGET: 'inventory:50051' }, 'SVC_ERR_SIDECAR_NOT_LOOPBACK'],
    ['HOST', { HOST: '0.0.0.0' }, 'SVC_ERR_SIDECAR_NOT_LOOPBACK'],
    ['PAYMENT_URL', { PAYMENT_URL: 'https://127.0.0.1:8443' }, 'SVC_ERR_CONFIG_INVALID'],
  ];
  for (const [name, env, code] of refused) {
    test(`${name}=${Object.values(env)[0] ?? ''} is refused with ${code}`, () => {
      assert.throws(
        () => loadConfig({ SHOP_TRANSPORT: 'sidecar', ...env }),
        (err: unknown) => err instanceof ConfigError && err.variable === name && err.code === code,
      );
    });
  }
});

describe('the process with SHOP_TRANSPORT=sidecar', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await makeTempDir('order-sidecar-'));
  });
  after(async () => {
    await cleanup();
  });

  test('starts with no identity, plaintext on loopback, /identity says sidecar', async (t) => {
    const s = spawnService(t, SERVER, {
      SHOP_TRANSPORT: 'sidecar',
      DATA_DIR: dir,
      INVENTORY_GRPC_TARGET: '127.0.0.1:1',
      PAYMENT_URL: 'http://127.0.0.1:1',
    });
    const started = await s.line('order started');
    assert.equal(started.transport, 'sidecar');
    assert.equal(new URL(String(started.api)).hostname, '127.0.0.1');
    const identity = (await (await fetch(`${String(started.ops)}/identity`)).json()) as { mode: string };
    assert.equal(identity.mode, 'sidecar');
    s.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });
});
