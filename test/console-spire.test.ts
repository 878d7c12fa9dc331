// The console in a real browser beside the shop on a real SPIRE (short SVID
// TTL): rotations appear on the timeline; the SPIRE agent toggle stops and
// starts the agent through the orchestrator, and the page shows the effect.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningConsole } from '@shop/console';
import type { Shop } from '../scripts/shop.ts';
import { startShopConsole } from '../scripts/shop-console.ts';
import { openConsole, seconds, textOf, type ConsoleBrowser } from './support/console-browser.ts';
import { startSpiffeShop, startSpire, type SpireWorld } from './support/spire-shop.ts';

// SPIRE agents renew at half-life: a rotation every ~10 s.
const SVID_TTL = 20;

let world: SpireWorld | undefined;
let shop: Shop | undefined;
let running: RunningConsole | undefined;
const browsers: ConsoleBrowser[] = [];

before(async () => {
  world = await startSpire();
  await world.register(SVID_TTL);
  shop = await startSpiffeShop(world);
  running = await startShopConsole({
    shop,
    mode: 'spiffe',
    spire: world.spire,
    port: 0,
    trustDomain: world.spire.trustDomain,
    pollMs: 500,
  });
});

// Everything started here is stopped here, also when a test failed.
after(async () => {
  for (const b of browsers) await b.close();
  await running?.close();
  await shop?.stopAll();
  await world?.stop();
});

async function browser(): Promise<ConsoleBrowser> {
  if (!running) throw new Error('the console did not start');
  const b = await openConsole(running.url);
  browsers.push(b);
  return b;
}

describe('the console in chromium (SPIFFE mode, real SPIRE)', () => {
  test(`identity mode spiffe, an SVID of ${SVID_TTL} s counting down, and a rotation appearing on the timeline`, async () => {
    const b = await browser();
    const { page } = b;
    const card = page.getByRole('article', { name: 'service payment' });
    assert.match(await textOf(card), /identity mode\s*spiffe/);
    const countdown = page.getByLabel('payment SVID expires in').filter({ hasText: /\d\d:\d\d:\d\d/ });
    assert.ok(seconds(await textOf(countdown)) <= SVID_TTL, 'the short SVID, not a 30-day certificate');
    const rotations = card.getByRole('list', { name: 'payment rotations' });
    // Positive control first: the first SVID is on the timeline as "loaded".
    await rotations.getByRole('listitem').filter({ hasText: 'loaded' }).waitFor();
    await rotations.getByRole('listitem').filter({ hasText: 'rotated' }).first().waitFor({ timeout: 60_000 });
    // One snapshot of the card: the serial shown now is the latest rotation's, not the first SVID's.
    const card1 = await textOf(card);
    // The page cuts serials to 16 hex digits and "…"; SVID serials are longer.
    const events = [...card1.matchAll(/\d\d:\d\d:\d\d (loaded|rotated) serial ([0-9A-F]+…?)/g)].map((m) => [
      m[1],
      m[2],
    ]);
    const current = /SVID serial\s*([0-9A-F]+…?)/.exec(card1)?.[1];
    assert.equal(events[0]?.[0], 'rotated', card1);
    assert.equal(events.at(-1)?.[0], 'loaded', card1);
    assert.equal(events[0][1], current, 'the serial on the card is the newest one on the timeline');
    assert.notEqual(events.at(-1)![1], current, 'and not the first SVID’s');
    assert.ok(Number(await textOf(card.locator('[data-rotations="payment"]'))) >= 1);
    await b.screenshot('spiffe-rotation');
  });

  test("stopping payment's SPIRE agent (Enter on the toggle): payment goes not ready once its SVID expires; starting it again brings it back", async () => {
    const b = await browser();
    const { page } = b;
    const card = page.getByRole('article', { name: 'service payment' });
    // Files-only toggles are not available here (positive control beside: the agent toggle is enabled).
    await page.getByRole('button', { name: /^Let payment's certificate expire \(not available\)$/ }).waitFor();
    const stop = page.getByRole('button', { name: /^Stop payment's SPIRE agent$/ });
    assert.equal(await stop.isDisabled(), false);
    await textOf(card.locator('.badge').filter({ hasText: /^ready$/ }));
    await stop.focus();
    await page.keyboard.press('Enter');
    await page
      .locator('form[data-toggle="stop-agent"]')
      .getByRole('status')
      .filter({ hasText: 'agent stopped' })
      .waitFor({ timeout: 30_000 });
    await card
      .locator('.badge')
      .filter({ hasText: 'not ready' })
      .waitFor({ timeout: SVID_TTL * 1000 + 30_000 });
    assert.match(await textOf(card), /expired/);
    await b.screenshot('spiffe-agent-stopped');
    await page.getByRole('button', { name: /^Start payment's SPIRE agent$/ }).click();
    await card
      .locator('.badge')
      .filter({ hasText: /^ready$/ })
      .waitFor({ timeout: 60_000 });
  });
});
