// The payment process on PostgreSQL: a bad DATABASE_URL or an unreachable
// database stops the start naming DATABASE_URL; a database lost while running
// makes /health/ready fail with the reason and requests answer 503
// DATABASE_UNAVAILABLE with Retry-After; the service is back by itself when
// the database is.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { authorizeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { MemorySource, createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth-testing';
import { freePort, startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { readyUntil, spawnService } from '@shop/service-kit/testing';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

describe('payment process on PostgreSQL: start-up errors, a lost database, recovery', () => {
  let td: TestTrustDomain;
  let cluster: PostgresCluster;
  let dir: string;
  let cleanup: () => Promise<void>;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    td = await createTestTrustDomain('example.org');
    cluster = await startPostgres({ roles: [{ name: 'payment' }] });
    ({ dir, cleanup } = await makeTempDir('payment-db-loss-'));
    const issued = await td.issue('/payment');
    await writeFile(join(dir, 'payment.crt.pem'), issued.certPem);
    await writeFile(join(dir, 'payment.key.pem'), issued.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'ca.crt.pem'), td.ca.certPem);
    env = {
      TLS_CERT_FILE: join(dir, 'payment.crt.pem'),
      TLS_KEY_FILE: join(dir, 'payment.key.pem'),
      TLS_CA_FILE: join(dir, 'ca.crt.pem'),
      ADMIN_PORT: '0',
      DATABASE_URL: cluster.url('payment'),
    };
  });
  after(async () => {
    await cluster.stop();
    await cleanup();
  });

  async function start(t: TestContext, extra: NodeJS.ProcessEnv = {}) {
    const s = spawnService(t, SERVER, { ...env, ...extra });
    const entry = await s.line('payment started');
    const port = (key: string): number => Number(new URL(entry[key] as string).port);
    return { ...s, api: port('api'), ops: `http://127.0.0.1:${String(port('ops'))}` };
  }

  test('the database goes away: not ready with the reason, 503 DATABASE_UNAVAILABLE; back when it is', async (t) => {
    const order = createMtlsDispatcher({
      source: MemorySource.create(await td.svid('/order'), [td.bundle]),
      authorize: authorizeId('spiffe://example.org/payment'),
    });
    t.after(() => order.close());
    const s = await start(t);
    const charge = async (key: string, orderId: string) => {
      const res = await order.request({
        origin: `https://127.0.0.1:${String(s.api)}`,
        path: '/api/charge',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ order_id: orderId, amount: 100, currency: 'EUR', user_id: 'u-1' }),
      });
      return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> };
    };
    // Positive control: up, ready, charging.
    assert.equal((await charge('k-1', 'o-1')).status, 201);
    assert.equal((await readyUntil(s.ops, (b) => b.status === 'ready')).status, 200);

    await cluster.halt();
    const down = await readyUntil(s.ops, (b) => b.checks.store === false);
    assert.equal(down.status, 503);
    assert.match(
      down.body.reasons?.store ?? '',
      /^the database at postgres:\/\/payment:\*\*\*@127\.0\.0\.1:\d+\/payment cannot be reached: /,
    );
    const refused = await charge('k-2', 'o-2');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'DATABASE_UNAVAILABLE');
    assert.equal(refused.headers['retry-after'], '1');
    assert.ok(s.lines.some((l) => l.msg === 'database lost; not ready until it is back'));

    await cluster.resume();
    const back = await readyUntil(s.ops, (b) => b.status === 'ready');
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal((await charge('k-2', 'o-2')).status, 201, 'the refused charge went through on retry');
    const replay = await charge('k-1', 'o-1');
    assert.equal(replay.headers['idempotent-replayed'], 'true', 'the ledger is the same one');
    s.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });

  test('a bad DATABASE_URL stops the start at once, naming the variable', async (t) => {
    const s = spawnService(t, SERVER, { ...env, DATABASE_URL: 'mysql://db.test/payment' });
    assert.equal(await s.exited, 1);
    assert.match(
      s.stderr(),
      /^payment: failed to start: SVC_ERR_CONFIG_INVALID: DATABASE_URL: must use postgres: or postgresql:/m,
    );
  });

  test('an unreachable database stops the start after DATABASE_CONNECT_WAIT_SECONDS, naming DATABASE_URL', async (t) => {
    const nobody = await freePort();
    const s = spawnService(t, SERVER, {
      ...env,
      DATABASE_URL: `postgres://payment@127.0.0.1:${String(nobody)}/payment`,
      DATABASE_CONNECT_WAIT_SECONDS: '1',
    });
    const started = Date.now();
    assert.equal(await s.exited, 1);
    assert.ok(Date.now() - started >= 1000, 'waited for the database first');
    assert.match(
      s.stderr(),
      /payment: failed to start: SVC_ERR_DATABASE_UNREACHABLE: DATABASE_URL postgres:\/\/payment@127\.0\.0\.1:\d+\/payment: not reachable within 1 s \(DATABASE_CONNECT_WAIT_SECONDS\): ECONNREFUSED/,
    );
  });
});
