// The shop (example.org) federated with a partner trust domain
// (partner.example) on two real SPIRE deployments, bundles exchanged with the
// SPIRE CLI: inventory lets the one partner workload named in
// PARTNER_STOCK_READERS read stock, over HTTP and gRPC, and nothing else. A
// certificate claiming that partner ID but signed by our own CA, or any
// partner once its bundle is gone, is not even authenticated.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Agent, request, type Dispatcher } from 'undici';
import { authorizeId, createIdentitySource, type IdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { grpcChannelCredentials } from '@shop/auth/grpc';
import { CertificateAuthority } from '@shop/auth-testing';
import { createInventoryGrpcClient, inventoryErrorCode, type InventoryGrpcClient } from '@shop/contracts';
import { ROOT, type Shop } from '../scripts/shop.ts';
import { applyEntries, loadEntries } from '../scripts/spire/register.ts';
import { SERVICES, startSpiffeShop, startSpire, type SpireWorld } from './support/spire-shop.ts';

const OURS = 'example.org';
const PARTNER = 'partner.example';
const INVENTORY = `spiffe://${OURS}/inventory`;
const ORDER = `spiffe://${OURS}/order`;
const READER = `spiffe://${PARTNER}/reader`;
const OTHER_READER = `spiffe://${PARTNER}/other-reader`;
const SVID_TTL = 300;

/** Caller is a workload in the test process, on its own agent's Workload API. */
interface Caller {
  source: IdentitySource;
  http: Dispatcher;
  grpc: InventoryGrpcClient;
}

let ours: SpireWorld;
let partner: SpireWorld;
let shop: Shop;
/** inventoryView is what inventory's agent hands out, watched from the test process. */
let inventoryView: IdentitySource;
const callers = new Map<string, Caller>();
// Undone last first in after(), also when before() failed half way.
const cleanups: (() => unknown)[] = [];

async function until<T>(what: string, fn: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * startWorld starts a SPIRE deployment in a directory of ours, removed in
 * after() also when the start fails. startSpire checks its health ports are
 * free but cannot hold them: when another process takes one in between, the
 * SPIRE process logs "address already in use", serves no health checks, and
 * the start times out. Only then, one more try with fresh ports.
 */
async function startWorld(o: { nodes: string[]; trustDomain?: string }): Promise<SpireWorld> {
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'spire-federation-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    try {
      const world = await startSpire({ ...o, dir });
      cleanups.push(() => world.stop());
      return world;
    } catch (err) {
      const logs = await readdir(join(dir, 'logs')).catch(() => []);
      const texts = await Promise.all(logs.map((f) => readFile(join(dir, 'logs', f), 'utf8')));
      if (attempt > 1 || !texts.some((t) => t.includes('address already in use'))) throw err;
    }
  }
}

const trustDomainsOf = (source: IdentitySource): string[] =>
  source
    .getX509Bundles()
    .trustDomains()
    .map((td) => td.name);

/** exchangeBundle gives `to` the bundle of `from`'s trust domain, as `spire-server bundle set` does by hand. */
async function exchangeBundle(from: SpireWorld, to: SpireWorld): Promise<void> {
  const file = join(to.dir, `bundle-of-${from.spire.trustDomain}.json`);
  await writeFile(file, await from.spire.cli(['bundle', 'show', '-format', 'spiffe']));
  await to.spire.cli([
    'bundle',
    'set',
    '-format',
    'spiffe',
    '-id',
    `spiffe://${from.spire.trustDomain}`,
    '-path',
    file,
  ]);
}

async function workload(world: SpireWorld, node: string): Promise<IdentitySource> {
  const source = await createIdentitySource({ env: { SPIFFE_ENDPOINT_SOCKET: world.spire.agentAddress(node) } });
  cleanups.push(() => source.close());
  return source;
}

async function caller(world: SpireWorld, node: string): Promise<Caller> {
  const source = await workload(world, node);
  const http = createMtlsDispatcher({ source, authorize: authorizeId(INVENTORY) });
  cleanups.push(() => http.close());
  const client = createInventoryGrpcClient(
    `127.0.0.1:${shop.ports.inventoryGrpc}`,
    grpcChannelCredentials(source, authorizeId(INVENTORY)),
  );
  cleanups.push(() => {
    client.close();
  });
  return { source, http, grpc: client };
}

function as(id: string): Caller {
  const c = callers.get(id);
  assert.ok(c, `no caller ${id}`);
  return c;
}

interface Answer {
  status: number;
  body: { code?: string; message?: string; caller?: string | null; rule?: string; product_id?: string };
}

async function call(dispatcher: Dispatcher, method: 'GET' | 'POST', path: string, body?: object): Promise<Answer> {
  const res = await request(`https://127.0.0.1:${shop.ports.inventory}${path}`, {
    method,
    dispatcher,
    ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Answer['body'] };
}

async function rejectsWith(pending: Promise<unknown>, status: grpc.status, code: string): Promise<void> {
  await assert.rejects(pending, (err: grpc.ServiceError) => {
    assert.equal(err.code, status, `${grpc.status[err.code]}: ${err.details}`);
    assert.equal(inventoryErrorCode(err), code);
    return true;
  });
}

/**
 * exampleOrgCa is the example.org SPIRE server's own X.509 CA, key included:
 * the disk KeyManager keeps the CA key in keys.json in the server's data
 * directory, and the bundle certificate with the same public key is its
 * certificate. (`spire-server x509 mint` refuses IDs of other trust domains.)
 */
async function exampleOrgCa(world: SpireWorld): Promise<CertificateAuthority> {
  const { keys } = JSON.parse(await readFile(join(world.dir, 'server', 'keys.json'), 'utf8')) as {
    keys: Record<string, string>;
  };
  const certs = (await world.spire.bundlePem()).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
  for (const certPem of certs ?? []) {
    const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
    for (const der of Object.values(keys)) {
      const key = createPrivateKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'pkcs8' });
      if (createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(spki)) {
        return CertificateAuthority.fromPem(certPem, key.export({ type: 'pkcs8', format: 'pem' }).toString());
      }
    }
  }
  throw new Error(`no key in ${world.dir}/server/keys.json belongs to a certificate of the ${OURS} bundle`);
}

/** presenting is a plain undici Agent that shows `cert` and verifies nothing itself. */
function presenting(cert: { certPem: string; keyPem: string }): Agent {
  const agent = new Agent({ connect: { cert: cert.certPem, key: cert.keyPem, rejectUnauthorized: false } });
  cleanups.push(() => agent.close());
  return agent;
}

before(
  async () => {
    const [o, p] = await Promise.allSettled([
      startWorld({ nodes: SERVICES }),
      startWorld({ nodes: ['reader', 'other-reader'], trustDomain: PARTNER }),
    ]);
    if (o.status === 'rejected') throw o.reason;
    if (p.status === 'rejected') throw p.reason;
    ours = o.value;
    partner = p.value;

    // Federation by hand, both ways: each server stores the other's bundle.
    await exchangeBundle(ours, partner);
    await exchangeBundle(partner, ours);
    await ours.register(SVID_TTL);
    const entry = await ours.entryOf(INVENTORY);
    await ours.spire.updateEntry(entry.id, { ...entry, federates_with: [`spiffe://${PARTNER}`] });
    await applyEntries(
      partner.spire,
      await loadEntries(
        { TD: PARTNER, UID: partner.uid, SVID_TTL: String(SVID_TTL) },
        join(ROOT, 'spire', 'local', 'partner-entries.json'),
      ),
    );

    shop = await startSpiffeShop(ours, { inventory: { PARTNER_STOCK_READERS: READER } });
    cleanups.push(() => shop.stopAll());
    inventoryView = await workload(ours, 'inventory');
    callers.set(READER, await caller(partner, 'reader'));
    callers.set(OTHER_READER, await caller(partner, 'other-reader'));
    callers.set(ORDER, await caller(ours, 'order'));

    // Entries reach the agents on their next sync with the server.
    await until(
      'inventory to be given the partner bundle',
      () => trustDomainsOf(inventoryView),
      (tds) => tds.includes(PARTNER),
    );
    for (const id of [READER, OTHER_READER]) {
      await until(
        `${id} to be given the ${OURS} bundle`,
        () => trustDomainsOf(as(id).source),
        (tds) => tds.includes(OURS),
      );
    }
    // The inventory process gets the same update from the same agent, a moment later at most.
    await until(
      'inventory to authenticate the partner',
      () => call(as(READER).http, 'GET', '/api/stock/sku-a'),
      (a) => a.status !== 401,
    );
  },
  { timeout: 90_000 },
);

after(
  async () => {
    const results = await Promise.allSettled(cleanups.reverse().map((c) => Promise.resolve().then(c)));
    assert.deepEqual(
      results.filter((r) => r.status === 'rejected'),
      [],
    );
  },
  { timeout: 60_000 },
);

describe('federation with partner.example on real SPIRE', () => {
  test('each workload gets its own SPIFFE ID; inventory holds the partner bundle', () => {
    for (const id of [READER, OTHER_READER, ORDER]) assert.equal(as(id).source.getX509Svid().id.toString(), id);
    assert.equal(inventoryView.getX509Svid().id.toString(), INVENTORY);
    assert.deepEqual(trustDomainsOf(inventoryView), [OURS, PARTNER]);
  });

  test('the named partner reads stock over HTTP (200) and gRPC; the other partner workload gets 403 / PERMISSION_DENIED', async () => {
    const reader = as(READER);
    const read = await call(reader.http, 'GET', '/api/stock/sku-a');
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.product_id, 'sku-a');
    assert.equal((await reader.grpc.getStock({ product_id: 'sku-a' })).product_id, 'sku-a');

    const other = as(OTHER_READER);
    const refused = await call(other.http, 'GET', '/api/stock/sku-a');
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'AUTH_ERR_PEER_UNAUTHORIZED');
    assert.equal(refused.body.caller, OTHER_READER);
    assert.equal(refused.body.rule, `member of trust domain ${OURS} or ID is one of [${READER}]`);
    await rejectsWith(
      other.grpc.getStock({ product_id: 'sku-a' }),
      grpc.status.PERMISSION_DENIED,
      'AUTH_ERR_PEER_UNAUTHORIZED',
    );
  });

  test('the named partner gets 403 on reserve and the catalogue, PERMISSION_DENIED on Reserve and ListProducts; order still reserves', async () => {
    const reader = as(READER);
    const reserve = await call(reader.http, 'POST', '/api/stock/sku-a/reserve', { quantity: 1, order_id: 'fed-1' });
    assert.equal(reserve.status, 403, JSON.stringify(reserve.body));
    assert.equal(reserve.body.code, 'AUTH_ERR_PEER_UNAUTHORIZED');
    const catalogue = await call(reader.http, 'GET', '/api/products');
    assert.equal(catalogue.status, 403, JSON.stringify(catalogue.body));
    await rejectsWith(
      reader.grpc.reserve({ product_id: 'sku-a', quantity: 1, order_id: 'fed-2' }),
      grpc.status.PERMISSION_DENIED,
      'AUTH_ERR_PEER_UNAUTHORIZED',
    );
    await rejectsWith(reader.grpc.listProducts(), grpc.status.PERMISSION_DENIED, 'AUTH_ERR_PEER_UNAUTHORIZED');
    assert.equal((await reader.grpc.getStock({ product_id: 'sku-a' })).reserved, 0, 'no refused call reserved');
    // Positive control: the order service's own reserve goes through.
    const ordered = await call(as(ORDER).http, 'POST', '/api/stock/sku-a/reserve', { quantity: 1, order_id: 'fed-1' });
    assert.equal(ordered.status, 201, JSON.stringify(ordered.body));
  });

  test('a certificate claiming the partner ID but signed by the example.org CA is refused: 401 AUTH_ERR_PEER_UNVERIFIED', async () => {
    const ca = await exampleOrgCa(ours);
    // Positive control: the same CA's certificate for one of our own IDs is accepted, so the CA and the leaf are sound.
    const ownId = presenting(await ca.issueSvid(`spiffe://${OURS}/payment`));
    const accepted = await call(ownId, 'GET', '/api/stock/sku-a');
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));

    const forged = presenting(await ca.issueSvid(READER));
    const refused = await call(forged, 'GET', '/api/stock/sku-a');
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'AUTH_ERR_PEER_UNVERIFIED');
    assert.equal(refused.body.caller, null);
    assert.match(refused.body.message ?? '', /spiffe:\/\/partner\.example\/reader/);
    // The genuine partner workload, signed by partner.example's CA, still reads.
    assert.equal((await call(as(READER).http, 'GET', '/api/stock/sku-a')).status, 200);
  });

  test('without the partner bundle the named partner is refused (401, UNAUTHENTICATED); our own workloads still read', async () => {
    const reader = as(READER);
    assert.equal((await call(reader.http, 'GET', '/api/stock/sku-a')).status, 200, 'positive control, federated');

    // "dissociate" also drops the federation from inventory's entry; the default ("restrict") refuses to delete a bundle an entry federates with.
    await ours.spire.cli(['bundle', 'delete', '-id', `spiffe://${PARTNER}`, '-mode', 'dissociate']);
    assert.deepEqual((await ours.entryOf(INVENTORY)).federates_with, []);
    await until(
      'inventory to lose the partner bundle',
      () => trustDomainsOf(inventoryView),
      (tds) => !tds.includes(PARTNER),
    );

    const refused = await until(
      'inventory to refuse the partner',
      () => call(reader.http, 'GET', '/api/stock/sku-a'),
      (a) => a.status !== 200,
    );
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'AUTH_ERR_PEER_UNVERIFIED');
    assert.match(refused.body.message ?? '', /no X\.509 bundle for its trust domain "partner\.example"/);
    await rejectsWith(
      reader.grpc.getStock({ product_id: 'sku-a' }),
      grpc.status.UNAUTHENTICATED,
      'AUTH_ERR_PEER_UNVERIFIED',
    );
    // Positive control: the order service, of our own trust domain, still reads.
    assert.equal((await call(as(ORDER).http, 'GET', '/api/stock/sku-a')).status, 200);
    assert.equal((await as(ORDER).grpc.getStock({ product_id: 'sku-a' })).product_id, 'sku-a');
  });
});
