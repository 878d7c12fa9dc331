import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '@shop/service-kit';
import { loadConfig } from '../src/config.ts';

test('the database: SQLite order.db in DATA_DIR by default; PostgreSQL with DATABASE_URL; the lease time', () => {
  const d = loadConfig({});
  assert.deepEqual(d.database, { engine: 'sqlite', file: resolve('.data/order/order.db') });
  assert.equal(d.leaseMs, 15_000);
  const c = loadConfig({ DATABASE_URL: 'postgres://order@db.test/order', ORDER_LEASE_MS: '2000' });
  assert.equal(c.database.engine, 'postgres');
  assert.equal(c.leaseMs, 2000);
  assert.ok(Object.isFrozen(c));
});

const bad: [string, string][] = [
  ['DATABASE_URL', 'sqlite:///tmp/order.db'],
  ['ORDER_LEASE_MS', '10'],
];
for (const [name, value] of bad) {
  test(`${name}=${value} is refused, naming the variable`, () => {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.variable === name,
    );
  });
}
