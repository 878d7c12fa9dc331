// SHOP_TRANSPORT: "mtls" unless asked, and "sidecar" only with loopback
// listeners (SVC_ERR_SIDECAR_NOT_LOOPBACK otherwise).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Env, readProcessConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { isLoopbackHost, requireLoopbackUrl, sidecarIdentityView } from '../src/transport.ts';

const read = (env: NodeJS.ProcessEnv) => readProcessConfig(new Env(env), { opsPort: 9080 });

describe('isLoopbackHost', () => {
  const cases: [string, boolean][] = [
    // Positive controls first.
    ['127.0.0.1', true],
    ['127.42.0.9', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['payment.internal', false],
    ['', false],
  ];
  for (const [host, loopback] of cases) {
    test(`${JSON.stringify(host)} is ${loopback ? '' : 'not '}loopback`, () => {
      assert.equal(isLoopbackHost(host), loopback);
    });
  }
});

describe('readProcessConfig: SHOP_TRANSPORT', () => {
  test('mtls by default; sidecar on a loopback HOST (positive controls)', () => {
    assert.equal(read({}).transport, 'mtls');
    assert.equal(read({ HOST: '0.0.0.0' }).transport, 'mtls', 'mTLS binds anywhere');
    assert.equal(read({ SHOP_TRANSPORT: 'sidecar' }).transport, 'sidecar');
    assert.equal(read({ SHOP_TRANSPORT: 'sidecar', HOST: '::1' }).host, '::1');
  });

  for (const host of ['0.0.0.0', '::', '192.168.1.10', 'shop.example']) {
    test(`sidecar with HOST=${host} is refused with SVC_ERR_SIDECAR_NOT_LOOPBACK naming HOST`, () => {
      assert.throws(
        () => read({ SHOP_TRANSPORT: 'sidecar', HOST: host }),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.code === 'SVC_ERR_SIDECAR_NOT_LOOPBACK' &&
          e.variable === 'HOST' &&
          e.message.startsWith('HOST: must be a loopback address') &&
          e.message.includes('SHOP_TRANSPORT=sidecar') &&
          e.message.includes(JSON.stringify(host)),
      );
    });
  }

  test('an unknown SHOP_TRANSPORT is SVC_ERR_CONFIG_INVALID', () => {
    assert.throws(
      () => read({ SHOP_TRANSPORT: 'plaintext' }),
      (e: unknown) =>
        e instanceof ConfigError && e.code === 'SVC_ERR_CONFIG_INVALID' && e.variable === 'SHOP_TRANSPORT',
    );
  });
});

test('requireLoopbackUrl checks the host of a URL and of a host:port target', () => {
  requireLoopbackUrl('PAYMENT_URL', 'http://127.0.0.1:9000', 'x');
  requireLoopbackUrl('INVENTORY_GRPC_TARGET', '[::1]:50051', 'x');
  assert.throws(
    () => {
      requireLoopbackUrl('PAYMENT_URL', 'http://payment:8443', 'x');
    },
    (e: unknown) => e instanceof ConfigError && e.code === 'SVC_ERR_SIDECAR_NOT_LOOPBACK',
  );
  assert.throws(
    () => {
      requireLoopbackUrl('INVENTORY_GRPC_TARGET', 'inventory:50051', 'x');
    },
    (e: unknown) => e instanceof ConfigError && e.variable === 'INVENTORY_GRPC_TARGET',
  );
});

test('/identity in sidecar mode says so and holds no identity', () => {
  const v = sidecarIdentityView();
  assert.equal(v.mode, 'sidecar');
  assert.equal(v.spiffeId, null);
  assert.match(v.source, /sidecar/);
});
