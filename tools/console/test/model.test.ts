import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelBuilder } from '../src/model.ts';
import { parsePrometheusText } from '../src/prometheus-text.ts';
import type { ServiceReading } from '../src/service-reader.ts';

const ORDER = 'spiffe://example.org/order';

function reading(name: string, at: number, metrics: string, spiffeId: string): ServiceReading {
  return {
    name,
    opsUrl: `http://127.0.0.1:9/${name}`,
    at,
    reachable: true,
    error: null,
    ready: true,
    readyReasons: {},
    identity: {
      mode: 'files',
      source: 'files',
      ready: true,
      spiffeId,
      serial: '01',
      notBefore: null,
      notAfter: null,
      secondsToExpiry: 100,
      rotations: 0,
      history: [],
      trustRoots: {},
      lastError: null,
    },
    samples: parsePrometheusText(metrics),
  };
}

const decision = (caller: string, rule: string, d: string, n: number): string =>
  `shop_authz_decisions_total{protocol="http",route="/api/payments",caller="${caller}",rule="${rule}",decision="${d}",service="payment"} ${n}`;

describe('the model', () => {
  test('Prometheus text: labels with escapes, comments skipped', () => {
    const s = parsePrometheusText(
      '# HELP x y\n# TYPE x counter\nx{a="1",b="q\\"uote"} 3\nshop_circuit_breaker_state{breaker="payment:http",service="order"} 2\n',
    );
    assert.deepEqual(s, [
      { name: 'x', labels: { a: '1', b: 'q"uote' }, value: 3 },
      { name: 'shop_circuit_breaker_state', labels: { breaker: 'payment:http', service: 'order' }, value: 2 },
    ]);
  });

  test('an edge per caller, from the service whose /identity has that ID; allow and deny rates over the window; breakers by name', () => {
    const m = new ModelBuilder();
    const rule = `ID is one of [${ORDER}]`;
    m.record(reading('order', 0, 'shop_circuit_breaker_state{breaker="payment:http",service="order"} 2', ORDER));
    m.record(reading('payment', 0, decision(ORDER, rule, 'allow', 10), 'spiffe://example.org/payment'));
    m.record(
      reading(
        'payment',
        2000,
        [decision(ORDER, rule, 'allow', 30), decision('none', rule, 'deny', 4)].join('\n'),
        'spiffe://example.org/payment',
      ),
    );
    const model = m.build(['order', 'payment'], [], 1000, 'here');
    const byCaller = new Map(model.edges.map((e) => [e.caller, e]));
    const fromOrder = byCaller.get(ORDER)!;
    assert.equal(fromOrder.from, 'order');
    assert.equal(fromOrder.to, 'payment');
    assert.deepEqual(fromOrder.rules, [rule]);
    assert.deepEqual(fromOrder.allow, { total: 30, perSecond: 10 });
    assert.deepEqual(fromOrder.deny, { total: 0, perSecond: 0 });
    const unauthenticated = byCaller.get('none')!;
    assert.equal(unauthenticated.from, null);
    assert.deepEqual(unauthenticated.deny, { total: 4, perSecond: 2 });
    assert.deepEqual(
      model.breakers.map((b) => [b.service, b.breaker, b.state]),
      [['order', 'payment:http', 'open']],
    );
  });
});
