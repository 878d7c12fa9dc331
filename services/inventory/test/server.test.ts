// The real process (src/server.ts): identity from files, HTTP over mTLS,
// ops port, SIGTERM drains and exits 0, and a restart keeps the data.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { authorizeId, createMtlsDispatcher } from '@shop/auth';
import { createTestTrustDomain, makeTempDir, MemorySource } from '@shop/auth/testing';
import { INVENTORY, ORDER } from './support/fixture.ts';

interface Started {
  http: string;
  grpc: string;
  ops: string;
  lines: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

const serverFile = new URL('../src/server.ts', import.meta.url);

async function startProcess(t: TestContext, env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [serverFile.pathname], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', GRPC_PORT: '0', OPS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const lines: Record<string, unknown>[] = [];
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'inventory started') resolve(entry);
    });
    void exited.then((code) => {
      reject(new Error(`server exited with ${code} before starting: ${stderr}${JSON.stringify(lines)}`));
    });
  });
  const entry = await started;
  return {
    http: entry.http as string,
    grpc: entry.grpc as string,
    ops: entry.ops as string,
    lines,
    async stop() {
      child.kill('SIGTERM');
      return exited;
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
    assert.deepEqual(await ready.body.json(), { status: 'ready', checks: { identity: true, store: true } });

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
    const child = spawn(process.execPath, [serverFile.pathname], {
      env: { PATH: process.env.PATH, RESERVATION_TTL_SECONDS: 'soon' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1);
    assert.match(stderr, /RESERVATION_TTL_SECONDS: must be an integer, got "soon"/);
  });
});
