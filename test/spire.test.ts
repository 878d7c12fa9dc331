// The shop on identities from a real SPIRE server and agents: each service
// gets exactly its own ID, rotation under load, agents killed and restarted,
// revocation by deregistration, and an unregistered workload.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import { authorizeId, connectMtls, isAuthError, type IdentitySource } from '@shop/auth';
import { WorkloadApiClient, WorkloadX509Source } from '@shop/auth/workloadapi';
import { newTally, runTraffic, type Tally } from '../scripts/traffic.ts';
import type { Shop } from '../scripts/shop.ts';
import { SERVICES, startSpiffeShop, startSpire, type SpireWorld } from './support/spire-shop.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
// Short enough that SPIRE rotates every ~10 s (agents renew at half-life).
const SVID_TTL = 20;

// Undefined until before() has got that far: after() stops what was started.
let world: SpireWorld | undefined;
let shop: Shop | undefined;
let orderIdentity: IdentitySource | undefined;

before(async () => {
  world = await startSpire({ nodes: [...SERVICES, 'stranger'] });
  await world.register(SVID_TTL);
  shop = await startSpiffeShop(world);
  w = world;
  s = shop;
});

after(async () => {
  await orderIdentity?.close();
  await shop?.stopAll();
  await world?.stop();
});

// The running world and shop, for the tests (set once before() succeeded).
let w: SpireWorld;
let s: Shop;

async function rotationsOf(name: string): Promise<number> {
  const text = await (await request(`${s.opsUrl(name as 'order')}/metrics`)).body.text();
  return Number(/^shop_identity_rotations_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 'NaN');
}

async function allRotations(): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(SERVICES.map(async (n) => [n, await rotationsOf(n)] as const)));
}

async function traffic(seconds: number, during?: () => Promise<void>): Promise<Tally> {
  const controller = new AbortController();
  const tally = newTally();
  const flowing = runTraffic({ url: s.orderUrl, concurrency: 3, pauseMs: 50, signal: controller.signal }, tally);
  const started = Date.now();
  try {
    await during?.();
  } finally {
    const left = seconds * 1000 - (Date.now() - started);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    controller.abort();
    await flowing;
  }
  return tally;
}

function assertNoFailures(t: Tally, what: string): void {
  assert.ok(t.placed > 20, `${what}: orders flowed (${t.placed})`);
  assert.equal(t.errors, 0, `${what}: transport errors`);
  assert.deepEqual(t.rejected, {}, `${what}: refused orders`);
  assert.deepEqual(t.failed, {}, `${what}: failed orders`);
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('the shop on SPIRE identities', () => {
  test("each agent hands out exactly its own service's SVID, and an order flows end to end", async () => {
    for (const name of SERVICES) {
      const { stdout } = await run(join(ROOT, 'node_modules/.bin/node'), [
        join(ROOT, 'tools/spiffe-auth/src/cli/main.ts'),
        'fetch',
        '--socket',
        w.spire.agentAddress(name),
        '--json',
      ]);
      const out = JSON.parse(stdout) as { svids: { spiffeId: string }[] };
      assert.deepEqual(
        out.svids.map((x) => x.spiffeId),
        [`spiffe://example.org/${name}`],
        name,
      );
    }
    const res = await request(`${s.orderUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-a', quantity: 1 }] }),
    });
    const order = (await res.body.json()) as { status: string };
    assert.equal(res.statusCode, 201);
    assert.equal(order.status, 'confirmed');
    const metrics = await (await request(`${s.opsUrl('payment')}/metrics`)).body.text();
    assert.match(
      metrics,
      /shop_requests_total\{[^}]*route="\/api\/charge"[^}]*caller="spiffe:\/\/example\.org\/order"/,
    );
  });

  test('rotation under load: two or more rotations of every service, no failed request, new connections present the new SVID', async () => {
    const before = await allRotations();
    const tally = await traffic(2.6 * SVID_TTL);
    const afterRotations = await allRotations();
    for (const name of SERVICES) {
      assert.ok(
        afterRotations[name]! - before[name]! >= 2,
        `${name} rotated ${afterRotations[name]! - before[name]!} times`,
      );
    }
    assertNoFailures(tally, 'rotation');
    console.log(
      `rotation under load: ${tally.placed} orders, 0 failed; rotations ${JSON.stringify(Object.fromEntries(SERVICES.map((n) => [n, afterRotations[n]! - before[n]!])))}`,
    );

    // A new connection to payment presents payment's current SVID, as its agent hands it out now.
    orderIdentity = await WorkloadX509Source.create({ address: w.spire.agentAddress('order') });
    const paymentAgent = new WorkloadApiClient({ address: w.spire.agentAddress('payment') });
    try {
      const match = await until(
        'payment to present its current SVID',
        async () => {
          const current = (await paymentAgent.fetchX509Context()).svids[0]!.leaf.serialNumber;
          const { socket, peer } = await connectMtls({
            host: '127.0.0.1',
            port: s.ports.payment,
            source: orderIdentity!,
            authorize: authorizeId('spiffe://example.org/payment'),
          });
          socket.destroy();
          return { current, presented: peer.certificate.serialNumber };
        },
        (v) => v.current === v.presented,
        10_000,
      );
      assert.equal(match.presented, match.current);
    } finally {
      await paymentAgent.close();
    }
  });

  test('an unregistered workload gets PermissionDenied, says why, retries, and comes up once an entry exists', async () => {
    const source = WorkloadX509Source.open({
      address: w.spire.agentAddress('stranger'),
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    const errors: string[] = [];
    source.on('loadError', (e) => errors.push(`${e.code}: ${e.message}`));
    try {
      await until(
        'PermissionDenied to be reported twice (retries)',
        () => Promise.resolve(errors.length),
        (n) => n >= 2,
        15_000,
      );
      assert.equal(source.isReady, false);
      assert.match(errors[0]!, /AUTH_ERR_WORKLOAD_PERMISSION_DENIED: .*no registration entry/i);
      await w.spire.createEntry({
        spiffe_id: 'spiffe://example.org/stranger',
        parent_id: w.spire.nodeId('stranger'),
        selectors: [`unix:uid:${w.uid}`],
        x509_svid_ttl: SVID_TTL,
      });
      await until('the stranger to get an SVID', () => Promise.resolve(source.isReady), Boolean, 30_000);
      assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/stranger');
    } finally {
      await source.close();
    }
  });

  test('revocation by deregistration: order loses its identity when its SVID expires, fails closed with a clear log line, and recovers when registered again', async () => {
    const entry = await w.entryOf('spiffe://example.org/order');
    await w.spire.deleteEntry(entry.id);
    // Once the last SVID has expired, order is not ready and its calls fail closed.
    await until(
      'order to report not ready',
      async () => (await request(`${s.opsUrl('order')}/health/ready`)).statusCode,
      (code) => code === 503,
      (SVID_TTL + 15) * 1000,
    );
    // Readiness turns at less than a second left; let the certificate itself run out.
    await new Promise((r) => setTimeout(r, 1500));
    const res = await request(`${s.orderUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-a', quantity: 1 }] }),
    });
    const body = (await res.body.json()) as { status?: string; code?: string };
    assert.notEqual(body.status, 'confirmed', 'no order goes through on an expired identity');
    const log = await readFile(s.logFile('order'), 'utf8');
    assert.match(log, /identity update refused|no usable identity yet/, 'order logs that it got no new identity');
    assert.match(log, /no registration entry matched this workload/, 'and why');
    assert.match(log, /AUTH_ERR_WORKLOAD_PERMISSION_DENIED/);
    // Registered again: a new SVID arrives and orders flow.
    await w.register(SVID_TTL);
    await until(
      'order to be ready again',
      async () => (await request(`${s.opsUrl('order')}/health/ready`)).statusCode,
      (code) => code === 200,
      30_000,
    );
    const again = await until(
      'an order to go through again',
      async () => {
        const r = await request(`${s.orderUrl}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-a', quantity: 1 }] }),
        });
        return ((await r.body.json()) as { status?: string }).status;
      },
      (status) => status === 'confirmed',
      30_000,
    );
    assert.equal(again, 'confirmed');
    assert.ok(isAuthError instanceof Function);
  });
  test('agents killed while traffic flows: services keep serving on their SVIDs, reconnect, and rotate again', async () => {
    // Longer-lived SVIDs first, so an outage of several seconds fits in
    // what is left of every certificate (SPIRE renews at half-life).
    await w.register(60);
    await until(
      'every agent to serve a 60 s SVID',
      async () => {
        const lifetimes = await Promise.all(
          SERVICES.map(async (n) => {
            const client = new WorkloadApiClient({ address: w.spire.agentAddress(n) });
            try {
              const svid = (await client.fetchX509Context()).svids[0]!;
              return (svid.expiresAt.getTime() - svid.notBefore.getTime()) / 1000;
            } catch {
              return 0; // not served yet
            } finally {
              await client.close();
            }
          }),
        );
        return Math.min(...lifetimes);
      },
      (min) => min >= 50,
      60_000,
    );
    // The services hold what their agent serves (pushed on the stream).
    await new Promise((r) => setTimeout(r, 1000));
    const before = await allRotations();
    const down = await traffic(8, async () => {
      for (const name of SERVICES) await w.spire.stopAgent(name, 'SIGKILL');
    });
    assertNoFailures(down, 'agents down');
    for (const name of SERVICES) await w.spire.startAgent(name);
    const back = await traffic(SVID_TTL);
    assertNoFailures(back, 'agents back');
    const afterRotations = await until(
      'a rotation of every service after the agents came back',
      allRotations,
      (r) => SERVICES.every((n) => r[n]! > before[n]!),
      60_000,
    );
    for (const name of SERVICES) assert.ok(afterRotations[name]! > before[name]!, name);
  });
});
