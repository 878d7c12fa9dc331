// The real process (src/server.ts): identity from files, HTTP over mTLS,
// ops port, SIGTERM drains and exits 0, and a restart keeps the data.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { authorizeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { createTestTrustDomain, FakeWorkloadApi, makeTempDir, MemorySource } from '@shop/auth-testing';
import { readyUntil, spawnService, type ServiceProcess } from '@shop/service-kit/testing';
import { INVENTORY, ORDER } from './support/fixture.ts';

interface Started {
  http: string;
  grpc: string;
  ops: string;
  lines: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

const serverFile = new URL('../src/server.ts', import.meta.url);

/** spawnInventory runs src/server.ts with its gRPC port free too. */
function spawnInventory(t: TestContext, env: Record<string, string>): ServiceProcess {
  return spawnService(t, serverFile, { GRPC_PORT: '0', ...env });
}

/** startProcess runs src/server.ts and waits until it has started. */
async function startProcess(t: TestContext, env: Record<string, string>): Promise<Started> {
  const s = spawnInventory(t, env);
  const entry = await s.line('inventory started');
  return {
    http: entry.http as string,
    grpc: entry.grpc as string,
    ops: entry.ops as string,
    lines: s.lines,
    async stop() {
      s.kill('SIGTERM');
      return s.exited;
    },
  };
}

describe('server process', () => {
  test('starts from TLS_* files, serves mTLS and the ops port, drains on SIGTERM, and keeps its data across a restart', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const { dir, cleanup } = await makeTempDir('inventory-server-');
    t.after(cleanup);
    const svid = await td.svid('/inventory');
    await writeFile(join(dir, 'inventory.crt.pem'), svid.certChainPem());
    await writeFile(join(dir, 'inventory.key.pem'), svid.privateKeyPem());
    await writeFile(join(dir, 'ca.crt.pem'), td.bundle.toPem());
    const env = {
      TLS_CERT_FILE: join(dir, 'inventory.crt.pem'),
      TLS_KEY_FILE: join(dir, 'inventory.key.pem'),
      TLS_CA_FILE: join(dir, 'ca.crt.pem'),
      DATA_DIR: join(dir, 'data'),
    };
    const orderSource = MemorySource.create(await td.svid('/order'), [td.bundle]);
    const dispatcher = createMtlsDispatcher({ source: orderSource, authorize: authorizeId(INVENTORY) });
    t.after(() => dispatcher.close());

    const first = await startProcess(t, env);
    assert.ok(
      first.lines.some((l) => typeof l.identity === 'string' && l.identity.includes('static files')),
      'logs which identity source it picked',
    );
    const ready = await request(`${first.ops}/health/ready`);
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(await ready.body.json(), {
      status: 'ready',
      checks: { identity: true, started: true, store: true },
    });

    const reserve = await request(`${first.http}/api/stock/sku-limited/reserve`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ quantity: 5, order_id: 'p-1' }),
    });
    assert.equal(reserve.statusCode, 201);
    const reservation = (await reserve.body.json()) as { reservation_id: string; caller?: string };
    const metrics = await (await request(`${first.ops}/metrics`)).body.text();
    assert.match(metrics, new RegExp(`shop_requests_total\\{[^}]*caller="${ORDER}"[^}]*\\} 1`));
    assert.equal(await first.stop(), 0, 'SIGTERM: clean exit');
    assert.ok(first.lines.some((l) => l.msg === 'shutting down: draining in-flight requests'));

    const second = await startProcess(t, env);
    const stock = await request(`${second.http}/api/stock/sku-limited`, { dispatcher });
    assert.deepEqual(await stock.body.json(), { product_id: 'sku-limited', available: 45, reserved: 5 });
    const replay = await request(`${second.http}/api/stock/sku-limited/reserve`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ quantity: 5, order_id: 'p-1' }),
    });
    assert.equal(replay.statusCode, 200);
    assert.equal(((await replay.body.json()) as { reservation_id: string }).reservation_id, reservation.reservation_id);
    assert.equal(await second.stop(), 0);
  });

  test('a bad variable stops the start with a message naming it', async (t) => {
    const s = spawnInventory(t, { RESERVATION_TTL_SECONDS: 'soon' });
    const code = await s.exited;
    assert.equal(code, 1);
    assert.match(s.stderr(), /RESERVATION_TTL_SECONDS: must be an integer, got "soon"/);
  });
});

describe('regression: start-up without an identity (issue 17)', () => {
  test('regression: with no agent on the socket it answers live 200 and ready 503 naming the socket, then becomes ready and serves mTLS once the agent serves an SVID', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const { dir, cleanup } = await makeTempDir('inventory-startup-');
    t.after(cleanup);
    const fake = await FakeWorkloadApi.start({ listen: false });
    t.after(() => fake.close());
    const s = spawnInventory(t, { SPIFFE_ENDPOINT_SOCKET: fake.address, DATA_DIR: join(dir, 'data') });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    const opened = Date.now();
    assert.equal((await request(`${ops}/health/live`)).statusCode, 200);
    const { status, body } = await readyUntil(ops, (b) => b.reasons?.identity?.includes('does not exist yet') === true);
    assert.equal(status, 503);
    assert.equal(body.checks.identity, false);
    assert.match(
      body.reasons?.identity ?? '',
      new RegExp(
        `^waiting for the first X\\.509-SVID from Workload API at ${fake.address}: AUTH_ERR_WORKLOAD_UNAVAILABLE: .*does not exist yet`,
      ),
    );
    assert.ok(Date.now() - opened < 3000, `the reason took ${String(Date.now() - opened)} ms to show`);

    // Positive control: the agent comes up and serves an SVID.
    fake.setX509Context({ svids: [{ svid: await td.svid('/inventory') }], bundle: td.bundle });
    await fake.restart();
    const started = await s.line('inventory started');
    const ready = await request(`${ops}/health/ready`);
    assert.equal(ready.statusCode, 200);
    const dispatcher = createMtlsDispatcher({
      source: MemorySource.create(await td.svid('/order'), [td.bundle]),
      authorize: authorizeId(INVENTORY),
    });
    t.after(() => dispatcher.close());
    const stock = await request(`${started.http as string}/api/stock/sku-limited`, { dispatcher });
    assert.equal(stock.statusCode, 200);
    assert.equal(((await stock.body.json()) as { product_id: string }).product_id, 'sku-limited');
  });

  test('regression: IDENTITY_WAIT_SECONDS ends the wait: an agent answering PermissionDenied makes it exit 1 naming the reason', async (t) => {
    const { dir, cleanup } = await makeTempDir('inventory-startup-');
    t.after(cleanup);
    const fake = await FakeWorkloadApi.start();
    t.after(() => fake.close());
    fake.setX509Error(grpc.status.PERMISSION_DENIED, 'no identity issued');
    const s = spawnInventory(t, {
      SPIFFE_ENDPOINT_SOCKET: fake.address,
      DATA_DIR: join(dir, 'data'),
      IDENTITY_WAIT_SECONDS: '4',
    });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    assert.equal((await request(`${ops}/health/ready`)).statusCode, 503, 'not ready while it waits');
    assert.equal(await s.exited, 1);
    const fatal = s.lines.find((l) => l.msg === 'inventory failed to start');
    const err = fatal?.err as { code: string; message: string } | undefined;
    assert.equal(err?.code, 'SVC_ERR_IDENTITY_TIMEOUT');
    assert.match(
      err.message,
      /^no identity within 4 s \(IDENTITY_WAIT_SECONDS=4\): .*AUTH_ERR_WORKLOAD_PERMISSION_DENIED: .*no registration entry matched this workload/,
    );
    // Positive control: without the variable (the test above) it waits as long as it takes, and starts.
  });

  test('SIGTERM while it waits for the identity is a clean stop (exit 0), not a failed start', async (t) => {
    const { dir, cleanup } = await makeTempDir('inventory-startup-');
    t.after(cleanup);
    const fake = await FakeWorkloadApi.start({ listen: false });
    t.after(() => fake.close());
    const s = spawnInventory(t, { SPIFFE_ENDPOINT_SOCKET: fake.address, DATA_DIR: join(dir, 'data') });
    await s.line('ops port open; waiting for the identity');
    s.kill('SIGTERM');
    assert.equal(await s.exited, 0);
    assert.ok(s.lines.some((l) => l.msg === 'shutting down: draining in-flight requests'));
    assert.ok(!s.lines.some((l) => l.msg === 'inventory failed to start'), JSON.stringify(s.lines));
  });
});
