// compose.static.yaml over compose.yaml: the same services on certificate
// files from the CLI, no SPIRE.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJsonLines, placeOrder, startShop, type Shop } from './support.ts';

describe('docker compose up (static certificates)', () => {
  let started: Shop | undefined;
  const shop = (): Shop => started ?? assert.fail('compose did not come up');
  before(async () => {
    started = await startShop(['compose.yaml', 'compose.static.yaml']);
  });
  after(async () => {
    await started?.down();
  });

  test('an order succeeds end to end on static files, with the same caller identity as under SPIRE', async () => {
    const placed = await placeOrder(shop().orderUrl);
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
    assert.equal(placed.body.status, 'confirmed', JSON.stringify(placed.body));
    const orderLog = parseJsonLines(await shop().logs('order'));
    assert.ok(
      orderLog.some((l) => JSON.stringify(l).includes('identity from static files')),
      'order did not report static files',
    );
    const audit = parseJsonLines(await shop().logs('payment')).filter((l) => l.msg === 'authz allow');
    assert.ok(audit.length > 0);
    for (const l of audit) assert.equal(l.caller, 'spiffe://example.org/order');
  });

  test('no SPIRE container runs in static mode', async () => {
    const services = (await shop().compose(['ps', '--all', '--format', '{{.Service}}'])).split('\n').filter(Boolean);
    assert.ok(services.includes('order'));
    assert.deepEqual(
      services.filter((s) => s.startsWith('spire-')),
      [],
    );
  });
});
