// compose.postgres.yaml and compose.scale.yaml over compose.yaml: two
// replicas of each service on one PostgreSQL, identities from SPIRE, the
// services logging in to the database with their SVIDs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJsonLines, placeOrder, startShop, type Shop } from './support.ts';

const FILES = ['compose.yaml', 'compose.postgres.yaml', 'compose.scale.yaml'];

describe('docker compose up (PostgreSQL, 2 replicas of each service)', () => {
  let started: Shop | undefined;
  const shop = (): Shop => started ?? assert.fail('compose did not come up');
  before(async () => {
    started = await startShop(FILES, [], 2);
  });
  after(async () => {
    await started?.down();
  });

  /** psql runs one query as the superuser inside the postgres container (local socket) and returns its bare output. */
  const psql = async (database: string, sql: string): Promise<string> =>
    (await shop().compose(['exec', '-T', 'postgres', 'psql', '-U', 'postgres', '-d', database, '-tAc', sql])).trim();

  test('orders succeed end to end; their orders and payments are in PostgreSQL, and both payment replicas took calls', async () => {
    // Twelve at once, half on each order replica's host port (ORDER_PORT and the next):
    // each order replica opens several connections to payment, spread by Compose's DNS.
    const base = new URL(shop().orderUrl);
    const urls = [base.origin, `${base.protocol}//${base.hostname}:${String(Number(base.port) + 1)}`];
    const placed = await Promise.all(Array.from({ length: 12 }, (_, i) => placeOrder(urls[i % 2] ?? '')));
    for (const p of placed) {
      assert.equal(p.status, 201, JSON.stringify(p.body));
      assert.equal(p.body.status, 'confirmed', JSON.stringify(p.body));
    }
    const ids = placed.map((p) => p.body.order_id ?? '');
    const list = ids.map((id) => `'${id}'`).join(',');
    assert.equal(
      await psql('order', `SELECT count(*) FROM orders WHERE id IN (${list}) AND status = 'confirmed'`),
      '12',
    );
    assert.equal(
      await psql('payment', `SELECT count(*) FROM payments WHERE order_id IN (${list}) AND status = 'succeeded'`),
      '12',
    );
    // Every payment replica answered some of them: its own audit lines name order as the caller.
    const audit = async (index: number): Promise<number> =>
      parseJsonLines(
        (await shop().compose(['logs', '--no-color', '--no-log-prefix', '--index', String(index), 'payment'])).split(
          '\n',
        ),
      ).filter((l) => l.msg === 'authz allow').length;
    const counts = [await audit(1), await audit(2)];
    assert.ok(
      counts.every((n) => n > 0),
      `authorized calls: payment-1 ${counts[0]}, payment-2 ${counts[1]}`,
    );
  });

  test('the services log in with their SVIDs: each role reaches only its own database', async () => {
    // Positive control: payment's role is connected to payment's database.
    const roles = await psql(
      'postgres',
      `SELECT string_agg(DISTINCT usename || '@' || datname, ',' ORDER BY usename || '@' || datname) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> 'postgres'`,
    );
    for (const s of ['inventory', 'order', 'payment']) assert.ok(roles.includes(`${s}@${s}`), roles);
    // No service's role is connected anywhere else, and none may be.
    assert.doesNotMatch(roles, /(inventory|order|payment)@(?!\1\b)/);
    assert.equal(await psql('postgres', `SELECT has_database_privilege('order', 'payment', 'CONNECT')`), 'f');
  });
});
