import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';

describe('config', () => {
  test('defaults when unset; values when valid; frozen', () => {
    const d = loadConfig({});
    assert.deepEqual(
      { ...d },
      {
        trustDomain: 'example.org',
        host: '127.0.0.1',
        port: 8443,
        opsPort: 9443,
        reusePort: false,
        adminPort: 9543,
        dataDir: resolve('.data/payment'),
        database: { engine: 'sqlite', file: resolve('.data/payment/payment.db') },
        orderId: 'spiffe://example.org/order',
        latencyMs: 0,
        failureRate: 0,
        logLevel: 'info',
        identityWaitSeconds: 0,
        transport: 'mtls',
      },
    );
    assert.ok(Object.isFrozen(d));
    const c = loadConfig({
      TRUST_DOMAIN: 'shop.test',
      PAYMENT_LATENCY_MS: '250',
      PAYMENT_FAILURE_RATE: '0.25',
      DATA_DIR: '/tmp/p',
    });
    assert.equal(c.orderId, 'spiffe://shop.test/order');
    assert.equal(c.latencyMs, 250);
    assert.equal(c.failureRate, 0.25);
    assert.equal(c.dataDir, '/tmp/p');
    assert.deepEqual(c.database, { engine: 'sqlite', file: '/tmp/p/payment.db' });
    const pg = loadConfig({ DATABASE_URL: 'postgres://payment@db.test:5432/payment', DATABASE_POOL_MAX: '4' });
    assert.equal(pg.database.engine, 'postgres');
    assert.equal(pg.database.poolMax, 4);
  });

  const bad: [string, string, RegExp][] = [
    ['PORT', 'https', /must be an integer/],
    ['OPS_PORT', '70000', /between 0 and 65535/],
    ['ADMIN_PORT', '-1', /between 0 and 65535/],
    ['PAYMENT_LATENCY_MS', '1.5', /must be an integer/],
    ['PAYMENT_LATENCY_MS', '30001', /between 0 and 30000/],
    ['PAYMENT_FAILURE_RATE', '1.1', /between 0 and 1/],
    ['PAYMENT_FAILURE_RATE', 'half', /must be a number/],
    ['TRUST_DOMAIN', 'Example Org', /trust domain name/],
    ['ORDER_ID', 'https://example.org/order', /SPIFFE ID/],
    ['LOG_LEVEL', 'loud', /must be one of/],
    ['IDENTITY_WAIT_SECONDS', 'soon', /must be an integer/],
    ['IDENTITY_WAIT_SECONDS', '-1', /between 0 and 2000000/],
    ['DATABASE_URL', 'mysql://db/payment', /must use postgres: or postgresql:/],
  ];
  for (const [name, value, message] of bad) {
    test(`${name}=${value} is refused, naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: Error & { code?: string; variable?: string }) => {
          assert.equal(err.code, 'SVC_ERR_CONFIG_INVALID');
          assert.equal(err.variable, name);
          assert.match(err.message, new RegExp(`^${name}: `));
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
