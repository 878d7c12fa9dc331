// Several payment replicas on one PostgreSQL database: the rules hold because
// the database holds them (idempotency keys' primary key, one success per
// order's unique index, the payment row's lock), not one process's memory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startPostgres, type PostgresCluster } from '@shop/pg-testing';
import { Env, readDatabaseConfig, type DatabaseConfig } from '@shop/service-kit';
import { chargeBody, createIdentity, errorOf, post, startPayment, type Harness, type Identity } from './harness.ts';

describe('payment replicas on one PostgreSQL', () => {
  let cluster: PostgresCluster;
  let id: Identity;
  let made = 0;
  before(async () => {
    cluster = await startPostgres({ roles: [{ name: 'payment' }] });
    id = await createIdentity();
  });
  after(() => cluster.stop());

  // n replicas on a fresh database of their own (owned by the payment role);
  // the processor takes a while, so requests to different replicas overlap.
  const replicas = async (t: Parameters<typeof startPayment>[0], n: number): Promise<Harness[]> => {
    const name = `payment_${String(++made)}`;
    const admin = await cluster.admin();
    await admin.query(`CREATE DATABASE ${name} OWNER payment`);
    await admin.end();
    const url = new URL(cluster.url('payment'));
    url.pathname = `/${name}`;
    const database: DatabaseConfig = readDatabaseConfig(new Env({ DATABASE_URL: url.href }), {
      dataDir: '/unused',
      file: 'unused',
    });
    const rs: Harness[] = [];
    // One after the other: the first migrates (replicas starting together are tested in service-kit).
    for (let i = 0; i < n; i++) {
      rs.push(await startPayment(t, id, { database, processor: { faults: { latencyMs: 150 } } }));
    }
    return rs;
  };

  test('positive control: different keys and orders on three replicas are each charged once', async (t) => {
    const rs = await replicas(t, 3);
    const res = await Promise.all(rs.map((r, i) => post(r.app, '/api/charge', chargeBody(`o-ctl-${String(i)}`))));
    assert.deepEqual(
      res.map((r) => r.statusCode),
      [201, 201, 201],
    );
    assert.equal(await rs[0]?.store.countPayments(), 3);
  });

  test('the same Idempotency-Key sent to three replicas at once: one charge; the others get its answer or 409 in progress', async (t) => {
    const rs = await replicas(t, 3);
    const body = chargeBody('o-same-key');
    const first = await Promise.all(rs.map((r) => post(r.app, '/api/charge', body, { key: 'k-race' })));
    const codes = first.map((r) => (r.statusCode === 201 ? 'charged' : errorOf(r).code));
    assert.equal(codes.filter((c) => c === 'charged').length >= 1, true, JSON.stringify(codes));
    for (const c of codes) assert.ok(c === 'charged' || c === 'IDEMPOTENCY_KEY_IN_PROGRESS', c);
    assert.ok(codes.includes('IDEMPOTENCY_KEY_IN_PROGRESS'), `the requests overlapped: ${JSON.stringify(codes)}`);
    const charged = first.filter((r) => r.statusCode === 201).map((r) => r.json<{ payment_id: string }>().payment_id);
    assert.equal(new Set(charged).size, 1, 'every 201 names the same payment');
    assert.equal(await rs[0]?.store.countPayments(), 1, 'one charge in the ledger');
    // A retry on any replica gets the stored answer, byte for byte.
    const again = await Promise.all(rs.map((r) => post(r.app, '/api/charge', body, { key: 'k-race' })));
    for (const r of again) {
      assert.equal(r.statusCode, 201);
      assert.equal(r.headers['idempotent-replayed'], 'true');
      assert.equal(r.json<{ payment_id: string }>().payment_id, charged[0]);
    }
    assert.equal(await rs[1]?.store.countPayments(), 1);
  });

  test('the same key with another body on another replica: 422 IDEMPOTENCY_KEY_REUSED, nothing charged', async (t) => {
    const [a, b] = await replicas(t, 2);
    assert.ok(a && b);
    assert.equal((await post(a.app, '/api/charge', chargeBody('o-reuse'), { key: 'k-reuse' })).statusCode, 201);
    const other = await post(b.app, '/api/charge', chargeBody('o-reuse', { amount: 5 }), { key: 'k-reuse' });
    assert.equal(other.statusCode, 422);
    assert.equal(errorOf(other).code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(await b.store.countPayments(), 1);
  });

  test('one order charged under two keys on two replicas at once: one success; the other 409 ORDER_ALREADY_CHARGED', async (t) => {
    const [a, b] = await replicas(t, 2);
    assert.ok(a && b);
    const res = await Promise.all([
      post(a.app, '/api/charge', chargeBody('o-two-keys'), { key: 'k-a' }),
      post(b.app, '/api/charge', chargeBody('o-two-keys'), { key: 'k-b' }),
    ]);
    assert.deepEqual(res.map((r) => r.statusCode).sort(), [201, 409]);
    const refused = res.find((r) => r.statusCode === 409);
    assert.equal(refused && errorOf(refused).code, 'ORDER_ALREADY_CHARGED');
    assert.equal(await a.store.countPayments(), 1);
  });

  test('two full refunds of one payment on two replicas at once: one refunded, the other 409 REFUND_EXCEEDS_CHARGE', async (t) => {
    const [a, b] = await replicas(t, 2);
    assert.ok(a && b);
    const charge = await post(a.app, '/api/charge', chargeBody('o-refund'), { key: 'k-charge' });
    const paymentId = charge.json<{ payment_id: string }>().payment_id;
    const res = await Promise.all([
      post(a.app, '/api/refund', { payment_id: paymentId }, { key: 'r-a' }),
      post(b.app, '/api/refund', { payment_id: paymentId }, { key: 'r-b' }),
    ]);
    assert.deepEqual(res.map((r) => r.statusCode).sort(), [201, 409]);
    const refused = res.find((r) => r.statusCode === 409);
    assert.equal(refused && errorOf(refused).code, 'REFUND_EXCEEDS_CHARGE');
    assert.equal(await a.store.refundedAmount(paymentId), 1999);
  });
});
