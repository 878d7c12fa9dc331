// compose.yaml on a real Docker engine: SPIRE server and agent, the docker
// workload attestor, the three services and the traffic generator.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseJsonLines, placeOrder, runProbe, startShop, type Shop } from './support.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('docker compose up (SPIRE)', () => {
  let started: Shop | undefined;
  const shop = (): Shop => started ?? assert.fail('compose did not come up');
  before(async () => {
    started = await startShop(['compose.yaml']);
  });
  after(async () => {
    await started?.down();
  });

  test('an order succeeds end to end, and payment audits the caller as spiffe://example.org/order', async () => {
    const placed = await placeOrder(shop().orderUrl);
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
    assert.equal(placed.body.status, 'confirmed', JSON.stringify(placed.body));
    const audit = parseJsonLines(await shop().logs('payment')).filter((l) => l.msg === 'authz allow');
    const charges = audit.filter((l) => (l.authz as { route?: string }).route === '/api/charge');
    assert.ok(charges.length > 0, 'payment logged no authz decision for a charge');
    for (const l of audit) assert.equal(l.caller, 'spiffe://example.org/order');
    // Each service got its identity from the agent, not from files.
    const orderLog = parseJsonLines(await shop().logs('order'));
    assert.ok(
      orderLog.some((l) => JSON.stringify(l).includes('identity from SPIFFE')),
      'order did not report a SPIFFE identity',
    );
  });

  test('the traffic generator places orders with no errors', async () => {
    let last = '';
    for (let i = 0; i < 30 && !/placed=[1-9]/.test(last); i++) {
      await sleep(1000);
      last = (await shop().logs('traffic')).filter((l) => l.startsWith('traffic:')).pop() ?? '';
    }
    assert.match(last, /placed=[1-9]\d*/);
    assert.match(last, /errors=0$/);
    assert.match(last, /rejected=0 /);
  });

  test('a container with the registered label gets that identity; one with another label gets none and cannot call payment', async () => {
    // Positive control first: same image, same socket, the label of an entry.
    const registered = await runProbe(shop(), 'order');
    assert.equal(registered.identity, 'spiffe://example.org/order', JSON.stringify(registered));
    // Authorized and answered: payment looked the (unknown) order up.
    assert.equal(registered.paymentStatus, 404, JSON.stringify(registered));
    assert.equal(registered.paymentCode, 'PAYMENT_NOT_FOUND', JSON.stringify(registered));

    const stranger = await runProbe(shop(), 'stranger');
    assert.equal(stranger.identity, null, JSON.stringify(stranger));
    assert.match(String(stranger.identityError), /AUTH_ERR_\w+/);
    assert.match(String(stranger.identityError), /no identity issued|PermissionDenied|permission/i);
    assert.equal(stranger.paymentStatus, undefined);
    // Without a client certificate payment answers 401 and serves nothing.
    assert.match(String(stranger.paymentError), /^answered: HTTP\/1\.1 401 /);
    const agent = await shop().logs('spire-agent');
    assert.ok(
      agent.some((l) => l.includes('No identity issued')),
      'the agent did not log the refusal',
    );
  });

  test("stopping payment opens order's breaker (fast 503 with Retry-After); starting it again recovers", async () => {
    assert.equal((await placeOrder(shop().orderUrl)).body.status, 'confirmed');
    await shop().compose(['stop', '--timeout', '5', 'payment']);
    const stoppedAt = Date.now();
    let first503: Awaited<ReturnType<typeof placeOrder>> | undefined;
    const seen: string[] = [];
    while (!first503 && Date.now() - stoppedAt < 20_000) {
      const r = await placeOrder(shop().orderUrl);
      seen.push(`${String(r.status)} ${r.body.status ?? r.body.code ?? ''} ${r.body.failure_reason ?? ''}`.trim());
      if (r.status === 503) first503 = r;
    }
    assert.ok(first503, `no 503 within 20 s of stopping payment; saw ${seen.join(', ')}`);
    assert.equal(first503.body.code, 'UPSTREAM_UNAVAILABLE');
    assert.ok(first503.retryAfter, 'the 503 has no Retry-After');
    // While open, the breaker answers at once instead of waiting on a dead upstream.
    const open = await placeOrder(shop().orderUrl);
    assert.equal(open.status, 503);
    assert.ok(open.ms < 1000, `503 took ${open.ms.toFixed(0)} ms`);
    // Before it opened, nothing was charged: orders failed with payment_unavailable, none confirmed.
    assert.ok(!seen.some((s) => s.includes('confirmed')), seen.join(', '));

    await shop().compose(['start', 'payment']);
    const startedAt = Date.now();
    let recovered = false;
    while (!recovered && Date.now() - startedAt < 60_000) {
      const r = await placeOrder(shop().orderUrl);
      recovered = r.status === 201 && r.body.status === 'confirmed';
      if (!recovered) await sleep(500);
    }
    assert.ok(recovered, 'orders did not go through within 60 s of starting payment again');
  });

  test('restarting spire-agent does not interrupt traffic', async () => {
    const results: number[] = [];
    const failures: string[] = [];
    let stop = false;
    const shopper = async (): Promise<void> => {
      while (!stop) {
        try {
          const r = await placeOrder(shop().orderUrl);
          results.push(r.status);
          if (r.status !== 201 || r.body.status !== 'confirmed') {
            failures.push(`${String(r.status)} ${JSON.stringify(r.body)}`);
          }
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const load = Promise.all([shopper(), shopper(), shopper()]);
    await sleep(2000);
    const before = results.length;
    await shop().compose(['restart', '--timeout', '5', 'spire-agent']);
    // Until the agent is healthy again, and a while after.
    for (let i = 0; i < 60; i++) {
      const ps = await shop().compose(['ps', '--format', '{{.Health}}', 'spire-agent']);
      if (ps.trim() === 'healthy') break;
      await sleep(1000);
    }
    await sleep(5000);
    stop = true;
    await load;
    assert.ok(results.length - before > 20, `only ${String(results.length - before)} orders during the restart`);
    assert.deepEqual(failures, []);
    // The agent came back and serves the services again (they re-attach to the new socket).
    const registered = await runProbe(shop(), 'inventory');
    assert.equal(registered.identity, 'spiffe://example.org/inventory');
  });
});
