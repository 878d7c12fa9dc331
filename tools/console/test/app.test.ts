import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildConsoleApp } from '../src/app.ts';
import { loadConsoleConfig } from '../src/config.ts';
import { ShopConsole } from '../src/console.ts';
import type { Toggle } from '../src/toggles.ts';

const ORDER_ID = 'spiffe://example.org/order';

function app(toggles: Toggle[] = []) {
  // Nothing listens on these ports: the services read as unreachable, which is itself a reading.
  const config = loadConsoleConfig({ CONSOLE_SERVICES: 'order=http://127.0.0.1:1', CONSOLE_TRACE_LIMIT: '2' });
  const c = new ShopConsole(config, { toggles, mode: 'files' });
  return { c, app: buildConsoleApp(c) };
}

function otlp(traceId: string, spanId: string, attributes: Record<string, string>) {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'payment' } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId,
                spanId,
                name: 'POST /api/payments',
                kind: 2,
                startTimeUnixNano: '1700000000000000000',
                endTimeUnixNano: '1700000000012500000',
                attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: { stringValue: v } })),
                status: { code: 1 },
              },
            ],
          },
        ],
      },
    ],
  };
}

describe('console app', () => {
  test('serves the page, its script and styles, and a model naming where each figure comes from', async () => {
    const { c, app: a } = app();
    await c.poll();
    const page = await a.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /text\/html/);
    assert.match(page.body, /<script src="\/console.js"/);
    assert.equal((await a.inject({ url: '/console.js' })).statusCode, 200);
    assert.equal((await a.inject({ url: '/console.css' })).statusCode, 200);
    const model = (await a.inject({ url: '/api/model' })).json<{
      mode: string;
      services: { name: string; reachable: boolean; sources: { identity: string } }[];
      traceSource: string;
    }>();
    assert.equal(model.mode, 'files');
    const order = model.services[0]!;
    assert.equal(order.name, 'order');
    assert.equal(order.reachable, false);
    assert.equal(order.sources.identity, 'GET http://127.0.0.1:1/identity');
    assert.match(model.traceSource, /\/v1\/traces \(OTLP\/HTTP JSON\)/);
  });

  test('OTLP/HTTP JSON: spans are kept by trace with their attributes (positive control); protobuf is 415, a body without resourceSpans 400', async () => {
    const { app: a } = app();
    const ok = await a.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: otlp('AA'.repeat(16), 'BB'.repeat(8), { 'spiffe.peer.id': 'spiffe://example.org/order' }),
    });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), {});
    const model = (await a.inject({ url: '/api/model' })).json<{
      traces: { traceId: string; spans: { service: string; kind: string; durationMs: number; attributes: object }[] }[];
    }>();
    const trace = model.traces[0]!;
    const span = trace.spans[0]!;
    assert.equal(trace.traceId, 'aa'.repeat(16));
    assert.deepEqual(span.attributes, { 'spiffe.peer.id': 'spiffe://example.org/order' });
    assert.equal(span.service, 'payment');
    assert.equal(span.kind, 'server');
    assert.equal(span.durationMs, 12.5);

    const proto = await a.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf' },
      payload: Buffer.from([0x0a, 0x00]),
    });
    assert.equal(proto.statusCode, 415);
    assert.equal(proto.json<{ code: string }>().code, 'CONSOLE_OTLP_UNSUPPORTED');
    assert.match(proto.json<{ hint: string }>().hint, /OTEL_EXPORTER_OTLP_PROTOCOL=http\/json/);
    const bad = await a.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: { spans: [] },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<{ code: string }>().code, 'CONSOLE_OTLP_INVALID');
    const notJson = await a.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: '{',
    });
    assert.equal(notJson.statusCode, 400);
    assert.equal(notJson.json<{ code: string }>().code, 'CONSOLE_INVALID_REQUEST');
  });

  test('only the last CONSOLE_TRACE_LIMIT traces are kept, the most recent first; one without a hop between services is not listed; denied ones stay listed first', async () => {
    const { app: a } = app();
    for (const t of ['01', '02', '03']) {
      await a.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: otlp(t.repeat(16), t.repeat(8), { 'spiffe.peer.id': ORDER_ID }),
      });
    }
    const model = (await a.inject({ url: '/api/model' })).json<{ traces: { traceId: string }[] }>();
    assert.deepEqual(
      model.traces.map((t) => t.traceId),
      ['03'.repeat(16), '02'.repeat(16)],
    );
    await a.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: otlp('04'.repeat(16), '04'.repeat(8), { 'http.route': '/products' }),
    });
    const after = (await a.inject({ url: '/api/model' })).json<{ traces: { traceId: string }[] }>();
    assert.deepEqual(
      after.traces.map((t) => t.traceId),
      ['03'.repeat(16)],
    );
    // A trace with a denied hop stays listed, first, after busier traffic has pushed it out of the last two.
    await a.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      payload: otlp('05'.repeat(16), '05'.repeat(8), { 'spiffe.authz.decision': 'deny' }),
    });
    for (const t of ['06', '07']) {
      await a.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/json' },
        payload: otlp(t.repeat(16), t.repeat(8), { 'spiffe.peer.id': ORDER_ID }),
      });
    }
    const denied = (await a.inject({ url: '/api/model' })).json<{ traces: { traceId: string }[] }>();
    assert.deepEqual(
      denied.traces.map((t) => t.traceId),
      ['05'.repeat(16), '07'.repeat(16), '06'.repeat(16)],
    );
  });

  test('toggles: one that runs reports its outcome (positive control); unknown 404, unavailable 409, failing 502, each with its code', async () => {
    const toggle = (name: string, available: true | string, run: () => Promise<string>): Toggle => ({
      name,
      label: name,
      description: name,
      available: () => available,
      run,
    });
    const { app: a } = app([
      toggle('works', true, () => Promise.resolve('done it')),
      toggle('elsewhere', 'not available in files mode', () => Promise.resolve('never')),
      toggle('breaks', true, () => Promise.reject(new Error('the agent would not stop'))),
    ]);
    const post = (name: string) => a.inject({ method: 'POST', url: `/api/toggles/${name}`, payload: {} });
    const ok = await post('works');
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { ok: true, message: 'done it' });
    const model = (await a.inject({ url: '/api/model' })).json<{
      toggles: { name: string; available: unknown; last: { ok: boolean; message: string } | null }[];
    }>();
    assert.equal(model.toggles.find((t) => t.name === 'works')?.last?.message, 'done it');
    assert.equal(model.toggles.find((t) => t.name === 'elsewhere')?.available, 'not available in files mode');
    for (const [name, status, code] of [
      ['nope', 404, 'CONSOLE_TOGGLE_UNKNOWN'],
      ['elsewhere', 409, 'CONSOLE_TOGGLE_UNAVAILABLE'],
      ['breaks', 502, 'CONSOLE_TOGGLE_FAILED'],
    ] as const) {
      const res = await post(name);
      assert.equal(res.statusCode, status, name);
      assert.equal(res.json<{ code: string }>().code, code);
    }
    assert.match((await post('breaks')).json<{ message: string }>().message, /the agent would not stop/);
    const missing = await a.inject({ url: '/nowhere' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<{ code: string }>().code, 'NOT_FOUND');
  });
});
