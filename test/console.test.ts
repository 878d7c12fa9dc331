// The console in a real browser (Debian's chromium, driven by playwright-core)
// beside a real shop in files mode: what a person sees on the page.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningConsole } from '@shop/console';
import { createDevCerts, freePort, freePorts, ROOT, Shop, type ServiceName } from '../scripts/shop.ts';
import { EXPIRING_TTL, otelEnv, startShopConsole } from '../scripts/shop-console.ts';
import { newTally, runTraffic } from '../scripts/traffic.ts';
import { openConsole, seconds, tabTo, textOf, type ConsoleBrowser } from './support/console-browser.ts';

const TD = 'example.org';
const ORDER_ID = `spiffe://${TD}/order`;

let dir: string;
let shop: Shop;
let running: RunningConsole;
const traffic = new AbortController();
let trafficDone: Promise<void>;
const browsers: ConsoleBrowser[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'console-test-'));
  const certsDir = join(dir, 'certs');
  await createDevCerts(certsDir, true);
  // The services export their spans to the console, as npm start sets it up (batches every 200 ms here).
  const consolePort = await freePort();
  const otel = (name: ServiceName): Record<string, string> => ({
    ...otelEnv(`http://127.0.0.1:${consolePort}`, {}),
    OTEL_SERVICE_NAME: name,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  shop = new Shop({
    dataDir: dir,
    certsDir,
    ports: await freePorts(),
    env: {
      inventory: { SEED_FILE: join(ROOT, 'scripts', 'demo-catalogue.json'), ...otel('inventory') },
      payment: { PAYMENT_FAILURE_RATE: '0', ...otel('payment') },
      order: otel('order'),
    },
  });
  running = await startShopConsole({ shop, mode: 'files', certsDir, port: consolePort, trustDomain: TD, pollMs: 500 });
  await shop.startAll();
  trafficDone = runTraffic({ url: shop.orderUrl, concurrency: 1, signal: traffic.signal }, newTally());
});

// Everything started here is stopped here, also when a test failed.
after(async () => {
  traffic.abort();
  await trafficDone;
  for (const b of browsers) await b.close();
  await running.close();
  await shop.stopAll();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  shop.killAllNow();
});

async function browser(): Promise<ConsoleBrowser> {
  const b = await openConsole(running.url);
  browsers.push(b);
  return b;
}

describe('the console in chromium (files mode)', () => {
  test('two edges, order → inventory and order → payment, labelled with order’s SPIFFE ID and its allow rule, with rates; each service’s identity mode, ID, serial, trust roots and a countdown that goes down', async () => {
    const { page } = await browser();
    const edges = page.getByRole('list', { name: 'Edges' });
    for (const to of ['inventory', 'payment']) {
      const edge = edges.getByRole('listitem').filter({ hasText: `order → ${to}` });
      const text = await textOf(edge);
      assert.match(text, new RegExp(`caller ${ORDER_ID.replace(/[./]/g, '\\$&')}`));
      assert.match(
        text,
        /rule .*(ID is one of \[spiffe:\/\/example\.org\/order\]|member of trust domain example\.org)/,
      );
      assert.match(text, /allow \d+(\.\d)?\/s \(\d+ total\)/);
      assert.match(text, /from shop_authz_decisions_total at GET http:\/\/127\.0\.0\.1:\d+\/metrics/);
    }
    // Only the callers that exist: no edge into order (its public API has no mTLS callers).
    assert.equal(await edges.getByRole('listitem').filter({ hasText: '→ order' }).count(), 0);

    for (const name of ['order', 'payment', 'inventory']) {
      const card = page.getByRole('article', { name: `service ${name}` });
      const text = await textOf(card);
      assert.match(text, /identity mode\s*files/);
      assert.match(text, new RegExp(`SPIFFE ID\\s*spiffe://example\\.org/${name}`));
      assert.match(text, /SVID serial\s*[0-9A-F]{8}/);
      assert.match(text, /trust roots\s*example\.org: 1 root/);
    }
    const countdown = page.getByLabel('payment SVID expires in');
    // The first model arrives within a poll: wait for a countdown with digits.
    await page
      .getByLabel('payment SVID expires in')
      .filter({ hasText: /\d\d:\d\d:\d\d/ })
      .waitFor();
    const first = seconds(await textOf(countdown));
    await page.waitForTimeout(2200);
    const second = seconds(await textOf(countdown));
    assert.ok(first > 29 * 86_400, `a fresh dev certificate lives 30 days, the page says ${first} s`);
    assert.ok(second < first && second >= first - 4, `the countdown went from ${first} s to ${second} s`);
  });

  test('forged certificate: no deny before the toggle (positive control); after Tab + Enter on it, inventory shows a deny from an unauthenticated caller; SPIFFE-only toggles not available; payment knobs', async () => {
    const b = await browser();
    const { page } = b;
    const edges = page.getByRole('list', { name: 'Edges' });
    await textOf(edges.getByRole('listitem').filter({ hasText: 'order → inventory' }));
    for (const t of await edges.getByRole('listitem').allTextContents())
      assert.match(t, /deny 0\.0\/s \(0 total\)/, `before the toggle no edge has a deny: ${t}`);
    assert.equal(await edges.getByRole('listitem').filter({ hasText: 'unauthenticated caller' }).count(), 0);

    const button = page.getByRole('button', { name: 'Present a forged certificate to inventory' });
    // The toggles are the page's first controls: one Tab reaches this one.
    await tabTo(page, button);
    await page.keyboard.press('Enter');
    const forged = page.locator('form[data-toggle="forged-certificate"]');
    await forged.getByRole('status').filter({ hasText: 'inventory answered 401' }).waitFor({ timeout: 15_000 });
    assert.match(await textOf(forged.getByRole('status')), /AUTH_ERR_PEER_UNVERIFIED/);

    const denied = edges.getByRole('listitem').filter({ hasText: 'unauthenticated caller → inventory' });
    const text = await textOf(denied);
    assert.match(text, /caller none \(no verified SPIFFE ID\)/);
    assert.match(text, /deny \d+(\.\d)?\/s \(1 total\)/);
    // Order's own edge is untouched: the forged ID never became a caller.
    assert.match(await textOf(edges.getByRole('listitem').filter({ hasText: 'order → inventory' })), /deny 0\.0\/s/);
    // Inventory's span of the refused call is listed first, marked denied, with no peer identity.
    const deniedTrace = page.locator('#traces').getByRole('article').filter({ hasText: 'denied · inventory' }).first();
    const deniedRow = deniedTrace.getByRole('row').filter({ hasText: 'inventory (server)' });
    assert.match(await textOf(deniedRow), /—\s*deny member of trust domain example\.org/);
    await b.screenshot('forged-certificate');

    // The SPIFFE-only toggles say they are not available here, and the federation one says why.
    for (const name of ['Stop payment’s SPIRE agent', 'Remove a federated bundle']) {
      const unavailable = page.getByRole('button', {
        name: new RegExp(`${name.replace(/’/g, "['’]")} \\(not available\\)`),
      });
      await unavailable.waitFor();
      assert.equal(await unavailable.isDisabled(), true, name);
    }
    // Positive control: a files-mode toggle is enabled.
    assert.equal(await page.getByRole('button', { name: /^Let payment's certificate expire$/ }).isDisabled(), false);
    assert.match(await textOf(page.locator('#desc-remove-federated-bundle')), /not available in files mode/);

    // Payment's fault knobs: the failure rate set in the form is what payment's admin endpoint reports.
    const knobs = page.locator('form[data-toggle="payment-faults"]');
    await knobs.getByLabel('Latency (ms)').fill('0');
    await knobs.getByLabel('Failure rate (0–1)').fill('0.25');
    await knobs.getByRole('button').click();
    await knobs.getByRole('status').filter({ hasText: 'payment' }).waitFor();
    assert.match(await textOf(knobs.getByRole('status')), /"failure_rate":0\.25/);
    const admin = (await (await fetch(`http://127.0.0.1:${shop.ports.paymentAdmin}/admin/faults`)).json()) as {
      failure_rate: number;
    };
    assert.equal(admin.failure_rate, 0.25);
    await fetch(`http://127.0.0.1:${shop.ports.paymentAdmin}/admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"failure_rate":0}',
    });
  });

  test(`letting payment's certificate expire (${EXPIRING_TTL}) shows a rotation on its timeline and a short countdown; renewing brings it back`, async () => {
    const b = await browser();
    const { page } = b;
    const card = page.getByRole('article', { name: 'service payment' });
    const rotations = card.getByRole('list', { name: 'payment rotations' });
    await rotations.getByRole('listitem').filter({ hasText: 'loaded' }).waitFor();
    assert.equal(await rotations.getByRole('listitem').filter({ hasText: 'rotated' }).count(), 0, 'no rotation yet');
    await page.getByRole('button', { name: /^Let payment's certificate expire$/ }).click();
    await rotations.getByRole('listitem').filter({ hasText: 'rotated' }).first().waitFor({ timeout: 20_000 });
    const left = seconds(await textOf(page.getByLabel('payment SVID expires in')));
    assert.ok(left > 0 && left <= 30, `payment's new certificate expires in ${left} s`);
    await b.screenshot('certificate-expiring');
    await page.getByRole('button', { name: /^Renew payment's certificate$/ }).click();
    await rotations.getByRole('listitem').filter({ hasText: 'rotated' }).nth(1).waitFor({ timeout: 20_000 });
    assert.ok(seconds(await textOf(page.getByLabel('payment SVID expires in'))) > 29 * 86_400);
  });

  test('an order’s trace, from the spans the services export: each hop with its peer identity, the rule and the decision', async () => {
    const b = await browser();
    const { page } = b;
    const order = page
      .locator('#traces')
      .getByRole('article')
      .filter({ hasText: 'order: POST /orders' })
      .filter({ hasText: 'payment (server)' })
      .first();
    const text = await textOf(order, 30_000);
    assert.match(text, /order \(client\)\s*inventory\.v1\.Inventory\/Reserve\s*spiffe:\/\/example\.org\/inventory/);
    assert.match(
      text,
      /inventory \(server\)\s*inventory\.v1\.Inventory\/Reserve\s*spiffe:\/\/example\.org\/order\s*allow ID is one of \[spiffe:\/\/example\.org\/order\]/,
    );
    assert.match(text, /order \(client\)\s*POST\s*spiffe:\/\/example\.org\/payment/);
    assert.match(text, /payment \(server\)\s*POST \/api\/charge\s*spiffe:\/\/example\.org\/order\s*allow/);
    assert.doesNotMatch(text, /deny/, 'an order that went through has no denied hop');
    await b.screenshot('trace-section', page.getByRole('region', { name: 'Recent orders as traces' }));
  });
});
