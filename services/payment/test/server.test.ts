import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { authorizeId, createMtlsDispatcher } from '@shop/auth';
import { MemorySource, createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth/testing';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

interface Running {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  ports: { api: number; ops: number; admin: number };
  exited: Promise<number | null>;
}

/** start runs `node src/server.ts` on free ports and waits for its "listening" line. */
async function start(env: NodeJS.ProcessEnv): Promise<Running> {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', OPS_PORT: '0', ADMIN_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      resolve(code);
    });
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const listening = new Promise<Running['ports']>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'payment listening (API over mTLS; ops and admin plaintext)') {
        const port = (k: string): number => (entry[k] as { port: number }[])[0]!.port;
        resolve({ api: port('api'), ops: port('ops'), admin: port('admin') });
      }
    });
    void exited.then((code) => {
      reject(new Error(`server exited with ${String(code)} before listening: ${stderr}`));
    });
  });
  return { child, lines, ports: await listening, exited };
}

describe('the process: mTLS API, ops and admin ports, graceful shutdown, restart', () => {
  let td: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  const children: ChildProcess[] = [];
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
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
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

    const first = await start(env);
    children.push(first.child);
    const ok = await call(order, first.ports.api, 'e2e-key-0001');
    const okBody = await ok.body.text();
    assert.equal(ok.statusCode, 201, okBody);
    const denied = await call(inventory, first.ports.api, 'e2e-key-0002');
    await denied.body.dump();
    assert.equal(denied.statusCode, 403);

    const ready = await fetch(`http://127.0.0.1:${first.ports.ops}/health/ready`);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { identity: true, store: true } });
    const faults = await fetch(`http://127.0.0.1:${first.ports.admin}/admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ failure_rate: 1 }),
    });
    assert.deepEqual(await faults.json(), { latency_ms: 0, failure_rate: 1 });
    const failing = await call(order, first.ports.api, 'e2e-key-0003', 'o-e2e-2');
    await failing.body.dump();
    assert.equal(failing.statusCode, 502);

    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    assert.ok(first.lines.some((l) => String(l.msg).startsWith('identity from static files')));
    assert.ok(first.lines.some((l) => l.msg === 'shutting down: draining in-flight requests'));
    const all = JSON.stringify(first.lines);
    assert.ok(!all.includes('5555555555554444'), 'card number in the log');
    assert.ok(!all.includes('e2e-key-0001'), 'idempotency key in the log');

    const second = await start(env);
    children.push(second.child);
    const replay = await call(order, second.ports.api, 'e2e-key-0001');
    assert.equal(replay.statusCode, 201);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal(await replay.body.text(), okBody);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  });

  test('a bad setting stops the process with a message naming the variable', async () => {
    const bad = await start({ ...env, PAYMENT_FAILURE_RATE: '2' }).then(
      () => assert.fail('started with PAYMENT_FAILURE_RATE=2'),
      (err: unknown) => err as Error,
    );
    assert.match(bad.message, /PAYMENT_FAILURE_RATE: must be between 0 and 1/);
  });
});
