// `npm start -- --spiffe --db postgres` (issue 13 item 3 in SPIFFE mode): the
// shop on one PostgreSQL whose client CA is SPIRE's trust bundle and whose
// own certificate SPIRE mints; each service logs in with its X509-SVID from
// its agent (the CN is the entry's first DNS name, mapped to the role of that
// name), each role reaches only its own database, and a SPIRE CA rotation is
// followed (the bundle rewritten, PostgreSQL reloaded) with no restart.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { request } from 'undici';
import { WorkloadApiClient } from '@shop/auth/workloadapi';
import { createTestTrustDomain } from '@shop/auth-testing';
import type { Shop } from '../scripts/shop.ts';
import { PG_SERVER_NAME, startShopPostgresOnSpire, type SpiffeShopPostgres } from '../scripts/shop-postgres.ts';
import { SERVICES, startSpiffeShop, startSpire, type SpireWorld } from './support/spire-shop.ts';

// Agents renew at half-life: a new CA reaches every SVID within ~10 s of activation.
const SVID_TTL = 20;

let world: SpireWorld | undefined;
let db: SpiffeShopPostgres | undefined;
let shop: Shop | undefined;

before(async () => {
  world = await startSpire({ nodes: SERVICES });
  await world.register(SVID_TTL);
  db = await startShopPostgresOnSpire({ spire: world.spire, pollMs: 500 });
  const d = db;
  shop = await startSpiffeShop(world, {
    inventory: d.env('inventory'),
    payment: d.env('payment'),
    order: d.env('order'),
  });
});

after(async () => {
  await shop?.stopAll();
  await db?.stop();
  await world?.stop();
});

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (ok(v)) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** svidOf fetches a service's current X509-SVID from its own agent, as the service does. */
async function svidOf(name: string): Promise<{ certPem: string; keyPem: string; issuer: string; cn: string }> {
  const client = new WorkloadApiClient({ address: world!.spire.agentAddress(name) });
  try {
    const svid = (await client.fetchX509Context()).svids[0]!;
    const leaf = new X509Certificate(svid.certChainPem());
    return { certPem: svid.certChainPem(), keyPem: svid.privateKeyPem(), issuer: leaf.issuer, cn: leaf.subject };
  } finally {
    await client.close();
  }
}

/** loginWith opens a connection as `role` to `database` with a client certificate, the server verified by SPIRE's bundle. */
async function loginWith(
  cert: { certPem: string; keyPem: string },
  role: string,
  database: string,
  sql = 'SELECT 1 AS one',
): Promise<Record<string, unknown>[]> {
  const { readFile } = await import('node:fs/promises');
  const client = new pg.Client({
    host: PG_SERVER_NAME,
    port: db!.port,
    user: role,
    database,
    connectionTimeoutMillis: 5000,
    ssl: { ca: await readFile(db!.bundleFile, 'utf8'), cert: cert.certPem, key: cert.keyPem },
  });
  try {
    await client.connect();
    return (await client.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function placeOrder(): Promise<{ order_id: string; status: string }> {
  const res = await request(`${shop!.orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customer_id: 'c-pg', currency: 'EUR', items: [{ product_id: 'sku-a', quantity: 1 }] }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.body.json()) as { order_id: string; status: string };
  assert.equal(res.statusCode, 201, JSON.stringify(body));
  return body;
}

describe('the shop on PostgreSQL under SPIRE (npm start -- --spiffe --db postgres)', () => {
  test('an order end to end: each service on its own database, logged in with its SVID (CN = its entry’s DNS name)', async () => {
    const order = await placeOrder();
    assert.equal(order.status, 'confirmed');
    const admin = await db!.admin('payment');
    try {
      const { rows } = await admin.query('SELECT order_id FROM payments WHERE order_id = $1', [order.order_id]);
      assert.equal(rows.length, 1, 'the payment is in PostgreSQL');
      // Every service's sessions are TLS with the SVID its agent issued.
      const ssl = await admin.query(
        `SELECT a.usename, a.datname, s.client_dn FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.usename IN ('order', 'payment', 'inventory') AND s.ssl`,
      );
      for (const name of SERVICES) {
        const row = ssl.rows.find((r) => r.usename === name);
        assert.ok(row, `${name} has a TLS session: ${JSON.stringify(ssl.rows)}`);
        assert.equal(row.datname, name);
        assert.match(row.client_dn as string, new RegExp(`/CN=${name}$`));
      }
    } finally {
      await admin.end();
    }
  });

  test('another service’s SVID cannot read payment’s tables (payment’s own SVID can: the positive control)', async () => {
    const payment = await svidOf('payment');
    const rows = await loginWith(payment, 'payment', 'payment', 'SELECT count(*)::int AS n FROM payments');
    assert.ok((rows[0]?.n as number) >= 1);
    const inventory = await svidOf('inventory');
    assert.match(inventory.cn, /CN=inventory/);
    // Its CN maps to inventory only: it cannot log in as payment.
    await assert.rejects(
      loginWith(inventory, 'payment', 'payment'),
      /certificate authentication failed for user "payment"/,
    );
    // As itself it is inventory, which has no CONNECT on payment's database.
    await assert.rejects(loginWith(inventory, 'inventory', 'payment'), /permission denied for database "payment"/);
    // And reaches its own (positive control for the line above).
    await loginWith(inventory, 'inventory', 'inventory');
    // A certificate with the right CN from a CA SPIRE does not vouch for is refused at the handshake.
    const rogue = await createTestTrustDomain('example.org');
    const forged = await rogue.ca.issue({ subject: 'CN=payment', dnsNames: ['payment'] });
    await assert.rejects(loginWith(forged, 'payment', 'payment'), /unknown ca|certificate/i);
  });

  test('a SPIRE CA rotation is followed: new bundle reloaded, SVIDs from the new CA accepted, orders keep flowing', async () => {
    const spire = world!.spire;
    const reloadsBefore = db!.reloads;
    const oldIssuer = (await svidOf('payment')).issuer;
    await spire.cli(['localauthority', 'x509', 'prepare']);
    // The prepared CA is in the bundle: the database trusts it before any SVID carries it.
    await until(
      'the database to reload the bundle',
      () => Promise.resolve(db!.reloads),
      (n) => n > reloadsBefore,
      15_000,
    );
    const shown = await spire.cli(['localauthority', 'x509', 'show', '-output', 'json']);
    const prepared = (JSON.parse(shown) as { prepared?: { authority_id?: string } }).prepared?.authority_id;
    assert.ok(prepared, `no prepared authority in ${shown}`);
    await spire.cli(['localauthority', 'x509', 'activate', '-authorityID', prepared]);
    const fresh = await until(
      'payment’s agent to issue an SVID from the new CA',
      () => svidOf('payment'),
      (s) => s.issuer !== oldIssuer,
      45_000,
    );
    // The database accepts it: without the reload, its ssl_ca_file would know only the old CA.
    await loginWith(fresh, 'payment', 'payment');
    // The services themselves keep working across the rotation.
    for (let i = 0; i < 3; i++) assert.equal((await placeOrder()).status, 'confirmed');
  });
});
