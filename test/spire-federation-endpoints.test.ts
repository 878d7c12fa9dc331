// Federation through SPIFFE bundle endpoints on real SPIRE: the shop
// (example.org) and partner.example each run SPIRE with a bundle endpoint and
// federate with each other (spire/local/federation.conf), bootstrapped once
// by hand as the SPIFFE Federation standard says; edge.example is a Node
// service with no SPIRE at all (file identity + this library's bundle
// endpoint server and client). The partner rotates its CA while its workload
// keeps reading stock from inventory: nobody on our side acts, and the time
// from the rotation to our trust update is reported against the refresh hint.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { request, type Dispatcher } from 'undici';
import {
  authorizeId,
  BundleEndpointServer,
  createIdentitySource,
  FederatedSource,
  FileIdentitySource,
  X509Bundle,
  type IdentitySource,
} from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { CertificateAuthority } from '@shop/auth-testing';
import { ROOT, type Shop } from '../scripts/shop.ts';
import { applyEntries, loadEntries } from '../scripts/spire/register.ts';
import {
  freePort,
  SERVICES,
  startSpiffeShop,
  startSpire,
  type SpireWorld,
  type SpireWorldOptions,
} from './support/spire-shop.ts';

const OURS = 'example.org';
const PARTNER = 'partner.example';
const EDGE = 'edge.example';
const INVENTORY = `spiffe://${OURS}/inventory`;
const READER = `spiffe://${PARTNER}/reader`;
const EDGE_READER = `spiffe://${EDGE}/reader`;
const EDGE_OTHER = `spiffe://${EDGE}/other`;
const EDGE_ENDPOINT = `spiffe://${EDGE}/bundle-endpoint`;
// SPIRE's smallest refresh hint; its bundle client polls at a quarter of the hint it is served.
const REFRESH_HINT_S = 60;
// Short, so partner SVIDs are renewed (at half their life) soon after the new CA is activated.
const PARTNER_SVID_TTL = 30;

let ours: SpireWorld;
let partner: SpireWorld;
let shop: Shop;
let inventoryView: IdentitySource;
let partnerReader: { source: IdentitySource; http: Dispatcher };
let edge: {
  dir: string;
  ca: CertificateAuthority;
  endpoint: BundleEndpointServer;
  endpointSource: FileIdentitySource;
  reader: FederatedSource;
  http: Dispatcher;
};
const cleanups: (() => unknown)[] = [];

async function until<T>(what: string, fn: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** startWorld starts a SPIRE deployment in a directory removed in after() (one retry if a port was taken meanwhile). */
async function startWorld(o: SpireWorldOptions): Promise<SpireWorld> {
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'spire-fed-ep-'));
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

/** bootstrap gives `to` the current bundle of `from` once, out of band (`bundle show` → `bundle set`), and has it fetch at once. */
async function bootstrap(to: SpireWorld, trustDomain: string, spiffeBundleJson: string): Promise<void> {
  const file = join(to.dir, `bootstrap-${trustDomain}.json`);
  await writeFile(file, spiffeBundleJson);
  await to.spire.cli(['bundle', 'set', '-format', 'spiffe', '-id', `spiffe://${trustDomain}`, '-path', file]);
  // SPIRE retries a relationship that had no bundle only every minute; this starts polling now.
  await to.spire.cli(['federation', 'refresh', '-id', `spiffe://${trustDomain}`]);
}

/** bundleDersOf lists the DER (base64) of the X.509 authorities a server holds for a trust domain. */
async function spireBundleOf(world: SpireWorld, trustDomain: string): Promise<string[]> {
  const pem = await world.spire.cli(['bundle', 'list', '-id', `spiffe://${trustDomain}`, '-format', 'pem']);
  return (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
    .map((c) => new X509Certificate(c).raw.toString('base64'))
    .sort();
}

const pemDers = (pem: string): string[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
    .map((c) => new X509Certificate(c).raw.toString('base64'))
    .sort();

const heldBy = (source: IdentitySource, trustDomain: string): string[] =>
  (source.getX509Bundles().get(trustDomain)?.authorities ?? []).map((c) => c.raw.toString('base64')).sort();

async function readStock(dispatcher: Dispatcher): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`https://127.0.0.1:${shop.ports.inventory}/api/stock/sku-a`, { dispatcher });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

/** startEdge makes edge.example: its CA, file identities, and our library's bundle endpoint server. */
async function startEdge(): Promise<typeof edge> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const ca = await CertificateAuthority.createRoot({ subject: `CN=${EDGE} CA`, uris: [`spiffe://${EDGE}`] });
  const files = async (name: string, id: string): Promise<{ certFile: string; keyFile: string; caFile: string }> => {
    const issued = await ca.issueSvid(id, { ttlSeconds: 3600 });
    const f = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`), caFile: join(dir, 'ca.pem') };
    await writeFile(f.certFile, issued.certPem);
    await writeFile(f.keyFile, issued.keyPem);
    return f;
  };
  await writeFile(join(dir, 'ca.pem'), ca.certPem);
  const endpointSource = await FileIdentitySource.create({
    ...(await files('endpoint', EDGE_ENDPOINT)),
    reloadIntervalMs: 200,
  });
  cleanups.push(() => endpointSource.close());
  const endpoint = new BundleEndpointServer({
    trustDomain: EDGE,
    bundleSource: endpointSource,
    profile: { type: 'https_spiffe', svidSource: endpointSource, events: endpointSource },
    refreshHintSeconds: REFRESH_HINT_S,
    port: await freePort(),
  });
  await endpoint.listen();
  cleanups.push(() => endpoint.close());
  return { dir, ca, endpoint, endpointSource } as typeof edge;
}

/** edgeWorkload is a Node workload of edge.example: file identity, and example.org's bundle fetched from its SPIRE's endpoint. */
async function edgeWorkload(name: string, id: string): Promise<{ source: FederatedSource; http: Dispatcher }> {
  const issued = await edge.ca.issueSvid(id, { ttlSeconds: 3600 });
  const certFile = join(edge.dir, `${name}.crt`);
  const keyFile = join(edge.dir, `${name}.key`);
  await writeFile(certFile, issued.certPem);
  await writeFile(keyFile, issued.keyPem);
  const inner = await FileIdentitySource.create({ certFile, keyFile, caFile: join(edge.dir, 'ca.pem') });
  const source = await FederatedSource.create({
    inner,
    federatesWith: [
      {
        trustDomain: OURS,
        url: ours.spire.bundleEndpointUrl ?? '',
        // Bootstrapped once with the bundle SPIRE exports; later fetches are verified with the latest fetched one.
        profile: {
          type: 'https_spiffe',
          endpointSpiffeId: ours.spire.serverId,
          bundle: X509Bundle.fromPem(OURS, await ours.spire.bundlePem()),
        },
      },
    ],
  });
  cleanups.push(() => source.close());
  const http = createMtlsDispatcher({ source, authorize: authorizeId(INVENTORY) });
  cleanups.push(() => http.close());
  return { source, http };
}

before(
  async () => {
    edge = await startEdge();
    const [oursPort, partnerPort] = [await freePort(), await freePort()];
    const [o, p] = await Promise.allSettled([
      startWorld({
        nodes: SERVICES,
        federation: {
          bundleEndpointPort: oursPort,
          refreshHint: `${String(REFRESH_HINT_S)}s`,
          federatesWith: [
            {
              trustDomain: PARTNER,
              url: `https://127.0.0.1:${String(partnerPort)}/`,
              endpointSpiffeId: `spiffe://${PARTNER}/spire/server`,
            },
            { trustDomain: EDGE, url: edge.endpoint.url, endpointSpiffeId: EDGE_ENDPOINT },
          ],
        },
      }),
      startWorld({
        nodes: ['reader'],
        trustDomain: PARTNER,
        x509SvidTtl: `${String(PARTNER_SVID_TTL)}s`,
        federation: {
          bundleEndpointPort: partnerPort,
          refreshHint: `${String(REFRESH_HINT_S)}s`,
          federatesWith: [
            {
              trustDomain: OURS,
              url: `https://127.0.0.1:${String(oursPort)}/`,
              endpointSpiffeId: `spiffe://${OURS}/spire/server`,
            },
          ],
        },
      }),
    ]);
    if (o.status === 'rejected') throw o.reason;
    if (p.status === 'rejected') throw p.reason;
    ours = o.value;
    partner = p.value;

    // The one out-of-band step per relationship (SPIFFE Federation §5.2.2.2): the first bundle.
    await bootstrap(ours, PARTNER, await partner.spire.cli(['bundle', 'show', '-format', 'spiffe']));
    await bootstrap(partner, OURS, await ours.spire.cli(['bundle', 'show', '-format', 'spiffe']));
    await bootstrap(ours, EDGE, edge.endpoint.body());

    await ours.register(300);
    const entry = await ours.entryOf(INVENTORY);
    await ours.spire.updateEntry(entry.id, { ...entry, federates_with: [`spiffe://${PARTNER}`, `spiffe://${EDGE}`] });
    await applyEntries(
      partner.spire,
      await loadEntries(
        { TD: PARTNER, UID: partner.uid, SVID_TTL: String(PARTNER_SVID_TTL) },
        join(ROOT, 'spire', 'local', 'partner-entries.json'),
      ),
    );

    shop = await startSpiffeShop(ours, { inventory: { PARTNER_STOCK_READERS: `${READER},${EDGE_READER}` } });
    cleanups.push(() => shop.stopAll());
    inventoryView = await createIdentitySource({
      env: { SPIFFE_ENDPOINT_SOCKET: ours.spire.agentAddress('inventory') },
    });
    cleanups.push(() => inventoryView.close());
    const readerSource = await createIdentitySource({
      env: { SPIFFE_ENDPOINT_SOCKET: partner.spire.agentAddress('reader') },
    });
    cleanups.push(() => readerSource.close());
    const http = createMtlsDispatcher({ source: readerSource, authorize: authorizeId(INVENTORY) });
    cleanups.push(() => http.close());
    partnerReader = { source: readerSource, http };
    edge.reader = (await edgeWorkload('reader', EDGE_READER)).source;
    edge.http = createMtlsDispatcher({ source: edge.reader, authorize: authorizeId(INVENTORY) });
    cleanups.push(() => edge.http.close());

    await until(
      'inventory to be given the partner and edge bundles',
      () =>
        inventoryView
          .getX509Bundles()
          .trustDomains()
          .map((t) => t.name),
      (tds) => tds.includes(PARTNER) && tds.includes(EDGE),
      60_000,
    );
    await until(
      'the partner reader to be given the example.org bundle',
      () => heldBy(partnerReader.source, OURS).length,
      (n) => n > 0,
      60_000,
    );
    await until(
      'inventory to serve the partner',
      () => readStock(partnerReader.http),
      (a) => a.status === 200,
    );
  },
  { timeout: 180_000 },
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

describe('federation through bundle endpoints on real SPIRE', () => {
  test('each SPIRE server holds the bundle the other serves at its endpoint; the partner and edge readers read stock', async () => {
    assert.deepEqual(await spireBundleOf(ours, PARTNER), pemDers(await partner.spire.bundlePem()));
    assert.deepEqual(await spireBundleOf(partner, OURS), pemDers(await ours.spire.bundlePem()));
    assert.deepEqual(heldBy(inventoryView, PARTNER), pemDers(await partner.spire.bundlePem()));
    const read = await readStock(partnerReader.http);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.product_id, 'sku-a');
  });

  test('a Node service with no SPIRE (edge.example) federates with example.org: SPIRE fetched its bundle from our endpoint server, and our client fetched example.org from SPIRE', async () => {
    assert.deepEqual(await spireBundleOf(ours, EDGE), [edge.ca.certDer.toString('base64')]);
    assert.deepEqual(heldBy(edge.reader, OURS), pemDers(await ours.spire.bundlePem()));
    const read = await readStock(edge.http);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    // Control: another edge workload, verified as well, is not on inventory's list.
    const other = await edgeWorkload('other', EDGE_OTHER);
    const refused = await readStock(other.http);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.caller, EDGE_OTHER);
  });

  test('partner.example rotates its CA while its reader keeps reading stock: our side trusts the new CA with nobody acting', async (t: TestContext) => {
    const statuses = new Map<number, number>();
    const state = { reading: true };
    const loop = (async () => {
      while (state.reading) {
        const { status } = await readStock(partnerReader.http).catch(() => ({ status: 0 }));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    try {
      const before = heldBy(inventoryView, PARTNER);
      const prepared = await partner.spire.cli(['localauthority', 'x509', 'prepare', '-output', 'json']);
      const rotatedAt = Date.now();
      const authorityId = /"authority_id":\s*"([^"]+)"/.exec(prepared)?.[1];
      assert.ok(authorityId, `no authority_id in ${prepared}`);
      const published = pemDers(await partner.spire.bundlePem());
      assert.equal(published.length, before.length + 1, 'the prepared CA is published in the partner bundle at once');

      await until(
        'example.org SPIRE to fetch the new partner bundle',
        () => spireBundleOf(ours, PARTNER),
        (b) => b.join() === published.join(),
        90_000,
      );
      const spireAt = Date.now();
      await until(
        'inventory to hold the new partner bundle',
        () => heldBy(inventoryView, PARTNER),
        (b) => b.join() === published.join(),
        30_000,
      );
      const trustedAt = Date.now();
      const seconds = (ms: number): string => (ms / 1000).toFixed(1);
      t.diagnostic(
        `partner CA rotation → example.org SPIRE ${seconds(spireAt - rotatedAt)} s → inventory's Workload API ${seconds(trustedAt - rotatedAt)} s; refresh hint ${String(REFRESH_HINT_S)} s (SPIRE polls every ${String(REFRESH_HINT_S / 4)} s)`,
      );
      assert.ok(trustedAt - rotatedAt < REFRESH_HINT_S * 1000, 'trust follows within one refresh hint');

      // The partner now issues from the new CA; its reader's next SVID chains to it, and inventory accepts it.
      const oldSvid = partnerReader.source.getX509Svid();
      await partner.spire.cli(['localauthority', 'x509', 'activate', '-authorityID', authorityId]);
      const newSvid = await until(
        'the partner reader to get an SVID from the new CA',
        () => partnerReader.source.getX509Svid(),
        (s) => s !== oldSvid && !heldIssuer(s.chainDer().at(-1), before),
        PARTNER_SVID_TTL * 1000 + 30_000,
      );
      assert.ok(newSvid);
      const read = await readStock(partnerReader.http);
      assert.equal(read.status, 200, JSON.stringify(read.body));
    } finally {
      state.reading = false;
      await loop;
    }
    t.diagnostic(`reads during the rotation: ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.deepEqual([...statuses.keys()], [200], 'every read during the rotation succeeded');
  });

  test('edge.example rotates its CA (a file change): example.org SPIRE fetches it from our endpoint server with nobody acting', async (t: TestContext) => {
    const next = await CertificateAuthority.createRoot({ subject: `CN=${EDGE} CA 2`, uris: [`spiffe://${EDGE}`] });
    await writeFile(join(edge.dir, 'ca.pem'), edge.ca.certPem + next.certPem);
    const rotatedAt = Date.now();
    const want = [edge.ca.certDer, next.certDer].map((d) => d.toString('base64')).sort();
    await until(
      'example.org SPIRE to fetch the new edge bundle',
      () => spireBundleOf(ours, EDGE),
      (b) => b.join() === want.join(),
      90_000,
    );
    const fetchedAt = Date.now();
    await until(
      'inventory to hold it',
      () => heldBy(inventoryView, EDGE),
      (b) => b.join() === want.join(),
      30_000,
    );
    t.diagnostic(
      `edge CA rotation → example.org SPIRE ${((fetchedAt - rotatedAt) / 1000).toFixed(1)} s → inventory ${((Date.now() - rotatedAt) / 1000).toFixed(1)} s; refresh hint ${String(REFRESH_HINT_S)} s`,
    );
    assert.equal((await readStock(edge.http)).status, 200);
  });
});

/** heldIssuer tells whether the last certificate of a chain was issued by one of `authorities` (base64 DER). */
function heldIssuer(last: Buffer | undefined, authorities: readonly string[]): boolean {
  if (last === undefined) return false;
  const cert = new X509Certificate(last);
  return authorities.some((a) => cert.checkIssued(new X509Certificate(Buffer.from(a, 'base64'))));
}
