// compose.migrate.yaml over compose.yaml: the steps of docs/migration.md in
// containers, one service at a time, with a rollback, ending the bridge.
// In compose a step recreates a container, so there is a short gap per step
// (npm run migrate shows the gap-free hand-over); here each step must
// converge: the service reports the mode it was moved to, and orders go
// through end to end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { identityOf, placeOrder, runProbe, startShop, type Shop } from './support.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FILES = ['compose.yaml', 'compose.migrate.yaml'];

describe('migration in compose (compose.migrate.yaml)', () => {
  let started: Shop | undefined;
  const shop = (): Shop => started ?? assert.fail('compose did not come up');
  const modes: Record<string, string> = { INVENTORY_SPIFFE: '', PAYMENT_SPIFFE: '', ORDER_SPIFFE: '' };
  before(async () => {
    started = await startShop(FILES);
  });
  after(async () => {
    await started?.down();
  });

  async function orderGoesThrough(): Promise<void> {
    const deadline = Date.now() + 60_000;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const r = await placeOrder(shop().orderUrl);
        if (r.status === 201 && r.body.status === 'confirmed') return;
        last = `${String(r.status)} ${JSON.stringify(r.body)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(500);
    }
    assert.fail(`no order went through within 60 s; last: ${last}`);
  }

  async function move(service: 'inventory' | 'payment' | 'order', spiffe: boolean): Promise<void> {
    modes[`${service.toUpperCase()}_SPIFFE`] = spiffe ? '1' : '';
    await shop().compose(['up', '-d', '--no-deps', '--wait', service], modes);
    const id = await identityOf(shop(), service);
    assert.equal(id.source, spiffe ? 'spiffe' : 'files', `${service}: ${JSON.stringify(id)}`);
    assert.match(id.issuer, spiffe ? /SPIRE CA/ : /development root CA/);
    await orderGoesThrough();
  }

  const staticOrderClient = (): Promise<Record<string, unknown>> =>
    runProbe(shop(), 'static-client', { volumes: ['certs:/certs:ro'], env: { PROBE_STATIC_CERT: '/certs/order' } });

  test('step 0: every service on its static files', async () => {
    for (const s of ['inventory', 'payment', 'order']) {
      assert.equal((await identityOf(shop(), s)).source, 'files', s);
    }
    await orderGoesThrough();
  });

  test('steps 1-6: bridge trust, then inventory, payment (rolled back and forward) and order move to SPIRE', async () => {
    await shop().compose(['run', '--rm', 'trust-bridge'], modes);
    await sleep(2000);
    await move('inventory', true);
    await move('payment', true);
    await move('payment', false);
    await move('payment', true);
    await move('order', true);
  });

  test('step 7: ending the bridge refuses a static certificate that was accepted just before', async () => {
    // Positive control: the static order certificate is still trusted through the bridge.
    const before = await staticOrderClient();
    assert.equal(before.paymentStatus, 404, JSON.stringify(before));
    assert.equal(before.paymentCode, 'PAYMENT_NOT_FOUND');
    await shop().compose(['run', '--rm', 'trust-end-bridge'], modes);
    let afterEnd: Record<string, unknown> = {};
    for (let i = 0; i < 20; i++) {
      await sleep(500);
      afterEnd = await staticOrderClient();
      if (afterEnd.paymentStatus === 401) break;
    }
    assert.equal(afterEnd.paymentStatus, 401, JSON.stringify(afterEnd));
    // SPIFFE traffic is untouched.
    await orderGoesThrough();
  });
});
