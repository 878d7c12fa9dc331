// The Workload API path end to end: identities streamed from a (fake) SPIRE
// agent into a fastify server and an undici client, rotating while traffic
// flows, surviving an agent restart, and dropping a removed trust domain.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { authorizeAny, authorizeId } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth } from '../src/adapters/fastify.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import { createIdentitySource } from '../src/source/create-identity-source.ts';
import type { IdentitySource } from '../src/source/identity-source.ts';
import { connectMtls } from '../src/tls/client-connect.ts';
import { FakeWorkloadApi, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

let example: TestTrustDomain;
let partner: TestTrustDomain;
let paymentAgent: FakeWorkloadApi;
let orderAgent: FakeWorkloadApi;
let payment: IdentitySource;
let order: IdentitySource;
let app: FastifyInstance;
let url: string;

async function rotatePayment(federated = [partner.bundle]): Promise<string> {
  const svid = await example.svid('/payment');
  paymentAgent.setX509Context({ svids: [{ svid }], bundle: example.bundle, federatedBundles: federated });
  return svid.leaf.serialNumber;
}
async function rotateOrder(): Promise<string> {
  const svid = await example.svid('/order');
  orderAgent.setX509Context({ svids: [{ svid }], bundle: example.bundle });
  return svid.leaf.serialNumber;
}
async function until(predicate: () => boolean, what: string): Promise<void> {
  // Generous: CI machines run several suites at once.
  const deadline = Date.now() + 15_000;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => {
  [example, partner] = await Promise.all([
    createTestTrustDomain('example.org'),
    createTestTrustDomain('partner.example'),
  ]);
  [paymentAgent, orderAgent] = await Promise.all([FakeWorkloadApi.start(), FakeWorkloadApi.start()]);
  await Promise.all([rotatePayment(), rotateOrder()]);
  const picked: string[] = [];
  [payment, order] = await Promise.all([
    createIdentitySource({ env: { SPIFFE_ENDPOINT_SOCKET: paymentAgent.address }, log: (l) => picked.push(l) }),
    createIdentitySource({ env: { SPIFFE_ENDPOINT_SOCKET: orderAgent.address } }),
  ]);
  assert.equal(payment.kind, 'spiffe');
  assert.match(picked[0] ?? '', /identity from SPIFFE/);
  app = Fastify({ https: fastifyMtlsOptions(payment), logger: false });
  await app.register(spiffeAuth, { source: payment, allow: authorizeAny() });
  app.get('/whoami', (req) => ({ caller: req.peer?.id.toString(), serial: req.peer?.certificate.serialNumber }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}/whoami`;
});
// Declared before setup can fail, so everything started is stopped even then.
after(async () => {
  const started = { app, payment, order, paymentAgent, orderAgent } as Partial<{
    app: FastifyInstance;
    payment: IdentitySource;
    order: IdentitySource;
    paymentAgent: FakeWorkloadApi;
    orderAgent: FakeWorkloadApi;
  }>;
  await started.app?.close();
  await Promise.all([started.payment?.close(), started.order?.close()]);
  await Promise.all([started.paymentAgent?.close(), started.orderAgent?.close()]);
});

async function paymentSerialOnNewConnection(): Promise<string> {
  const port = Number(new URL(url).port);
  const { socket, peer } = await connectMtls({
    host: '127.0.0.1',
    port,
    source: order,
    authorize: authorizeId('spiffe://example.org/payment'),
  });
  socket.destroy();
  return peer.certificate.serialNumber;
}

describe('Workload API identities in use', () => {
  test('every agent call carries the workload.spiffe.io header', () => {
    const calls = [...paymentAgent.calls, ...orderAgent.calls];
    assert.ok(calls.length >= 2);
    for (const c of calls) assert.equal(c.metadata['workload.spiffe.io'], 'true', c.method);
  });

  test('SVIDs pushed by the agent rotate both sides while requests flow; none fail', async () => {
    const dispatcher = createMtlsDispatcher({
      source: order,
      authorize: authorizeId('spiffe://example.org/payment'),
      connections: 4,
    });
    const failures: unknown[] = [];
    const seenClientSerials = new Set<string>();
    let ok = 0;
    let running = true;
    const worker = async (): Promise<void> => {
      let i = 0;
      while (running) {
        try {
          const res = await request(url, { dispatcher, reset: i++ % 3 === 0 });
          const body = (await res.body.json()) as { serial: string };
          if (res.statusCode === 200) {
            ok++;
            seenClientSerials.add(body.serial);
          } else failures.push(res.statusCode);
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const workers = Array.from({ length: 6 }, () => worker());
    let lastOrder = '';
    try {
      for (let r = 0; r < 4; r++) {
        await new Promise((resolve) => setTimeout(resolve, 60));
        const paySerial = await rotatePayment();
        lastOrder = await rotateOrder();
        await until(
          () =>
            payment.getX509Svid().leaf.serialNumber === paySerial &&
            order.getX509Svid().leaf.serialNumber === lastOrder,
          'both sources to rotate',
        );
        assert.equal(await paymentSerialOnNewConnection(), paySerial, `rotation ${r + 1}`);
      }
      await until(() => seenClientSerials.has(lastOrder), 'the last client SVID to be seen on a new connection');
    } finally {
      running = false;
      await Promise.all(workers);
      await dispatcher.close();
    }
    assert.deepEqual(failures, []);
    assert.ok(ok > 30, `requests flowed (${ok})`);
  });

  test('agent down: services keep serving on their SVIDs, reconnect, and rotate again', async () => {
    const dispatcher = createMtlsDispatcher({ source: order, authorize: authorizeId('spiffe://example.org/payment') });
    try {
      await paymentAgent.stop();
      await orderAgent.stop();
      for (let i = 0; i < 10; i++) {
        const res = await request(url, { dispatcher, reset: true });
        assert.equal(res.statusCode, 200, 'served while the agent is down');
        await res.body.dump();
      }
      await paymentAgent.restart();
      await orderAgent.restart();
      const serial = await rotatePayment();
      await until(() => payment.getX509Svid().leaf.serialNumber === serial, 'rotation after the agent is back');
      assert.equal(await paymentSerialOnNewConnection(), serial);
    } finally {
      await dispatcher.close();
    }
  });

  test('a federated trust domain dropped from the next message stops being trusted', async () => {
    const partnerClient = await partner.issue('/reader');
    const { Agent } = await import('undici');
    const call = async (): Promise<number> => {
      const d = new Agent({
        connect: { rejectUnauthorized: false, cert: partnerClient.certPem, key: partnerClient.keyPem },
      });
      try {
        const res = await request(url, { dispatcher: d });
        await res.body.dump();
        return res.statusCode;
      } finally {
        await d.close();
      }
    };
    await rotatePayment([partner.bundle]);
    await until(() => payment.getX509Bundles().get('partner.example') !== undefined, 'partner bundle');
    assert.equal(await call(), 200, 'positive control: partner trusted while federated');
    await rotatePayment([]);
    await until(() => payment.getX509Bundles().get('partner.example') === undefined, 'partner bundle removed');
    assert.equal(await call(), 401);
  });
});
