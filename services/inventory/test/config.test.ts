import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeTempDir } from '@shop/auth-testing';
import { ConfigError } from '@shop/service-kit';
import { loadConfig } from '../src/config.ts';
import { DEFAULT_CATALOGUE, loadSeedFile } from '../src/seed.ts';

describe('config', () => {
  test('defaults, frozen', () => {
    const config = loadConfig({});
    assert.deepEqual(config, {
      trustDomain: 'example.org',
      host: '127.0.0.1',
      port: 8444,
      grpcPort: 50051,
      opsPort: 9444,
      reusePort: false,
      dataDir: resolve('.data/inventory'),
      database: { engine: 'sqlite', file: resolve('.data/inventory/inventory.db') },
      reservationTtlSeconds: 300,
      orderId: 'spiffe://example.org/order',
      partnerStockReaders: [],
      seedFile: undefined,
      logLevel: 'info',
      identityWaitSeconds: 0,
      transport: 'mtls',
    });
    assert.ok(Object.isFrozen(config));
  });

  test('IDENTITY_WAIT_SECONDS is read and validated with the rest of the configuration', () => {
    assert.equal(loadConfig({ IDENTITY_WAIT_SECONDS: '30' }).identityWaitSeconds, 30);
    for (const bad of ['-1', 'soon', '2000001']) {
      assert.throws(
        () => loadConfig({ IDENTITY_WAIT_SECONDS: bad }),
        (err: unknown) => err instanceof ConfigError && err.variable === 'IDENTITY_WAIT_SECONDS',
        bad,
      );
    }
  });

  test('LISTEN_REUSE_PORT: true turns SO_REUSEPORT on; anything but true/false is refused, naming the variable', () => {
    assert.equal(loadConfig({ LISTEN_REUSE_PORT: 'true' }).reusePort, true);
    assert.equal(loadConfig({ LISTEN_REUSE_PORT: 'false' }).reusePort, false);
    assert.throws(() => loadConfig({ LISTEN_REUSE_PORT: 'yes' }), /LISTEN_REUSE_PORT/);
  });

  test('DATABASE_URL puts the store on PostgreSQL; a bad one is refused, naming it', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://inventory@db.test/inventory', DATABASE_POOL_MAX: '5' });
    assert.equal(c.database.engine, 'postgres');
    assert.equal(c.database.poolMax, 5);
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'http://db.test/inventory' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'DATABASE_URL',
    );
  });

  test('ORDER_ID follows TRUST_DOMAIN unless set', () => {
    assert.equal(loadConfig({ TRUST_DOMAIN: 'shop.test' }).orderId, 'spiffe://shop.test/order');
    assert.equal(
      loadConfig({ TRUST_DOMAIN: 'shop.test', ORDER_ID: 'spiffe://shop.test/checkout' }).orderId,
      'spiffe://shop.test/checkout',
    );
  });

  test('PARTNER_STOCK_READERS: comma-separated SPIFFE IDs, blanks and repeats ignored, frozen', () => {
    const readers = loadConfig({
      PARTNER_STOCK_READERS:
        ' spiffe://partner.example/reader ,, spiffe://other.example/ns/prod/reader,spiffe://partner.example/reader,',
    }).partnerStockReaders;
    assert.deepEqual(readers, ['spiffe://partner.example/reader', 'spiffe://other.example/ns/prod/reader']);
    assert.ok(Object.isFrozen(readers));
    assert.deepEqual(loadConfig({ PARTNER_STOCK_READERS: '  ' }).partnerStockReaders, []);
    // A bad item is named, so a long list is quick to fix.
    assert.throws(
      () => loadConfig({ PARTNER_STOCK_READERS: 'spiffe://partner.example/reader,spiffe://partner.example/a b' }),
      /^ConfigError: PARTNER_STOCK_READERS: invalid SPIFFE ID "spiffe:\/\/partner.example\/a b"/,
    );
    assert.throws(
      () => loadConfig({ PARTNER_STOCK_READERS: 'spiffe://partner.example' }),
      /PARTNER_STOCK_READERS: "spiffe:\/\/partner.example" must name a workload, not a whole trust domain/,
    );
  });

  const bad: [Record<string, string>, string][] = [
    [{ PORT: '70000' }, 'PORT'],
    [{ GRPC_PORT: 'x' }, 'GRPC_PORT'],
    [{ OPS_PORT: '-1' }, 'OPS_PORT'],
    [{ RESERVATION_TTL_SECONDS: '0' }, 'RESERVATION_TTL_SECONDS'],
    [{ RESERVATION_TTL_SECONDS: '1.5' }, 'RESERVATION_TTL_SECONDS'],
    [{ TRUST_DOMAIN: 'Not A Domain' }, 'TRUST_DOMAIN'],
    [{ ORDER_ID: 'https://example.org/order' }, 'ORDER_ID'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ PARTNER_STOCK_READERS: 'partner.example/reader' }, 'PARTNER_STOCK_READERS'],
    [
      { PARTNER_STOCK_READERS: 'spiffe://partner.example/reader,spiffe://partner.example/a b' },
      'PARTNER_STOCK_READERS',
    ],
    [{ PARTNER_STOCK_READERS: 'spiffe://partner.example' }, 'PARTNER_STOCK_READERS'],
  ];
  for (const [env, variable] of bad) {
    test(`${JSON.stringify(env)} → ConfigError naming ${variable}`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && err.message.startsWith(`${variable}: `),
      );
    });
  }
});

describe('seed', () => {
  test('the default catalogue: 8 EUR products with 20–100 in stock, sku-limited with 50', () => {
    assert.equal(DEFAULT_CATALOGUE.length, 8);
    for (const p of DEFAULT_CATALOGUE) {
      assert.equal(p.currency, 'EUR');
      assert.ok(p.on_hand >= 20 && p.on_hand <= 100, p.product_id);
    }
    assert.equal(DEFAULT_CATALOGUE.find((p) => p.product_id === 'sku-limited')?.on_hand, 50);
  });

  test('SEED_FILE: a valid file loads; each kind of mistake names the entry and field', async (t) => {
    const { dir, cleanup } = await makeTempDir('inventory-seed-');
    t.after(cleanup);
    const good = { product_id: 'sku-x', name: 'X', price_cents: 100, currency: 'EUR', on_hand: 3 };
    const file = join(dir, 'seed.json');
    await writeFile(file, JSON.stringify([good]));
    assert.deepEqual(loadSeedFile(file), [good]);

    const cases: [string, unknown, RegExp][] = [
      ['not JSON', '{', /must be a readable JSON file/],
      ['not an array', { products: [] }, /non-empty JSON array/],
      ['empty', [], /non-empty JSON array/],
      ['bad product_id', [{ ...good, product_id: 'a b' }], /entry 0 .*product_id must match/],
      ['duplicate', [good, good], /entry 1 .*appears twice/],
      ['no name', [{ ...good, name: '' }], /entry 0 .*name/],
      ['negative price', [{ ...good, price_cents: -1 }], /entry 0 .*price_cents/],
      ['bad currency', [{ ...good, currency: 'euro' }], /entry 0 .*currency/],
      ['fractional stock', [{ ...good, on_hand: 1.5 }], /entry 0 .*on_hand/],
    ];
    for (const [name, content, message] of cases) {
      await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
      assert.throws(
        () => loadSeedFile(file),
        (err: unknown) => err instanceof ConfigError && err.variable === 'SEED_FILE' && message.test(err.message),
        name,
      );
    }
    assert.throws(() => loadSeedFile(join(dir, 'missing.json')), /SEED_FILE: must be a readable JSON file/);
  });
});
