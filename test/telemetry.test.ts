// Traces across the shop: the three services as processes over real mTLS,
// exporting OTLP/HTTP JSON to a receiver in this test. One order is one
// trace; server spans name the verified caller and the rule that let it in,
// client spans the verified server; a refused caller leaves a deny span.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { request, type Dispatcher } from 'undici';
import { authorizeId, FileIdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { grpcChannelCredentials } from '@shop/auth/grpc';
import * as grpc from '@grpc/grpc-js';
import { createInventoryGrpcClient } from '@shop/contracts';
import { createDevCerts, freePorts, Shop } from '../scripts/shop.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '@shop/service-kit/testing';

const ORDER = 'spiffe://example.org/order';
const PAYMENT = 'spiffe://example.org/payment';
const INVENTORY = 'spiffe://example.org/inventory';
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

let dir: string;
let receiver: OtlpReceiver;
let shop: Shop;
const sources: FileIdentitySource[] = [];
const dispatchers: Dispatcher[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otel-test-'));
  const certsDir = join(dir, 'certs');
  await createDevCerts(certsDir, true);
  const seedFile = join(dir, 'catalogue.json');
  await writeFile(
    seedFile,
    JSON.stringify([{ product_id: 'sku-a', name: 'A', price_cents: 1000, currency: 'EUR', on_hand: 100 }]),
  );
  receiver = await startOtlpReceiver();
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  shop = new Shop({
    dataDir: join(dir, 'shop'),
    certsDir,
    ports: await freePorts(),
    env: { inventory: { ...otel, SEED_FILE: seedFile }, payment: otel, order: otel },
  });
  await shop.startAll();
  // Callers the test plays: order (allowed everywhere), inventory (not by payment), payment (not by inventory's Reserve).
  for (const name of ['order', 'inventory', 'payment']) {
    sources.push(
      await FileIdentitySource.create({
        certFile: join(certsDir, `${name}.crt.pem`),
        keyFile: join(certsDir, `${name}.key.pem`),
        caFile: join(certsDir, 'ca.crt.pem'),
      }),
    );
  }
});

// Every process the test started is stopped here, also when a test failed.
after(async () => {
  await shop.stopAll();
  for (const d of dispatchers) await d.close();
  for (const s of sources) await s.close();
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
});
process.on('exit', () => {
  shop.killAllNow();
});

async function spansOf(traceId: string, ok: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    if (ok(spans)) return spans;
    if (Date.now() > deadline) assert.fail(`spans of trace ${traceId} incomplete: ${JSON.stringify(spans, null, 1)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function one(spans: ReceivedSpan[], service: string, kind: number, name: RegExp): ReceivedSpan {
  const found = spans.filter((s) => s.resource['service.name'] === service && s.kind === kind && name.test(s.name));
  assert.equal(
    found.length,
    1,
    `one ${service} span ${String(name)} of kind ${String(kind)}: ${JSON.stringify(spans)}`,
  );
  return found[0] as ReceivedSpan;
}

test('an order is one trace across order, inventory (gRPC) and payment (HTTP), with identities on every hop', async () => {
  const res = await request(`${shop.orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customer_id: 'c-1', currency: 'EUR', items: [{ product_id: 'sku-a', quantity: 1 }] }),
  });
  const order = (await res.body.json()) as { status: string };
  assert.equal(res.statusCode, 201, JSON.stringify(order));
  assert.equal(order.status, 'confirmed');

  // The order's root span is the one server span of order's POST /orders.
  const root = await (async () => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = receiver.spans.find(
        (s) => s.resource['service.name'] === 'order' && s.kind === SERVER && s.name === 'POST /orders',
      );
      if (r) return r;
      if (Date.now() > deadline) assert.fail('no order server span arrived');
      await new Promise((res2) => setTimeout(res2, 100));
    }
  })();
  assert.equal(root.parentSpanId, '');
  assert.equal(root.resource['spiffe.self.id'], ORDER);
  const spans = await spansOf(root.traceId, (s) => {
    const services = new Set(s.filter((x) => x.kind === SERVER).map((x) => x.resource['service.name']));
    return services.has('inventory') && services.has('payment');
  });
  assert.deepEqual(new Set(spans.map((s) => s.resource['service.name'])), new Set(['order', 'inventory', 'payment']));

  // order → inventory over gRPC: the client span names the server it verified; the server span the caller.
  const reserveClient = one(spans, 'order', CLIENT, /Reserve$/);
  assert.equal(reserveClient.attributes['spiffe.server.id'], INVENTORY);
  assert.equal(reserveClient.attributes['spiffe.server.trust_domain'], 'example.org');
  assert.equal(reserveClient.attributes['spiffe.self.id'], ORDER);
  const reserveServer = one(spans, 'inventory', SERVER, /Reserve$/);
  assert.equal(reserveServer.parentSpanId, reserveClient.spanId);
  assert.equal(reserveServer.attributes['spiffe.peer.id'], ORDER);
  assert.equal(reserveServer.attributes['spiffe.peer.trust_domain'], 'example.org');
  assert.equal(reserveServer.attributes['spiffe.self.id'], INVENTORY);
  assert.equal(reserveServer.attributes['spiffe.authz.decision'], 'allow');
  assert.match(String(reserveServer.attributes['spiffe.authz.rule']), /spiffe:\/\/example\.org\/order/);
  assert.equal(reserveServer.attributes['spiffe.authz.reason'], undefined);
  assert.match(String(reserveServer.attributes['spiffe.peer.svid.serial']), /^[0-9A-F]+$/);
  assert.ok(Date.parse(String(reserveServer.attributes['spiffe.peer.svid.not_after'])) > Date.now());
  assert.equal(reserveServer.attributes['tls.protocol.version'], '1.3');
  assert.equal(typeof reserveServer.attributes['tls.resumed'], 'boolean');
  assert.ok(reserveServer.attributes['tls.cipher']);
  assert.notEqual(reserveServer.status.code, ERROR);

  // order → payment over HTTP.
  const chargeClient = one(spans, 'order', CLIENT, /^POST$/);
  assert.equal(chargeClient.attributes['spiffe.server.id'], PAYMENT);
  assert.equal(chargeClient.attributes['url.path'], '/api/charge');
  // The client side knows the key-exchange group (Node exposes it on client sockets only).
  assert.ok(chargeClient.attributes['tls.group'], 'tls.group on the client span');
  const chargeServer = one(spans, 'payment', SERVER, /^POST \/api\/charge$/);
  assert.equal(chargeServer.parentSpanId, chargeClient.spanId);
  assert.equal(chargeServer.attributes['spiffe.peer.id'], ORDER);
  assert.equal(chargeServer.attributes['spiffe.authz.decision'], 'allow');
  assert.match(String(chargeServer.attributes['spiffe.authz.rule']), /spiffe:\/\/example\.org\/order/);
  assert.equal(chargeServer.attributes['http.response.status_code'], 201);
  // Both client spans are children of the order's own server span.
  assert.equal(reserveClient.parentSpanId, root.spanId);
  assert.equal(chargeClient.parentSpanId, root.spanId);
});

// A trace context of our own on each request, to find its span.
function traceparent(): { traceId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  return { traceId, header: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
}

async function callPaymentAs(index: 0 | 1 | 2): Promise<{ status: number; body: { code?: string }; traceId: string }> {
  const source = sources[index] as FileIdentitySource;
  const d = createMtlsDispatcher({ source, authorize: authorizeId(PAYMENT) });
  dispatchers.push(d);
  const { traceId, header } = traceparent();
  const res = await request(`https://127.0.0.1:${String(shop.ports.payment)}/api/payments?order_id=o-1`, {
    dispatcher: d,
    headers: { traceparent: header },
  });
  return { status: res.statusCode, body: (await res.body.json()) as { code?: string }, traceId };
}

test('a caller the allow list lets in leaves an allow span (positive control), one it does not a deny span with the reason', async () => {
  const allowed = await callPaymentAs(0);
  // Past authorization: there is no payment for that order.
  assert.equal(allowed.status, 404);
  const [allowSpan] = await spansOf(allowed.traceId, (s) => s.length > 0);
  assert.ok(allowSpan);
  assert.equal(allowSpan.attributes['spiffe.peer.id'], ORDER);
  assert.equal(allowSpan.attributes['spiffe.authz.decision'], 'allow');
  assert.notEqual(allowSpan.status.code, ERROR);

  const denied = await callPaymentAs(1);
  assert.equal(denied.status, 403);
  assert.ok(denied.body.code);
  const [denySpan] = await spansOf(denied.traceId, (s) => s.length > 0);
  assert.ok(denySpan);
  assert.equal(denySpan.resource['service.name'], 'payment');
  assert.equal(denySpan.attributes['spiffe.peer.id'], INVENTORY);
  assert.equal(denySpan.attributes['spiffe.authz.decision'], 'deny');
  assert.equal(denySpan.attributes['spiffe.authz.reason'], denied.body.code);
  assert.match(String(denySpan.attributes['spiffe.authz.rule']), /spiffe:\/\/example\.org\/order/);
  assert.equal(denySpan.attributes['http.response.status_code'], 403);
  assert.equal(denySpan.status.code, ERROR);
  assert.match(denySpan.status.message ?? '', new RegExp(denied.body.code));
});

test('TLS handshakes are counted by side, version, group, cipher and resumption', async () => {
  const text = await (await request(`${shop.opsUrl('order')}/metrics`)).body.text();
  const client = /^shop_tls_handshakes_total\{[^}]*side="client"[^}]*group="([^"]+)"[^}]*\} (\d+)/m.exec(text);
  assert.ok(client, text);
  assert.notEqual(client[1], 'unknown');
  assert.ok(Number(client[2]) >= 1);
  const paymentText = await (await request(`${shop.opsUrl('payment')}/metrics`)).body.text();
  assert.match(paymentText, /^shop_tls_handshakes_total\{[^}]*side="server"[^}]*protocol="1\.3"[^}]*\} [1-9]/m);
});

async function reserveAs(index: 0 | 1 | 2): Promise<{ code: grpc.status; traceId: string }> {
  const source = sources[index] as FileIdentitySource;
  const client = createInventoryGrpcClient(
    `127.0.0.1:${String(shop.ports.inventoryGrpc)}`,
    grpcChannelCredentials(source, authorizeId(INVENTORY)),
  );
  const { traceId, header } = traceparent();
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', header);
  try {
    await client.reserve({ order_id: `o-${traceId.slice(0, 8)}`, product_id: 'sku-a', quantity: 1 }, { metadata });
    return { code: grpc.status.OK, traceId };
  } catch (err) {
    return { code: (err as grpc.ServiceError).code, traceId };
  } finally {
    client.close();
  }
}

test("gRPC: order's Reserve leaves an allow span (positive control), a Reserve by payment a deny span with the reason", async () => {
  const allowed = await reserveAs(0);
  assert.equal(allowed.code, grpc.status.OK);
  const [allowSpan] = await spansOf(allowed.traceId, (s) => s.length > 0);
  assert.ok(allowSpan);
  assert.equal(allowSpan.resource['service.name'], 'inventory');
  assert.equal(allowSpan.attributes['spiffe.peer.id'], ORDER);
  assert.equal(allowSpan.attributes['spiffe.authz.decision'], 'allow');
  assert.equal(allowSpan.attributes['rpc.grpc.status_code'], grpc.status.OK);

  const denied = await reserveAs(2);
  assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
  const [denySpan] = await spansOf(denied.traceId, (s) => s.length > 0);
  assert.ok(denySpan);
  assert.equal(denySpan.attributes['spiffe.peer.id'], PAYMENT);
  assert.equal(denySpan.attributes['spiffe.authz.decision'], 'deny');
  assert.equal(denySpan.attributes['spiffe.authz.reason'], 'AUTH_ERR_PEER_UNAUTHORIZED');
  assert.equal(denySpan.attributes['rpc.grpc.status_code'], grpc.status.PERMISSION_DENIED);
  assert.equal(denySpan.status.code, ERROR);
});
