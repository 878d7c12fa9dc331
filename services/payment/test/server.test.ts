import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { authorizeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import {
  FakeWorkloadApi,
  MemorySource,
  createTestTrustDomain,
  makeTempDir,
  type TestTrustDomain,
} from '@shop/auth-testing';
import { readyUntil, spawnService, type ReadyBody, type ServiceProcess } from '@shop/service-kit/testing';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

/** Running is a payment process that has started, with the ports it listens on. */
interface Running extends ServiceProcess {
  ports: { api: number; ops: number; admin: number };
}

/** portOf reads the port of the URL a log line gives under `key`. */
const portOf = (entry: Record<string, unknown>, key: string): number => Number(new URL(entry[key] as string).port);

/** spawnPayment runs `node src/server.ts` with its admin port free too. */
function spawnPayment(t: TestContext, env: NodeJS.ProcessEnv): ServiceProcess {
  return spawnService(t, SERVER, { ADMIN_PORT: '0', ...env });
}

/** start runs `node src/server.ts` on free ports and waits for its "payment started" line. */
async function start(t: TestContext, env: NodeJS.ProcessEnv): Promise<Running> {
  const s = spawnPayment(t, env);
  const entry = await s.line('payment started');
  return { ...s, ports: { api: portOf(entry, 'api'), ops: portOf(entry, 'ops'), admin: portOf(entry, 'admin') } };
}

describe('the process: mTLS API, ops and admin ports, graceful shutdown, restart', () => {
  let td: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    td = await createTestTrustDomain('example.org');
    ({ dir, cleanup } = await makeTempDir('payment-server-'));
    const issued = await td.issue('/payment');
    await writeFile(join(dir, 'payment.crt.pem'), issued.certPem);
    await writeFile(join(dir, 'payment.key.pem'), issued.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'ca.crt.pem'), td.ca.certPem);
    env = {
      TLS_CERT_FILE: join(dir, 'payment.crt.pem'),
      TLS_KEY_FILE: join(dir, 'payment.key.pem'),
      TLS_CA_FILE: join(dir, 'ca.crt.pem'),
      DATA_DIR: join(dir, 'data'),
    };
  });
  after(async () => {
    await cleanup();
  });

  async function client(path: string) {
    const source = MemorySource.create(await td.svid(path), [td.bundle]);
    return createMtlsDispatcher({ source, authorize: authorizeId('spiffe://example.org/payment') });
  }

  test('charges over mTLS as order (403 as inventory), reports ready, takes fault changes, drains on SIGTERM, replays after restart', async (t) => {
    const order = await client('/order');
    const inventory = await client('/inventory');
    t.after(() => Promise.all([order.close(), inventory.close()]));
    const charge = {
      order_id: 'o-e2e',
      amount: 4200,
      currency: 'GBP',
      user_id: 'u-1',
      card_number: '5555555555554444',
    };
    const call = (d: typeof order, port: number, key: string, orderId = charge.order_id) =>
      d.request({
        origin: `https://127.0.0.1:${port}`,
        path: '/api/charge',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ ...charge, order_id: orderId }),
      });

    const first = await start(t, env);
    const ok = await call(order, first.ports.api, 'e2e-key-0001');
    const okBody = await ok.body.text();
    assert.equal(ok.statusCode, 201, okBody);
    const denied = await call(inventory, first.ports.api, 'e2e-key-0002');
    await denied.body.dump();
    assert.equal(denied.statusCode, 403);

    const ready = await fetch(`http://127.0.0.1:${first.ports.ops}/health/ready`);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { identity: true, started: true, store: true } });
    const faults = await fetch(`http://127.0.0.1:${first.ports.admin}/admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ failure_rate: 1 }),
    });
    assert.deepEqual(await faults.json(), { latency_ms: 0, failure_rate: 1 });
    const failing = await call(order, first.ports.api, 'e2e-key-0003', 'o-e2e-2');
    await failing.body.dump();
    assert.equal(failing.statusCode, 502);

    first.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    assert.ok(first.lines.some((l) => String(l.msg).startsWith('identity from static files')));
    assert.ok(first.lines.some((l) => l.msg === 'shutting down: draining in-flight requests'));
    const all = JSON.stringify(first.lines);
    assert.ok(!all.includes('5555555555554444'), 'card number in the log');
    assert.ok(!all.includes('e2e-key-0001'), 'idempotency key in the log');

    const second = await start(t, env);
    const replay = await call(order, second.ports.api, 'e2e-key-0001');
    assert.equal(replay.statusCode, 201);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal(await replay.body.text(), okBody);
    second.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  });

  test('a bad setting stops the process with a message naming the variable', async (t) => {
    const bad = await start(t, { ...env, PAYMENT_FAILURE_RATE: '2' }).then(
      () => assert.fail('started with PAYMENT_FAILURE_RATE=2'),
      (err: unknown) => err as Error,
    );
    assert.match(bad.message, /PAYMENT_FAILURE_RATE: must be between 0 and 1/);
  });
});

describe('regression: start-up without an identity (issue 17)', () => {
  let td: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    ({ dir, cleanup } = await makeTempDir('payment-startup-'));
  });
  after(() => cleanup());

  function spawnFor(t: TestContext, env: NodeJS.ProcessEnv): ServiceProcess {
    return spawnPayment(t, { DATA_DIR: join(dir, `data-${String(Date.now())}`), ...env });
  }

  async function ready(ops: string): Promise<{ status: number; body: ReadyBody }> {
    const res = await fetch(`${ops}/health/ready`);
    return { status: res.status, body: (await res.json()) as ReadyBody };
  }

  test('regression: with no agent on the socket it answers live 200 and ready 503 naming the socket, then becomes ready and charges over mTLS once the agent serves an SVID', async (t) => {
    const fake = await FakeWorkloadApi.start({ listen: false });
    t.after(() => fake.close());
    // A deadline far away: it must not be what ends the wait (positive control of the deadline test below).
    const s = spawnFor(t, { SPIFFE_ENDPOINT_SOCKET: fake.address, IDENTITY_WAIT_SECONDS: '600' });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    const opened = Date.now();
    assert.equal((await fetch(`${ops}/health/live`)).status, 200);
    let r = await readyUntil(ops, (b) => b.reasons?.identity?.includes('does not exist yet') === true);
    assert.equal(r.status, 503);
    assert.equal(r.body.checks.identity, false);
    assert.match(
      r.body.reasons?.identity ?? '',
      new RegExp(
        `^waiting for the first X\\.509-SVID from Workload API at ${fake.address}: AUTH_ERR_WORKLOAD_UNAVAILABLE: .*socket ${fake.socketPath} does not exist yet`,
      ),
    );
    assert.ok(Date.now() - opened < 3000, `the reason took ${String(Date.now() - opened)} ms to show`);
    assert.ok(
      s.lines.some((l) => l.msg === 'waiting for the identity (up to 600 s); not ready until it arrives'),
      'the wait is logged',
    );

    // Positive control: the agent comes up and serves an SVID.
    fake.setX509Context({ svids: [{ svid: await td.svid('/payment') }], bundle: td.bundle });
    await fake.restart();
    const api = portOf(await s.line('payment started'), 'api');
    r = await ready(ops);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ready', checks: { identity: true, started: true, store: true } });
    const order = createMtlsDispatcher({
      source: MemorySource.create(await td.svid('/order'), [td.bundle]),
      authorize: authorizeId('spiffe://example.org/payment'),
    });
    t.after(() => order.close());
    const charge = await order.request({
      origin: `https://127.0.0.1:${String(api)}`,
      path: '/api/charge',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'startup-key-0001' },
      body: JSON.stringify({ order_id: 'o-startup', amount: 100, currency: 'EUR', user_id: 'u-1' }),
    });
    assert.equal(charge.statusCode, 201, await charge.body.text());
  });

  test('regression: IDENTITY_WAIT_SECONDS ends the wait: an agent that never sends an SVID makes it exit 1 naming the reason', async (t) => {
    const fake = await FakeWorkloadApi.start();
    t.after(() => fake.close());
    const s = spawnFor(t, { SPIFFE_ENDPOINT_SOCKET: fake.address, IDENTITY_WAIT_SECONDS: '4' });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    const r = await ready(ops);
    assert.equal(r.status, 503, 'not ready while it waits');
    assert.equal(await s.exited, 1);
    assert.match(
      s.stderr(),
      new RegExp(
        `payment: failed to start: SVC_ERR_IDENTITY_TIMEOUT: no identity within 4 s \\(IDENTITY_WAIT_SECONDS=4\\): waiting for the first X\\.509-SVID from Workload API at ${fake.address}: nothing received yet`,
      ),
    );
    assert.ok(fake.callsOf('FetchX509SVID').length >= 1, 'it asked the agent');
  });
});
