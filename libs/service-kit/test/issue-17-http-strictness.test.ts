// Issue 17: parser-level errors answered fastify's `{ error, message,
// statusCode }` or an empty body instead of `{ code, message }`; two Host
// headers and a request line without a version were served; and bodies were
// coerced ("2" taken for 2). Every case runs against a real listening server
// over raw sockets, each refusal beside the well-formed request it differs from.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { request as httpRequest } from 'undici';
import { createServiceMetrics } from '../src/metrics.ts';
import { HTTP_PROTOCOL_ERRORS, installHttpBasics, serviceFastifyOptions } from '../src/http-server.ts';
import { jsonOf, rawHttp, request, type RawAnswer } from './support/raw-http.ts';

async function startServer(extra: FastifyServerOptions = {}): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify(serviceFastifyOptions({ logger: false, ...extra }));
  installHttpBasics(app, createServiceMetrics('kit'));
  app.get<{ Params: { id: string } }>('/items/:id', (req) => ({ id: req.params.id }));
  app.post<{ Body: { name: string; quantity: number } }>(
    '/items',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'quantity'],
          properties: { name: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } },
        },
      },
    },
    (req) => req.body,
  );
  app.get<{ Querystring: { q: string } }>(
    '/search',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { q: { type: 'string', pattern: '^[a-z0-9]+$' } },
        },
      },
    },
    (req) => ({ q: req.query.q }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as AddressInfo).port };
}

/** assertRefused checks a protocol-level answer: the status and code of HTTP_PROTOCOL_ERRORS, a `{ code, message }` body, a closed connection. */
function assertRefused(res: RawAnswer, code: keyof typeof HTTP_PROTOCOL_ERRORS): void {
  assert.equal(res.status, HTTP_PROTOCOL_ERRORS[code], `status of ${code}: ${JSON.stringify(res)}`);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  const body = jsonOf(res);
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message'], 'exactly { code, message }');
  assert.equal(body.code, code);
  assert.ok((body.message ?? '').length > 20, 'the message says what to send instead');
  assert.ok(res.closed, 'the connection is closed after the answer');
}

describe('regression: issue 17 — HTTP parser errors and strictness answer { code, message }', () => {
  let app: FastifyInstance;
  let port: number;
  before(async () => {
    ({ app, port } = await startServer());
  });
  after(() => app.close());

  test('positive control: a well-formed HTTP/1.1 request with one Host is served', async () => {
    const res = await rawHttp({ port }, request('GET', '/items/1', ['Host: shop.test']));
    assert.equal(res.status, 200);
    assert.deepEqual(jsonOf(res), { id: '1' });
  });

  test('a request line the parser refuses → 400 BAD_REQUEST', async () => {
    assertRefused(await rawHttp({ port }, 'GARBAGE\r\n\r\n'), 'BAD_REQUEST');
    assertRefused(await rawHttp({ port }, 'GET /items/1 HTTP/3.0\r\nHost: a\r\n\r\n'), 'BAD_REQUEST');
    const bad = await rawHttp({ port }, 'GET /items/1 HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n');
    assertRefused(bad, 'BAD_REQUEST');
    assert.match(jsonOf(bad).message ?? '', /HPE_INVALID_HEADER_TOKEN/, 'names what the parser saw');
  });

  test('headers over 16 KiB → 431 HEADERS_TOO_LARGE; just under is served (positive control)', async () => {
    const big = await rawHttp({ port }, request('GET', '/items/1', ['Host: a', `X-Big: ${'x'.repeat(20_000)}`]));
    assertRefused(big, 'HEADERS_TOO_LARGE');
    const fits = await rawHttp({ port }, request('GET', '/items/1', ['Host: a', `X-Big: ${'x'.repeat(15_000)}`]));
    assert.equal(fits.status, 200);
  });

  test('HTTP/1.1 without Host → 400 MISSING_HOST (not Node’s empty body); HTTP/1.0 without Host is served', async () => {
    assertRefused(await rawHttp({ port }, request('GET', '/items/1', [])), 'MISSING_HOST');
    const http10 = await rawHttp({ port }, request('GET', '/items/1', [], 'HTTP/1.0'));
    assert.equal(http10.status, 200);
    assert.deepEqual(jsonOf(http10), { id: '1' });
  });

  test('two Host headers, in any spelling → 400 DUPLICATE_HOST; the same request with one is served', async () => {
    assertRefused(await rawHttp({ port }, request('GET', '/items/1', ['Host: a', 'Host: b'])), 'DUPLICATE_HOST');
    assertRefused(await rawHttp({ port }, request('GET', '/items/1', ['host: a', 'HOST: a'])), 'DUPLICATE_HOST');
    assert.equal((await rawHttp({ port }, request('GET', '/items/1', ['host: a']))).status, 200);
  });

  test('a request line without an HTTP version (HTTP/0.9) → 400 HTTP_VERSION_REQUIRED, or BAD_REQUEST when cut short', async () => {
    assertRefused(await rawHttp({ port }, 'GET /items/1\r\n\r\n'), 'HTTP_VERSION_REQUIRED');
    assertRefused(await rawHttp({ port }, 'GET /\r\n', { end: true }), 'BAD_REQUEST');
  });

  test('a request line with HTTP/2.0 on this HTTP/1 port → 505 HTTP_VERSION_NOT_SUPPORTED', async () => {
    assertRefused(
      await rawHttp({ port }, request('GET', '/items/1', ['Host: a'], 'HTTP/2.0')),
      'HTTP_VERSION_NOT_SUPPORTED',
    );
  });

  test('the router’s own refusals: a path that does not decode → 400 BAD_URL, a path parameter over 100 characters → 414', async () => {
    const badUrl = await rawHttp({ port }, request('GET', '/items/%zz', ['Host: a', 'Connection: close']));
    assertRefused(badUrl, 'BAD_URL');
    const long = await rawHttp({ port }, request('GET', `/items/${'x'.repeat(101)}`, ['Host: a', 'Connection: close']));
    assertRefused(long, 'PATH_PARAMETER_TOO_LONG');
    const hundred = await rawHttp({ port }, request('GET', `/items/${'x'.repeat(100)}`, ['Host: a']));
    assert.equal(hundred.status, 200, 'a 100-character parameter is served');
  });
});

describe('regression: issue 17 — a request that does not arrive in time → 408 REQUEST_TIMEOUT', () => {
  test('half a request head is answered 408 with { code, message }; a prompt one on the same server is served', async () => {
    // Node checks for timed-out requests every connectionsCheckingInterval ms.
    // (A variable: fastify's options type lists `http` only on its factory's overloads.)
    const extra = { http: { connectionsCheckingInterval: 50 }, requestTimeout: 300 };
    const { app, port } = await startServer(extra);
    try {
      assert.equal((await rawHttp({ port }, request('GET', '/items/1', ['Host: a']))).status, 200);
      assertRefused(await rawHttp({ port }, 'GET /items/1 HTTP/1.1\r\nHost: a\r\n'), 'REQUEST_TIMEOUT');
    } finally {
      await app.close();
    }
  });
});

describe('regression: issue 17 — schemas are strict: no type coercion, no unknown fields', () => {
  let app: FastifyInstance;
  let base: string;
  before(async () => {
    let port: number;
    ({ app, port } = await startServer());
    base = `http://127.0.0.1:${port}`;
  });
  after(() => app.close());

  const post = async (body: unknown): Promise<{ status: number; body: { code?: string; message?: string } }> => {
    const res = await httpRequest(`${base}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as { code?: string; message?: string } };
  };

  test('positive control: the proper types are accepted', async () => {
    const res = await post({ name: 'a', quantity: 2 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { name: 'a', quantity: 2 });
  });

  const coerced: [string, unknown][] = [
    ['quantity "2"', { name: 'a', quantity: '2' }],
    ['quantity true', { name: 'a', quantity: true }],
    ['quantity [1]', { name: 'a', quantity: [1] }],
    ['quantity null', { name: 'a', quantity: null }],
    ['name 123', { name: 123, quantity: 2 }],
    ['name ["a"]', { name: ['a'], quantity: 2 }],
    ['name false', { name: false, quantity: 2 }],
    ['an unknown field', { name: 'a', quantity: 2, extra: 1 }],
  ];
  for (const [name, body] of coerced) {
    test(`${name} → 400 INVALID_REQUEST`, async () => {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.code, 'INVALID_REQUEST');
      assert.match(res.body.message ?? '', /body/);
    });
  }

  test('string query parameters still validate (there is nothing to coerce); a repeated one is refused', async () => {
    const ok = await httpRequest(`${base}/search?q=abc1`);
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(await ok.body.json(), { q: 'abc1' });
    const twice = await httpRequest(`${base}/search?q=a&q=b`);
    assert.equal(twice.statusCode, 400);
    assert.equal(((await twice.body.json()) as { code: string }).code, 'INVALID_REQUEST');
    const unknown = await httpRequest(`${base}/search?q=a&limit=5`);
    assert.equal(unknown.statusCode, 400);
    await unknown.body.dump();
  });

  test('ajv options a service passes keep the strict defaults unless it names them', () => {
    const plugins = serviceFastifyOptions({ ajv: { plugins: [] } }).ajv as { customOptions: object };
    assert.deepEqual(plugins.customOptions, { coerceTypes: false, removeAdditional: false });
    const chosen = serviceFastifyOptions({ ajv: { customOptions: { coerceTypes: 'array' } } }).ajv as {
      customOptions: object;
    };
    assert.deepEqual(chosen.customOptions, { coerceTypes: 'array', removeAdditional: false });
  });
});

describe('regression: issue 17 — request metrics stay bounded whatever URLs callers send', () => {
  test('300 requests to random unknown URLs with query strings add one series; a known route is labelled with its pattern', async () => {
    const metrics = createServiceMetrics('kit');
    const app = Fastify(serviceFastifyOptions({ logger: false }));
    installHttpBasics(app, metrics);
    app.get('/items/:id', () => ({ ok: true }));
    await app.ready();
    const series = async (): Promise<string[]> =>
      (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('shop_requests_total{'));
    try {
      await app.inject({ url: '/items/7?x=1' });
      const known = await series();
      assert.equal(known.length, 1);
      assert.match(known[0]!, /route="\/items\/:id"/, 'positive control: the pattern, not /items/7');
      for (let i = 0; i < 300; i++) await app.inject({ url: `/nope-${i}?token=${i}` });
      const after = await series();
      assert.equal(after.length, 2, after.join('\n'));
      assert.ok(
        after.some((l) => l.includes('route="unmatched"') && l.endsWith(' 300')),
        'all 300 counted under "unmatched"',
      );
      assert.ok(!after.some((l) => l.includes('nope-') || l.includes('token=')), 'no URL in any label');
    } finally {
      await app.close();
    }
  });
});
