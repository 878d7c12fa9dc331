import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestTrustDomain } from '@shop/auth-testing';
import { findPostgresBin, startPostgres, type PostgresCluster } from '../src/index.ts';

describe('startPostgres', () => {
  let cluster: PostgresCluster;
  before(async () => {
    cluster = await startPostgres({ roles: [{ name: 'payment' }, { name: 'inventory' }] });
  });
  after(() => cluster.stop());

  test('a role reaches its own database with its password', async () => {
    const c = new pg.Client({ connectionString: cluster.url('payment') });
    await c.connect();
    try {
      const row = (await c.query('SELECT current_user AS u, current_database() AS d')).rows[0] as object;
      assert.deepEqual(row, { u: 'payment', d: 'payment' });
      await c.query('CREATE TABLE t (v TEXT)');
    } finally {
      await c.end();
    }
  });

  test("a role cannot connect to another role's database (CONNECT revoked from PUBLIC)", async () => {
    // Positive control first: inventory reaches its own database.
    const own = new pg.Client({ connectionString: cluster.url('inventory') });
    await own.connect();
    await own.end();
    const u = new URL(cluster.url('inventory'));
    u.pathname = '/payment';
    const other = new pg.Client({ connectionString: u.href });
    await assert.rejects(other.connect(), (err: { code?: string }) => err.code === '42501');
  });

  test('the superuser is refused over TCP', async () => {
    const c = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres' });
    await assert.rejects(c.connect(), (err: { code?: string }) => err.code === '28000');
  });

  test('halt() stops the server and resume() brings it back with its data', async () => {
    await cluster.halt();
    const down = new pg.Client({ connectionString: cluster.url('payment'), connectionTimeoutMillis: 2000 });
    await assert.rejects(down.connect());
    await cluster.resume();
    const c = new pg.Client({ connectionString: cluster.url('payment') });
    await c.connect();
    try {
      const row = (await c.query("SELECT to_regclass('t')::text AS t")).rows[0] as { t: string | null };
      assert.equal(row.t, 't');
    } finally {
      await c.end();
    }
  });
});

test('reloadTls(): a client CA added while running is trusted by new connections, without a restart', async () => {
  const a = await createTestTrustDomain('a.example');
  const b = await createTestTrustDomain('b.example');
  const server = await a.ca.issue({ subject: 'CN=localhost', dnsNames: ['localhost'] });
  const cluster = await startPostgres({
    roles: [{ name: 'payment' }],
    tls: { certPem: server.certPem, keyPem: server.keyPem, clientCaPem: a.ca.cert.toString('pem') },
    clientAuth: 'cert',
    identMap: { payment: 'payment' },
  });
  try {
    const login = async (client: { certPem: string; keyPem: string }): Promise<void> => {
      const c = new pg.Client({
        host: 'localhost',
        port: cluster.port,
        user: 'payment',
        database: 'payment',
        ssl: { ca: a.ca.cert.toString('pem'), cert: client.certPem, key: client.keyPem },
      });
      try {
        await c.connect();
        await c.query('SELECT 1');
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    const fromA = await a.ca.issue({ subject: 'CN=payment', dnsNames: ['payment'] });
    const fromB = await b.ca.issue({ subject: 'CN=payment', dnsNames: ['payment'] });
    await login(fromA); // positive control
    await assert.rejects(login(fromB));
    const pid = cluster.log().match(/database system is ready/g)?.length;
    // A file PostgreSQL cannot read (two PEM blocks run together) is an error, and the old CA stays.
    await assert.rejects(
      cluster.reloadTls({ clientCaPem: a.ca.cert.toString('pem').trim() + b.ca.cert.toString('pem') }),
      /kept its old TLS files/,
    );
    await assert.rejects(login(fromB));
    await cluster.reloadTls({ clientCaPem: `${a.ca.cert.toString('pem').trim()}\n${b.ca.cert.toString('pem')}` });
    await login(fromB);
    await login(fromA);
    // Reloaded, not restarted: the server came up once.
    assert.equal(cluster.log().match(/database system is ready/g)?.length, pid);
    // And back: B removed again is refused again.
    await cluster.reloadTls({ clientCaPem: a.ca.cert.toString('pem') });
    await assert.rejects(login(fromB));
  } finally {
    await cluster.stop();
  }
});

test('stop() removes the cluster and its directory', async () => {
  const cluster = await startPostgres();
  assert.ok(existsSync(cluster.dataDir));
  await cluster.stop();
  assert.equal(existsSync(cluster.socketDir), false);
  await cluster.stop();
});

test('findPostgresBin names the package to install when there are no binaries', () => {
  assert.match(findPostgresBin(), /\/bin$/);
  assert.throws(() => findPostgresBin({ PG_TESTING_BIN_DIR: '/nonexistent' }), /apt-get install postgresql/);
});
