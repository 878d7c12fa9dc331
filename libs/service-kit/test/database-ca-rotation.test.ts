// DATABASE_CA_FILE is read for every new connection, not once at start: when
// the CA that signs the database server's certificate rotates (SPIRE's bundle
// rewritten in place by the harness), new connections verify the new server
// certificate without a restart of the service.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth-testing';
import { startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { Env, readDatabaseConfig } from '../src/index.ts';
import { poolConfig } from '../src/db/postgres-database.ts';

let oldCa: TestTrustDomain;
let newCa: TestTrustDomain;
let cluster: PostgresCluster;
let dir: string;
let cleanup: () => Promise<void>;
let caFile: string;
const pem = (td: TestTrustDomain): string => `${td.ca.cert.toString('pem').trim()}\n`;

before(async () => {
  oldCa = await createTestTrustDomain('example.org');
  newCa = await createTestTrustDomain('example.org');
  const server = await oldCa.ca.issue({ subject: 'CN=localhost', dnsNames: ['localhost'] });
  cluster = await startPostgres({
    roles: [{ name: 'payment', password: 'pw-payment' }],
    tls: { certPem: server.certPem, keyPem: server.keyPem },
  });
  ({ dir, cleanup } = await makeTempDir('db-ca-rotation-'));
  caFile = join(dir, 'db-ca.pem');
});
after(async () => {
  await cluster.stop();
  await cleanup();
});

async function newConnection(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT 1');
  } finally {
    client.release(true); // never back to the pool: the next call opens a new connection
  }
}

test('a CA file rewritten in place is used by the next new connection (the old one alone is refused first)', async () => {
  await writeFile(caFile, pem(oldCa));
  const config = readDatabaseConfig(
    new Env({
      DATABASE_URL: `postgres://payment:pw-payment@localhost:${String(cluster.port)}/payment`,
      DATABASE_CA_FILE: caFile,
    }),
    { dataDir: dir, file: 'unused' },
  );
  assert.equal(config.engine, 'postgres');
  const pool = new pg.Pool({ ...poolConfig(config), connectionTimeoutMillis: 5000 });
  try {
    await newConnection(pool); // positive control: the server's certificate chains to the old CA
    // The server moves to a certificate from the new CA; the file still names only the old one.
    const server = await newCa.ca.issue({ subject: 'CN=localhost', dnsNames: ['localhost'] });
    await cluster.reloadTls({ certPem: server.certPem, keyPem: server.keyPem });
    await assert.rejects(newConnection(pool), /self[- ]signed|unable to verify|certificate/i);
    // The bundle is rewritten with both CAs, as SPIRE publishes them during a rotation.
    await writeFile(caFile, pem(oldCa) + pem(newCa));
    await newConnection(pool);
  } finally {
    await pool.end();
  }
});

test('a CA file that does not exist fails at start, naming it', () => {
  const config = readDatabaseConfig(
    new Env({
      DATABASE_URL: `postgres://payment@localhost:${String(cluster.port)}/payment`,
      DATABASE_CA_FILE: join(dir, 'missing.pem'),
    }),
    { dataDir: dir, file: 'unused' },
  );
  if (config.engine !== 'postgres') assert.fail('not postgres');
  assert.throws(() => poolConfig(config), /missing\.pem/);
});
