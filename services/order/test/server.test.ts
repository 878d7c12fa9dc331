// The real process (src/server.ts) when its identity is not there at start
// (issue 17): the ops port answers at once with the reason, the service
// becomes ready when the identity arrives, and IDENTITY_WAIT_SECONDS bounds
// the wait.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FakeWorkloadApi, createTestTrustDomain, makeTempDir } from '@shop/auth-testing';
import { readyUntil, spawnService } from '@shop/service-kit/testing';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

/** freePort finds a port nobody listens on (order logs its configured API port, not the bound one). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('regression: start-up without an identity (issue 17)', () => {
  test('regression: with no agent on the socket it answers live 200 and ready 503 naming the socket, then becomes ready once the agent serves an SVID', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const { dir, cleanup } = await makeTempDir('order-startup-');
    t.after(cleanup);
    const fake = await FakeWorkloadApi.start({ listen: false });
    t.after(() => fake.close());
    const port = await freePort();
    const s = spawnService(t, SERVER, {
      SPIFFE_ENDPOINT_SOCKET: fake.address,
      DATA_DIR: join(dir, 'data'),
      PORT: String(port),
    });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    const opened = Date.now();
    assert.equal((await fetch(`${ops}/health/live`)).status, 200);
    const waiting = await readyUntil(ops, (b) => b.reasons?.identity?.includes('does not exist yet') === true);
    assert.equal(waiting.status, 503);
    assert.equal(waiting.body.checks.identity, false);
    assert.match(
      waiting.body.reasons?.identity ?? '',
      new RegExp(
        `^waiting for the first X\\.509-SVID from Workload API at ${fake.address}: AUTH_ERR_WORKLOAD_UNAVAILABLE: .*does not exist yet`,
      ),
    );
    assert.ok(Date.now() - opened < 3000, `the reason took ${String(Date.now() - opened)} ms to show`);
    // The API is not up before the identity.
    await assert.rejects(
      fetch(`http://127.0.0.1:${String(port)}/orders/none`),
      (err: unknown) => (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED',
    );

    // Positive control: the agent comes up and serves an SVID.
    fake.setX509Context({ svids: [{ svid: await td.svid('/order') }], bundle: td.bundle });
    await fake.restart();
    await s.line('order started');
    const ready = await fetch(`${ops}/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { identity: true, started: true, store: true } });
    const unknown = await fetch(`http://127.0.0.1:${String(port)}/orders/none`);
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    assert.match(metrics, /shop_identity_info\{source="spiffe",spiffe_id="spiffe:\/\/example\.org\/order"/);
  });

  test('regression: files that are not there yet: ready says which one; IDENTITY_WAIT_SECONDS makes it exit 1 naming it', async (t) => {
    const { dir, cleanup } = await makeTempDir('order-startup-');
    t.after(cleanup);
    const s = spawnService(t, SERVER, {
      TLS_CERT_FILE: join(dir, 'order.crt.pem'),
      TLS_KEY_FILE: join(dir, 'order.key.pem'),
      TLS_CA_FILE: join(dir, 'ca.crt.pem'),
      DATA_DIR: join(dir, 'data'),
      IDENTITY_WAIT_SECONDS: '5',
    });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    const waiting = await readyUntil(ops, (b) => b.reasons?.identity?.includes('ENOENT') === true);
    assert.equal(waiting.status, 503);
    assert.match(
      waiting.body.reasons?.identity ?? '',
      /AUTH_ERR_FILE_UNREADABLE: cannot read .*order\.crt\.pem \(ENOENT\)/,
    );
    assert.equal(await s.exited, 1);
    const fatal = s.lines.find((l) => l.msg === 'order failed to start');
    const err = fatal?.err as { code: string; message: string } | undefined;
    assert.equal(err?.code, 'SVC_ERR_IDENTITY_TIMEOUT');
    assert.match(err.message, /^no identity within 5 s \(IDENTITY_WAIT_SECONDS=5\): .*order\.crt\.pem \(ENOENT\)/);
  });

  test('positive control: files written while it waits are picked up within the same deadline', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const { dir, cleanup } = await makeTempDir('order-startup-');
    t.after(cleanup);
    const s = spawnService(t, SERVER, {
      TLS_CERT_FILE: join(dir, 'order.crt.pem'),
      TLS_KEY_FILE: join(dir, 'order.key.pem'),
      TLS_CA_FILE: join(dir, 'ca.crt.pem'),
      DATA_DIR: join(dir, 'data'),
      IDENTITY_WAIT_SECONDS: '60',
    });
    const ops = (await s.line('ops port open; waiting for the identity')).ops as string;
    await readyUntil(ops, (b) => b.reasons?.identity?.includes('ENOENT') === true);
    const issued = await td.issue('/order');
    await writeFile(join(dir, 'order.key.pem'), issued.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'ca.crt.pem'), td.ca.certPem);
    await writeFile(join(dir, 'order.crt.pem'), issued.certPem);
    await s.line('order started');
    assert.equal((await fetch(`${ops}/health/ready`)).status, 200);
  });
});
