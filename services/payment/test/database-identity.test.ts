// The database is part of the zero-trust story: payment reaches PostgreSQL
// over TLS, verifies the server against DATABASE_CA_FILE, and logs in with
// its own X.509-SVID (DATABASE_AUTH=identity, PostgreSQL `cert` auth). As
// SPIRE does, the SVID's subject CN is the entry's first DNS name, which
// pg_ident.conf maps to the service's role. Another service's SVID does not
// get at payment's tables.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MemorySource, createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth-testing';
import { startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { Env, openDatabase, readDatabaseConfig, type DatabaseConfig } from '@shop/service-kit';
import { PaymentStore } from '../src/store.ts';

// SPIRE: `-dns payment.shop.svc` on the entry puts CN=payment.shop.svc in the SVID.
const CN = { payment: 'payment.shop.svc', inventory: 'inventory.shop.svc' } as const;

describe('payment on PostgreSQL with its SVID as client certificate', () => {
  let td: TestTrustDomain;
  let cluster: PostgresCluster;
  let dir: string;
  let cleanup: () => Promise<void>;
  let caFile: string;

  before(async () => {
    td = await createTestTrustDomain('example.org');
    const server = await td.ca.issue({ subject: 'CN=localhost', dnsNames: ['localhost'] });
    cluster = await startPostgres({
      roles: [{ name: 'payment' }, { name: 'inventory' }],
      tls: { certPem: server.certPem, keyPem: server.keyPem, clientCaPem: td.ca.cert.toString('pem') },
      clientAuth: 'cert',
      identMap: { [CN.payment]: 'payment', [CN.inventory]: 'inventory' },
    });
    ({ dir, cleanup } = await makeTempDir('payment-db-identity-'));
    caFile = join(dir, 'db-ca.pem');
    await writeFile(caFile, td.ca.cert.toString('pem'));
  });
  after(async () => {
    await cluster.stop();
    await cleanup();
  });

  const svidOf = (service: keyof typeof CN) =>
    td.svid(`/${service}`, { subject: `CN=${CN[service]}`, dnsNames: [CN[service]] });
  const config = (user: string, database: string, extra: NodeJS.ProcessEnv = {}): DatabaseConfig =>
    readDatabaseConfig(
      new Env({
        DATABASE_URL: `postgres://${user}@localhost:${String(cluster.port)}/${database}`,
        DATABASE_AUTH: 'identity',
        DATABASE_CA_FILE: caFile,
        DATABASE_CONNECT_WAIT_SECONDS: '0',
        ...extra,
      }),
      { dataDir: dir, file: 'unused' },
    );

  test("positive control: payment's SVID opens payment's ledger, and writes and reads it", async () => {
    const source = MemorySource.create(await svidOf('payment'), [td.bundle]);
    const store = await PaymentStore.open(config('payment', 'payment'), { source });
    try {
      await store.insertPayment({
        paymentId: 'pay_1',
        orderId: 'o-1',
        userId: 'u-1',
        amount: 100,
        currency: 'EUR',
        status: 'succeeded',
        declineReason: null,
        cardLast4: '4242',
        caller: 'spiffe://example.org/order',
        createdAt: new Date().toISOString(),
      });
      assert.equal(await store.countPayments(), 1);
    } finally {
      await store.close();
      await source.close();
    }
  });

  test("inventory's SVID cannot log in as payment (pg_ident maps its CN to inventory only)", async () => {
    const source = MemorySource.create(await svidOf('inventory'), [td.bundle]);
    try {
      await assert.rejects(
        PaymentStore.open(config('payment', 'payment'), { source }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'SVC_ERR_DATABASE_UNREACHABLE');
          assert.match(err.message, /^DATABASE_URL postgres:\/\/payment@localhost:\d+\/payment: connection refused: /);
          assert.match(err.message, /certificate authentication failed for user "payment"/);
          return true;
        },
      );
    } finally {
      await source.close();
    }
  });

  test("inventory's SVID, as its own role, cannot connect to payment's database (CONNECT revoked)", async () => {
    const source = MemorySource.create(await svidOf('inventory'), [td.bundle]);
    try {
      // Positive control: the same SVID and role reach inventory's own database.
      const own = await openDatabase(config('inventory', 'inventory'), [], { source });
      assert.equal((await own.get<{ u: string }>('SELECT current_user AS u'))?.u, 'inventory');
      await own.close();
      await assert.rejects(
        openDatabase(config('inventory', 'payment'), [], { source }),
        /permission denied for database/,
      );
    } finally {
      await source.close();
    }
  });

  test('a certificate from another CA, or none, is refused by the server', async () => {
    const stranger = await createTestTrustDomain('example.org');
    const source = MemorySource.create(
      await stranger.svid('/payment', { subject: `CN=${CN.payment}`, dnsNames: [CN.payment] }),
      [stranger.bundle],
    );
    try {
      await assert.rejects(openDatabase(config('payment', 'payment'), [], { source }), /SVC_ERR|certificate|alert/i);
    } finally {
      await source.close();
    }
    await assert.rejects(
      openDatabase(config('payment', 'payment', { DATABASE_AUTH: 'none' }), []),
      /no pg_hba.conf entry|certificate/,
    );
  });

  test('the client verifies the server: a CA file that does not hold its issuer is refused', async () => {
    const other = await createTestTrustDomain('example.org');
    const wrongCa = join(dir, 'wrong-ca.pem');
    await writeFile(wrongCa, other.ca.cert.toString('pem'));
    const source = MemorySource.create(await svidOf('payment'), [td.bundle]);
    try {
      await assert.rejects(
        openDatabase(config('payment', 'payment', { DATABASE_CA_FILE: wrongCa }), [], { source }),
        /unable to verify|self.signed|certificate/i,
      );
    } finally {
      await source.close();
    }
  });

  test('rotation: a new pool connection presents the identity current at that time', async () => {
    const first = await svidOf('payment');
    const source = MemorySource.create(first, [td.bundle]);
    const db = await openDatabase(config('payment', 'payment'), [], { source });
    const serialSql = 'SELECT client_serial::text AS s FROM pg_stat_ssl WHERE pid = pg_backend_pid()';
    const serialOf = (pem: string): string => BigInt(`0x${new X509Certificate(pem).serialNumber}`).toString();
    try {
      assert.equal((await db.get<{ s: string }>(serialSql))?.s, serialOf(first.certChainPem()));
      const second = await svidOf('payment');
      source.set(second, [td.bundle]);
      // Hold the pooled connection, so the next query needs a new one.
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      const holding = db.transaction(async () => {
        await db.get('SELECT 1 AS one');
        await held;
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await db.get<{ s: string }>(serialSql))?.s, serialOf(second.certChainPem()));
      release();
      await holding;
    } finally {
      await db.close();
      await source.close();
    }
  });
});
