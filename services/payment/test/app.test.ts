import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { createServiceMetrics } from '@shop/service-kit';
import { buildAdminApp } from '../src/admin.ts';
import {
  INVENTORY,
  ORDER,
  PAYMENT,
  chargeBody,
  createIdentity,
  errorOf,
  get,
  post,
  startPayment,
  type Body,
  type Harness,
  type Identity,
} from './harness.ts';

let id: Identity;
before(async () => {
  id = await createIdentity();
});

async function charged(h: Harness, orderId: string, extra: Body = {}): Promise<string> {
  const res = await post(h.app, '/api/charge', chargeBody(orderId, extra));
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ payment_id: string }>().payment_id;
}

describe('who may call: the order service only, on every route', () => {
  test('order passes; payment and inventory get 403; no or unverified identity gets 401; nothing is charged for them', async (t) => {
    const h = await startPayment(t, id);
    const paymentId = await charged(h, 'o-auth');
    type Call = (peer: string | null, n: number) => ReturnType<typeof get>;
    const routes: [string, Call, number][] = [
      ['POST /api/charge', (peer, n) => post(h.app, '/api/charge', chargeBody(`o-auth-${n}`), { peer }), 201],
      ['POST /api/refund', (peer) => post(h.app, '/api/refund', { payment_id: paymentId, amount: 1 }, { peer }), 201],
      ['GET /api/payments/:id', (peer) => get(h.app, `/api/payments/${paymentId}`, peer), 200],
      ['GET /api/payments?order_id=', (peer) => get(h.app, '/api/payments?order_id=o-auth', peer), 200],
    ];
    let n = 0;
    for (const [route, call, okStatus] of routes) {
      // Positive control first: a suite where everything is refused must fail here.
      assert.equal((await call(ORDER, n++)).statusCode, okStatus, `${route} as order`);
      for (const other of [PAYMENT, INVENTORY]) {
        const res = await call(other, n++);
        assert.equal(res.statusCode, 403, `${route} as ${other}`);
        assert.equal(errorOf(res).code, 'AUTH_ERR_PEER_UNAUTHORIZED');
        assert.equal(errorOf(res).caller, other);
      }
      const anonymous = await call(null, n++);
      assert.equal(anonymous.statusCode, 401, `${route} without identity`);
      assert.equal(errorOf(anonymous).code, 'AUTH_ERR_PEER_NO_CERTIFICATE');
      const unverified = await call('spiffe://example.org/ghost', n++);
      assert.equal(unverified.statusCode, 401, `${route} with an unverifiable identity`);
    }
    // The control charge, the first route's allowed charge, nothing else.
    assert.equal(await h.store.countPayments(), 2);
    const view = (await get(h.app, `/api/payments/${paymentId}`)).json<{ refunds: unknown[] }>();
    assert.equal(view.refunds.length, 1, 'only the order service refunded');
  });
});

describe('bad input: a 4xx that says what to fix, and nothing stored', () => {
  const KEY = 'key-bad-input';
  const cases: [string, unknown, number, string, RegExp][] = [
    ['malformed JSON', '{"order_id":', 400, 'FST_ERR_CTP_INVALID_JSON_BODY', /not valid JSON/],
    ['empty body', '', 400, 'FST_ERR_CTP_EMPTY_JSON_BODY', /empty/],
    ['body is null', 'null', 400, 'INVALID_REQUEST', /body must be object/],
    ['body is an array', '[]', 400, 'INVALID_REQUEST', /body must be object/],
    ['missing order_id', { amount: 100, currency: 'EUR', user_id: 'u' }, 400, 'INVALID_REQUEST', /order_id/],
    ['missing amount', { order_id: 'o', currency: 'EUR', user_id: 'u' }, 400, 'INVALID_REQUEST', /amount/],
    ['missing currency', { order_id: 'o', amount: 100, user_id: 'u' }, 400, 'INVALID_REQUEST', /currency/],
    ['missing user_id', { order_id: 'o', amount: 100, currency: 'EUR' }, 400, 'INVALID_REQUEST', /user_id/],
    ['amount as a string', chargeBody('o', { amount: '100' }), 400, 'INVALID_REQUEST', /amount must be integer/],
    ['amount with a fraction', chargeBody('o', { amount: 10.5 }), 400, 'INVALID_REQUEST', /amount must be integer/],
    ['amount zero', chargeBody('o', { amount: 0 }), 400, 'INVALID_REQUEST', /amount must be >= 1/],
    ['amount negative', chargeBody('o', { amount: -5 }), 400, 'INVALID_REQUEST', /amount must be >= 1/],
    ['amount absurd', chargeBody('o', { amount: 1_000_000_01 }), 400, 'INVALID_REQUEST', /amount must be <= 100000000/],
    ['order_id a number', chargeBody('o', { order_id: 7 }), 400, 'INVALID_REQUEST', /order_id must be string/],
    ['order_id empty', chargeBody('o', { order_id: '' }), 400, 'INVALID_REQUEST', /order_id/],
    ['unknown currency', chargeBody('o', { currency: 'JPY' }), 400, 'UNKNOWN_CURRENCY', /EUR, USD, GBP/],
    ['lower-case currency', chargeBody('o', { currency: 'eur' }), 400, 'UNKNOWN_CURRENCY', /"eur"/],
    ['currency a number', chargeBody('o', { currency: 978 }), 400, 'INVALID_REQUEST', /currency must be string/],
    ['card number too short', chargeBody('o', { card_number: '42424242424' }), 400, 'INVALID_REQUEST', /card_number/],
    ['card number too long', chargeBody('o', { card_number: '4'.repeat(20) }), 400, 'INVALID_REQUEST', /card_number/],
    [
      'card number with spaces',
      chargeBody('o', { card_number: '4242 4242 4242 4242' }),
      400,
      'INVALID_REQUEST',
      /card_number/,
    ],
    ['card number a number', chargeBody('o', { card_number: 4242424242424242 }), 400, 'INVALID_REQUEST', /card_number/],
    ['unknown field', chargeBody('o', { tip: 5 }), 400, 'INVALID_REQUEST', /additional properties: tip/],
    [
      'oversized body',
      chargeBody('o', { user_id: 'u'.repeat(70_000) }),
      413,
      'FST_ERR_CTP_BODY_TOO_LARGE',
      /too large/,
    ],
  ];

  test('POST /api/charge: each case refused with its code; the same key then works (positive control)', async (t) => {
    const h = await startPayment(t, id);
    for (const [name, body, status, code, message] of cases) {
      const res = await post(h.app, '/api/charge', body, { key: KEY });
      assert.equal(res.statusCode, status, `${name}: ${res.body}`);
      assert.equal(errorOf(res).code, code, name);
      assert.match(errorOf(res).message, message, name);
    }
    assert.equal(await h.store.countPayments(), 0);
    // No key record was left behind by any refusal: the same key now charges.
    assert.equal((await post(h.app, '/api/charge', chargeBody('o'), { key: KEY })).statusCode, 201);
    assert.equal(await h.store.countPayments(), 1);
  });

  test('Idempotency-Key: required, 1–255 printable characters', async (t) => {
    const h = await startPayment(t, id);
    assert.equal((await post(h.app, '/api/charge', chargeBody('o-k0'), { key: 'k'.repeat(255) })).statusCode, 201);
    const missing = await post(h.app, '/api/charge', chargeBody('o-k1'), { key: null });
    assert.equal(missing.statusCode, 400);
    assert.equal(errorOf(missing).code, 'IDEMPOTENCY_KEY_REQUIRED');
    for (const key of ['k'.repeat(256), 'clé-1']) {
      const res = await post(h.app, '/api/charge', chargeBody('o-k1'), { key });
      assert.equal(res.statusCode, 400, key);
      assert.equal(errorOf(res).code, 'IDEMPOTENCY_KEY_INVALID');
    }
    const refundWithout = await post(h.app, '/api/refund', { payment_id: 'pay_x' }, { key: null });
    assert.equal(errorOf(refundWithout).code, 'IDEMPOTENCY_KEY_REQUIRED');
    assert.equal(await h.store.countPayments(), 1);
  });

  test('POST /api/refund: bad bodies refused, nothing refunded', async (t) => {
    const h = await startPayment(t, id);
    const paymentId = await charged(h, 'o-r');
    const bad: [string, unknown, number, string][] = [
      ['missing payment_id', { amount: 5 }, 400, 'INVALID_REQUEST'],
      ['amount zero', { payment_id: paymentId, amount: 0 }, 400, 'INVALID_REQUEST'],
      ['amount as a string', { payment_id: paymentId, amount: '5' }, 400, 'INVALID_REQUEST'],
      ['reason a number', { payment_id: paymentId, reason: 5 }, 400, 'INVALID_REQUEST'],
      ['unknown field', { payment_id: paymentId, currency: 'EUR' }, 400, 'INVALID_REQUEST'],
      ['malformed JSON', '{"payment_id"', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
      ['unknown payment', { payment_id: 'pay_nope' }, 404, 'PAYMENT_NOT_FOUND'],
    ];
    for (const [name, body, status, code] of bad) {
      const res = await post(h.app, '/api/refund', body, { key: 'refund-key' });
      assert.equal(res.statusCode, status, `${name}: ${res.body}`);
      assert.equal(errorOf(res).code, code, name);
    }
    const view = (await get(h.app, `/api/payments/${paymentId}`)).json<{ amount_refunded: number }>();
    assert.equal(view.amount_refunded, 0);
    assert.equal((await post(h.app, '/api/refund', { payment_id: paymentId }, { key: 'refund-key' })).statusCode, 201);
  });

  test('GET: missing or repeated order_id → 400; unknown payment or order → 404 PAYMENT_NOT_FOUND; unknown route → 404', async (t) => {
    const h = await startPayment(t, id);
    const paymentId = await charged(h, 'o-g');
    assert.equal((await get(h.app, `/api/payments/${paymentId}`)).statusCode, 200);
    assert.equal((await get(h.app, '/api/payments?order_id=o-g')).statusCode, 200);
    assert.equal(errorOf(await get(h.app, '/api/payments')).code, 'INVALID_REQUEST');
    assert.equal((await get(h.app, '/api/payments?order_id=a&order_id=b')).statusCode, 400);
    const unknown = await get(h.app, '/api/payments/pay_nope');
    assert.equal(unknown.statusCode, 404);
    assert.equal(errorOf(unknown).code, 'PAYMENT_NOT_FOUND');
    const noOrder = await get(h.app, '/api/payments?order_id=o-none');
    assert.equal(noOrder.statusCode, 404);
    assert.equal(errorOf(noOrder).code, 'PAYMENT_NOT_FOUND');
    assert.equal(errorOf(await get(h.app, '/api/nope')).code, 'NOT_FOUND');
  });
});

describe('the simulated processor: test cards', () => {
  const cards: [string, string | undefined, number, string, string | undefined][] = [
    ['success', '4242424242424242', 201, 'succeeded', undefined],
    ['no card: the default succeeds', undefined, 201, 'succeeded', undefined],
    ['generic decline', '4000000000000002', 402, 'declined', 'card_declined'],
    ['insufficient funds', '4000000000009995', 402, 'declined', 'insufficient_funds'],
    ['expired card', '4000000000000069', 402, 'declined', 'expired_card'],
    ['fails the Luhn check', '4242424242424241', 402, 'declined', 'incorrect_number'],
    ['another valid number', '5555555555554444', 201, 'succeeded', undefined],
  ];

  test('each card gives its outcome; declines are stored with their reason', async (t) => {
    const h = await startPayment(t, id);
    for (const [i, [name, card, status, outcome, reason]] of cards.entries()) {
      const orderId = `o-card-${i}`;
      const res = await post(h.app, '/api/charge', chargeBody(orderId, card ? { card_number: card } : {}));
      assert.equal(res.statusCode, status, `${name}: ${res.body}`);
      const body = res.json<Body>();
      assert.equal(body.status, outcome, name);
      assert.equal(body.order_id, orderId);
      assert.equal(body.amount, 1999);
      assert.equal(body.currency, 'EUR');
      assert.match(String(body.payment_id), /^pay_/);
      assert.equal(body.decline_reason, reason, name);
      if (status === 402) assert.equal(body.code, 'CARD_DECLINED', name);
      const stored = (await get(h.app, `/api/payments/${String(body.payment_id)}`)).json<Body>();
      assert.equal(stored.status, outcome, name);
      assert.equal(stored.card_last4, (card ?? '4242424242424242').slice(-4));
    }
    assert.equal(await h.store.countPayments(), cards.length);
  });

  test('4000000000000119 → 502 PROCESSOR_ERROR, Retry-After, nothing charged, the key stays usable', async (t) => {
    const h = await startPayment(t, id);
    const body = chargeBody('o-119', { card_number: '4000000000000119' });
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await post(h.app, '/api/charge', body, { key: 'k-119' });
      assert.equal(res.statusCode, 502);
      assert.equal(errorOf(res).code, 'PROCESSOR_ERROR');
      assert.equal(res.headers['retry-after'], '1');
      assert.equal(res.headers['idempotent-replayed'], undefined, 'a processing error is not stored under the key');
    }
    assert.equal(await h.store.countPayments(), 0);
    assert.equal((await get(h.app, '/api/payments?order_id=o-119')).statusCode, 404);
  });

  test('audit: one line per charge and refund with caller, payment, order, amount and result; never a card number or a whole key', async (t) => {
    const h = await startPayment(t, id);
    const key = 'secret-idempotency-key-0001';
    const ok = await post(h.app, '/api/charge', chargeBody('o-audit', { card_number: '5555555555554444' }), { key });
    const paymentId = ok.json<{ payment_id: string }>().payment_id;
    await post(h.app, '/api/charge', chargeBody('o-audit-2', { card_number: '4000000000009995' }), {
      key: 'k-declined',
    });
    await post(h.app, '/api/refund', { payment_id: paymentId, amount: 500 }, { key: 'k-refund' });
    const audits = h.lines.filter((l) => l.audit).map((l) => l.audit as Body);
    assert.deepEqual(
      audits.map((a) => [a.operation, a.result, a.caller, a.order_id, a.amount]),
      [
        ['charge', 'succeeded', ORDER, 'o-audit', 1999],
        ['charge', 'declined', ORDER, 'o-audit-2', 1999],
        ['refund', 'refunded', ORDER, 'o-audit', 500],
      ],
    );
    assert.equal(audits[0]!.payment_id, paymentId);
    assert.equal(audits[0]!.card_last4, '4444');
    assert.equal(audits[2]!.payment_id, paymentId);
    const log = JSON.stringify(h.lines);
    assert.ok(!log.includes('5555555555554444'), 'card number logged');
    assert.ok(!log.includes('4000000000009995'), 'card number logged');
    assert.ok(!log.includes(key), 'idempotency key logged in full');
  });
});

describe('fault knobs: latency and failure rate, at start and at run time', () => {
  test('PAYMENT_LATENCY_MS waits before the processor answers (charges and refunds); 0 waits not at all', async (t) => {
    const slept: number[] = [];
    const h = await startPayment(t, id, {
      processor: {
        faults: { latencyMs: 0 },
        sleep: (ms) => {
          slept.push(ms);
          return Promise.resolve();
        },
      },
    });
    const paymentId = await charged(h, 'o-lat-0');
    assert.deepEqual(slept, []);
    h.processor.setFaults({ latencyMs: 250 });
    await charged(h, 'o-lat-1');
    assert.equal((await post(h.app, '/api/refund', { payment_id: paymentId })).statusCode, 201);
    assert.deepEqual(slept, [250, 250]);
  });

  test('a real latency really delays the answer', async (t) => {
    const h = await startPayment(t, id, { processor: { faults: { latencyMs: 120 } } });
    const started = performance.now();
    await charged(h, 'o-lat-real');
    assert.ok(performance.now() - started >= 115, 'answered before the configured latency');
  });

  test('PAYMENT_FAILURE_RATE fails that fraction of charges with 502 PROCESSOR_ERROR (draws below the rate fail)', async (t) => {
    const draws = [0.1, 0.9, 0.49, 0.5];
    const h = await startPayment(t, id, {
      processor: { faults: { failureRate: 0.5 }, random: () => draws.shift() ?? 0.99 },
    });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(h.app, '/api/charge', chargeBody(`o-fail-${i}`))).statusCode);
    assert.deepEqual(statuses, [502, 201, 502, 201]);
    assert.equal(await h.store.countPayments(), 2);
  });

  test('the admin server shows and changes the knobs; bad values are refused', async (t) => {
    const h = await startPayment(t, id, { processor: { random: () => 0.5 } });
    const admin = buildAdminApp(h.processor, createServiceMetrics('payment'));
    t.after(() => admin.close());
    const show = await admin.inject({ method: 'GET', url: '/admin/faults' });
    assert.deepEqual(show.json(), { latency_ms: 0, failure_rate: 0 });
    assert.equal((await post(h.app, '/api/charge', chargeBody('o-adm-0'))).statusCode, 201);

    const set = await admin.inject({ method: 'POST', url: '/admin/faults', payload: { failure_rate: 1 } });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(set.json(), { latency_ms: 0, failure_rate: 1 });
    assert.equal((await post(h.app, '/api/charge', chargeBody('o-adm-1'))).statusCode, 502);

    for (const payload of [
      { failure_rate: 1.5 },
      { latency_ms: -1 },
      { latency_ms: 60_001 },
      { latency_ms: '5' },
      { foo: 1 },
      {},
    ]) {
      const res = await admin.inject({ method: 'POST', url: '/admin/faults', payload });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(res.json<{ code: string }>().code, 'INVALID_REQUEST');
    }
    assert.deepEqual(h.processor.faults, { latencyMs: 0, failureRate: 1 }, 'a refused change changes nothing');

    await admin.inject({ method: 'POST', url: '/admin/faults', payload: { failure_rate: 0, latency_ms: 5 } });
    assert.equal((await post(h.app, '/api/charge', chargeBody('o-adm-1'))).statusCode, 201);
  });
});

describe('refunds', () => {
  test('full refund by default; then nothing is left', async (t) => {
    const h = await startPayment(t, id);
    const paymentId = await charged(h, 'o-full');
    const res = await post(h.app, '/api/refund', { payment_id: paymentId, reason: 'requested_by_customer' });
    assert.equal(res.statusCode, 201);
    const body = res.json<Body>();
    assert.equal(body.status, 'refunded');
    assert.equal(body.payment_id, paymentId);
    assert.equal(body.amount, 1999);
    assert.match(String(body.refund_id), /^re_/);
    const again = await post(h.app, '/api/refund', { payment_id: paymentId });
    assert.equal(again.statusCode, 409);
    assert.equal(errorOf(again).code, 'REFUND_EXCEEDS_CHARGE');
    const view = (await get(h.app, `/api/payments/${paymentId}`)).json<Body>();
    assert.equal(view.amount_refunded, 1999);
    assert.deepEqual(
      (view.refunds as Body[]).map((r) => [r.refund_id, r.amount, r.reason]),
      [[body.refund_id, 1999, 'requested_by_customer']],
    );
  });

  test('partial refunds add up to the charge and no further', async (t) => {
    const h = await startPayment(t, id);
    const paymentId = await charged(h, 'o-part', { amount: 1000 });
    assert.equal((await post(h.app, '/api/refund', { payment_id: paymentId, amount: 300 })).statusCode, 201);
    const over = await post(h.app, '/api/refund', { payment_id: paymentId, amount: 701 });
    assert.equal(over.statusCode, 409);
    assert.equal(errorOf(over).code, 'REFUND_EXCEEDS_CHARGE');
    assert.match(errorOf(over).message, /700 left/);
    const rest = await post(h.app, '/api/refund', { payment_id: paymentId });
    assert.equal(rest.json<{ amount: number }>().amount, 700);
    const view = (await get(h.app, '/api/payments?order_id=o-part')).json<Body>();
    assert.equal(view.amount_refunded, 1000);
    assert.equal((view.refunds as unknown[]).length, 2);
  });

  test('a declined payment cannot be refunded (409 PAYMENT_NOT_REFUNDABLE)', async (t) => {
    const h = await startPayment(t, id);
    const declined = await post(h.app, '/api/charge', chargeBody('o-dec', { card_number: '4000000000000002' }));
    assert.equal(declined.statusCode, 402);
    const res = await post(h.app, '/api/refund', { payment_id: declined.json<{ payment_id: string }>().payment_id });
    assert.equal(res.statusCode, 409);
    assert.equal(errorOf(res).code, 'PAYMENT_NOT_REFUNDABLE');
  });

  test('a refund replays under its key and refunds once', async (t) => {
    const h = await startPayment(t, id);
    const paymentId = await charged(h, 'o-rr');
    const first = await post(h.app, '/api/refund', { payment_id: paymentId, amount: 100 }, { key: 'rk' });
    const second = await post(h.app, '/api/refund', { amount: 100, payment_id: paymentId }, { key: 'rk' });
    assert.equal(first.statusCode, 201);
    assert.equal(second.statusCode, 201);
    assert.equal(second.body, first.body);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    const view = (await get(h.app, `/api/payments/${paymentId}`)).json<Body>();
    assert.equal(view.amount_refunded, 100);
  });
});
