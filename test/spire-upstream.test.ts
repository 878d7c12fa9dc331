// The other trust bridge of docs/migration.md: SPIRE's CA signed by the
// static certificates' CA (UpstreamAuthority "disk"), so SVIDs and static
// certificates chain to one root, and a static-mode service and SPIFFE-mode
// services accept each other with no bridge file at all.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { createDevCerts, type Shop } from '../scripts/shop.ts';
import { startSpiffeShop, startSpire, SERVICES, type SpireWorld } from './support/spire-shop.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'tools', 'spiffe-auth', 'src', 'cli', 'main.ts');
const pems = (text: string): string[] => text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];

describe('SPIRE with the static CA as its UpstreamAuthority', () => {
  let dir: string;
  let world: SpireWorld | undefined;
  let shop: Shop | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spire-upstream-'));
    // The static CA must allow one CA below it (SPIRE's): spiffe-auth's default pathLen 0 would not.
    await run(process.execPath, [
      CLI,
      'ca',
      'create',
      '--trust-domain',
      'example.org',
      '--out-dir',
      join(dir, 'static'),
      '--path-len',
      '1',
    ]);
    await createDevCerts(join(dir, 'static'), true);
    await createDevCerts(join(dir, 'stranger'), true);
    world = await startSpire({
      nodes: SERVICES,
      upstreamAuthority: { certFile: join(dir, 'static', 'ca.crt.pem'), keyFile: join(dir, 'static', 'ca.key.pem') },
    });
    await world.register(300);
    const s = join(dir, 'static');
    // inventory and payment on SPIRE; order on its static files, trusting only the static CA.
    shop = await startSpiffeShop(world, {
      order: {
        SPIFFE_ENDPOINT_SOCKET: '',
        TLS_CERT_FILE: join(s, 'order.crt.pem'),
        TLS_KEY_FILE: join(s, 'order.key.pem'),
        TLS_CA_FILE: join(s, 'ca.crt.pem'),
      },
    });
  });
  after(async () => {
    await shop?.stopAll();
    await world?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("SPIRE's bundle is the static root: one root for both kinds of certificate", async () => {
    const bundle = pems(await (world ?? assert.fail('no SPIRE')).spire.bundlePem());
    const staticRoot = new X509Certificate(await readFile(join(dir, 'static', 'ca.crt.pem')));
    assert.deepEqual(
      bundle.map((p) => new X509Certificate(p).fingerprint256),
      [staticRoot.fingerprint256],
    );
  });

  test('an order goes through between a static-mode order and SPIFFE-mode inventory and payment, with no bridge file', async () => {
    const the = shop ?? assert.fail('no shop');
    const res = await request(`${the.orderUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-a', quantity: 1 }] }),
    });
    const body = (await res.body.json()) as { status?: string };
    assert.equal(res.statusCode, 201, JSON.stringify(body));
    assert.equal(body.status, 'confirmed', JSON.stringify(body));
    const log = await readFile(the.logFile('order'), 'utf8');
    assert.match(log, /identity from static files/);
  });

  test('payment (SPIFFE) accepts the static order certificate, and refuses the same ID from another CA', async () => {
    const the = shop ?? assert.fail('no shop');
    const port = the.ports.payment;
    const call = async (certsDir: string): Promise<number> => {
      const dispatcher = new Agent({
        connect: {
          cert: await readFile(join(certsDir, 'order.crt.pem')),
          key: await readFile(join(certsDir, 'order.key.pem')),
          // A test client: it only shows what payment does with this certificate.
          rejectUnauthorized: false,
        },
      });
      try {
        const res = await request(`https://127.0.0.1:${String(port)}/api/payments?order_id=none`, { dispatcher });
        await res.body.dump();
        return res.statusCode;
      } finally {
        await dispatcher.close();
      }
    };
    assert.equal(await call(join(dir, 'static')), 404);
    assert.equal(await call(join(dir, 'stranger')), 401);
  });
});
