// The shop harness with replicas (scripts/shop.ts): every replica gets
// connections through its service's balancer, a replica that crashes drops
// out of rotation without failing callers and comes back when restarted,
// and everything stops. Replicas here run on SQLite, each with its own file:
// only the processes and the balancing are under test, never the data (that
// needs one shared database: test/scale.test.ts). Also `npm start`'s
// --replicas and --db options.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { request, type Dispatcher } from 'undici';
import { authorizeId, FileIdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { createDevCerts, freePorts, ROOT, Shop, type ServiceName } from '../scripts/shop.ts';

const CATALOGUE = [{ product_id: 'sku-a', name: 'A', price_cents: 1000, currency: 'EUR', on_hand: 1000 }];

let dir: string;
let certsDir: string;
let shop: Shop;
let orderSource: FileIdentitySource;
let asOrder: Dispatcher;
const exits: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'scale-h-'));
  certsDir = join(dir, 'certs');
  await createDevCerts(certsDir, true);
  const seedFile = join(dir, 'catalogue.json');
  await writeFile(seedFile, JSON.stringify(CATALOGUE));
  orderSource = await FileIdentitySource.create({
    certFile: join(certsDir, 'order.crt.pem'),
    keyFile: join(certsDir, 'order.key.pem'),
    caFile: join(certsDir, 'ca.crt.pem'),
  });
  // One request per connection, so each call is a new turn of the balancer.
  asOrder = createMtlsDispatcher({
    source: orderSource,
    authorize: authorizeId('spiffe://example.org/payment'),
    pipelining: 0,
  });
  shop = new Shop({
    dataDir: join(dir, 'shop'),
    certsDir,
    ports: await freePorts(),
    replicas: { inventory: 2, payment: 3, order: 2 },
    env: { inventory: { SEED_FILE: seedFile } },
    onExit: (name, code, signal, replica) => exits.push(`${name}-${replica} ${signal ?? code ?? '?'}`),
  });
  await shop.startAll();
});

// Every process the suite started is stopped, also when a test failed.
after(async () => {
  await shop.stopAll();
  await asOrder.close();
  await orderSource.close();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  shop.killAllNow();
});

/** served is how many requests each replica of a service has answered (its own shop_requests_total). */
async function served(name: ServiceName): Promise<number[]> {
  return Promise.all(
    Array.from({ length: shop.replicas(name) }, async (_, i) => {
      const text = await (await request(`${shop.opsUrl(name, i + 1)}/metrics`)).body.text();
      return [...text.matchAll(/^shop_requests_total\{[^}]*\} (\S+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
    }),
  );
}

/** askPayment sends `n` payment look-ups through payment's balancer, each on a new connection, and returns their statuses. */
async function askPayment(n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(`https://127.0.0.1:${shop.ports.payment}/api/payments?order_id=nope-${i}`, {
      dispatcher: asOrder,
      reset: true,
    });
    await res.body.dump();
    statuses.push(res.statusCode);
  }
  return statuses;
}

const grew = (before: number[], after: number[]): boolean[] => after.map((a, i) => a > (before[i] ?? 0));

describe('shop harness with replicas (SQLite: processes and balancing only)', () => {
  test('every replica gets its turn: payment through its balancer, order through the public port', async () => {
    const p0 = await served('payment');
    const statuses = await askPayment(9);
    assert.equal(new Set(statuses).size, 1, `one answer for all: ${statuses.join(',')}`);
    assert.notEqual(statuses[0], 503);
    assert.deepEqual(grew(p0, await served('payment')), [true, true, true], 'all three payment replicas answered');

    const o0 = await served('order');
    for (let i = 0; i < 4; i++) {
      const res = await request(`${shop.orderUrl}/products`, { reset: true });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    assert.deepEqual(grew(o0, await served('order')), [true, true], 'both order replicas answered');
  });

  test('a replica killed (SIGKILL) costs no caller an error; restarted, it gets its turn again', async () => {
    // Positive control: all answer while every replica runs.
    assert.ok((await askPayment(6)).every((s) => s !== 503 && s >= 200 && s < 500));
    const pid = shop.pid('payment', 2);
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    // Straight away, before the harness has even seen the exit: the balancer skips the refusing port.
    const during = await askPayment(9);
    assert.ok(
      during.every((s) => s !== 503 && s >= 200 && s < 500),
      `answers with payment-2 dead: ${during.join(',')}`,
    );
    for (const until = Date.now() + 5000; shop.isRunning('payment', 2) && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(shop.isRunning('payment', 2), false);
    assert.deepEqual(exits, ['payment-2 SIGKILL'], 'the crash was reported, and nothing else exited');

    await shop.start('payment', {}, 2);
    const p0 = await served('payment');
    await askPayment(9);
    assert.deepEqual(grew(p0, await served('payment')), [true, true, true], 'payment-2 is back in rotation');
  });

  test('stopAll stops every replica and closes the balancers', async () => {
    const other = new Shop({
      dataDir: join(dir, 'other'),
      certsDir,
      ports: await freePorts(),
      replicas: { payment: 2 },
    });
    try {
      await other.start('payment');
      assert.ok(other.isRunning('payment', 1) && other.isRunning('payment', 2));
      const pids = [other.pid('payment', 1), other.pid('payment', 2)] as number[];
      await other.stopAll();
      assert.deepEqual([other.isRunning('payment', 1), other.isRunning('payment', 2)], [false, false]);
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} is gone`);
      const refused = await new Promise<string>((res) => {
        const s = connect(other.ports.payment, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          res('connected');
        });
        s.once('error', (e: NodeJS.ErrnoException) => {
          res(e.code ?? 'error');
        });
      });
      assert.equal(refused, 'ECONNREFUSED', "the balancer's port is closed");
    } finally {
      other.killAllNow();
    }
  });

  test('replica numbers are checked', () => {
    assert.throws(() => shop.opsUrl('payment', 4), /payment has replicas 1 to 3, not 4/);
    assert.throws(
      () => new Shop({ dataDir: dir, certsDir, replicas: { order: 0 } }),
      /replicas of order must be an integer from 1 to 8/,
    );
  });
});

describe('npm start: --replicas and --db', () => {
  async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        [join(ROOT, 'scripts/start.ts'), ...args],
        {
          timeout: 30_000,
        },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  test('valid options get past validation; bad ones exit 2 naming the option before anything starts', async () => {
    // Positive control: valid options reach the first step (certificates), which fails
    // here only because --certs-dir is under a file, so nothing binds the shop's ports.
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, '');
    for (const args of [
      ['--replicas', '1'],
      ['--replicas', '3', '--db', 'postgres'],
    ]) {
      const ok = await start([...args, '--certs-dir', join(blocker, 'certs'), '--data-dir', join(dir, 'start')]);
      assert.equal(ok.code, 1, `${args.join(' ')}: ${ok.stderr}`);
      assert.match(ok.stdout, /== certificates/);
    }
    for (const [args, says] of [
      [['--replica', '3'], /Unknown option '--replica'/],
      [['--replicas', '0'], /--replicas must be an integer from 1 to 8, got "0"/],
      [['--replicas', '2.5'], /--replicas must be an integer from 1 to 8/],
      [['--replicas', '9', '--db', 'postgres'], /--replicas must be an integer from 1 to 8, got "9"/],
      [['--db', 'mysql'], /--db must be sqlite or postgres, got "mysql"/],
      [['--replicas', '3'], /--replicas 3 needs --db postgres/],
      [['--replicas', '2', '--db', 'sqlite'], /--replicas 2 needs --db postgres/],
    ] as const) {
      const r = await start([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, says);
      assert.doesNotMatch(r.stdout, /==/, 'nothing started');
    }
  });
});
