// Rotation while requests flow, and TLS session resumption that never skips
// verification.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { authorizeAny, authorizeId } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth } from '../src/adapters/fastify.ts';
import { createGrpcMtls, grpcChannelCredentials, type GrpcMtls } from '../src/adapters/grpc.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import { isAuthError } from '../src/errors.ts';
import { canResume, connectMtls, type ResumableSession } from '../src/tls/client-connect.ts';
import {
  echoService,
  type WhoAmIReply,
  MemorySource,
  createTestTrustDomain,
  type TestTrustDomain,
} from '@shop/auth-testing';

let td: TestTrustDomain;
let serverSource: MemorySource;
let clientSource: MemorySource;
let app: FastifyInstance;
let port: number;

before(async () => {
  td = await createTestTrustDomain('example.org');
  serverSource = MemorySource.create(await td.svid('/payment'), [td.bundle]);
  clientSource = MemorySource.create(await td.svid('/order'), [td.bundle]);
  app = Fastify({ https: fastifyMtlsOptions(serverSource), logger: false });
  await app.register(spiffeAuth, { source: serverSource, allow: ['spiffe://example.org/order'] });
  app.get('/whoami', (req) => ({ caller: req.peer?.id.toString(), serial: req.peer?.certificate.serialNumber }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});
after(async () => {
  await app.close();
});

async function serverSerialSeenByNewConnection(): Promise<string> {
  const { socket, peer } = await connectMtls({
    host: '127.0.0.1',
    port,
    source: clientSource,
    authorize: authorizeId('spiffe://example.org/payment'),
  });
  socket.destroy();
  return peer.certificate.serialNumber;
}

describe('rotation under load (HTTP)', () => {
  test('both sides rotate five times while requests flow: none fail, new connections present the new SVIDs', async () => {
    const dispatcher = createMtlsDispatcher({
      source: clientSource,
      authorize: authorizeId('spiffe://example.org/payment'),
      connections: 4,
    });
    let ok = 0;
    const failures: unknown[] = [];
    const clientSerials = new Set<string>();
    let running = true;
    const worker = async (): Promise<void> => {
      let i = 0;
      while (running) {
        try {
          // Every fourth request closes its connection, so new handshakes keep happening during rotation.
          const res = await request(`https://127.0.0.1:${port}/whoami`, { dispatcher, reset: i++ % 4 === 0 });
          const body = (await res.body.json()) as { serial: string };
          if (res.statusCode === 200) {
            ok++;
            clientSerials.add(body.serial);
          } else failures.push(res.statusCode);
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    try {
      for (let r = 0; r < 5; r++) {
        await new Promise((resolve) => setTimeout(resolve, 80));
        const [s, c] = await Promise.all([td.svid('/payment'), td.svid('/order')]);
        serverSource.set(s, [td.bundle]);
        clientSource.set(c, [td.bundle]);
        assert.equal(
          await serverSerialSeenByNewConnection(),
          s.leaf.serialNumber,
          `rotation ${r + 1}: server presents the new SVID`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 80));
    } finally {
      running = false;
      await Promise.all(workers);
      await dispatcher.close();
    }
    assert.deepEqual(failures, []);
    assert.ok(ok > 50, `requests flowed (${ok})`);
    assert.ok(
      clientSerials.has(clientSource.getX509Svid().leaf.serialNumber),
      'the server saw the last client SVID on a new connection',
    );
    assert.ok(clientSerials.size >= 3, `the server saw several client SVIDs (${clientSerials.size})`);
  });
});

describe('rotation under load (gRPC)', () => {
  let server: grpc.Server;
  let mtls: GrpcMtls;
  let grpcPort: number;
  before(async () => {
    mtls = createGrpcMtls({ source: serverSource, allow: ['spiffe://example.org/order'] });
    server = new grpc.Server({ interceptors: [mtls.interceptor] });
    server.addService(echoService, {
      whoAmI: (call: grpc.ServerUnaryCall<unknown, WhoAmIReply>, cb: grpc.sendUnaryData<WhoAmIReply>) => {
        cb(null, { caller: mtls.peerOf(call)?.id.toString() ?? null });
      },
    });
    grpcPort = await mtls.listen(server, { port: 0 });
  });
  after(async () => {
    await mtls.close(100);
    server.forceShutdown();
  });

  test('calls keep succeeding across rotations of both sides; a new channel uses the new client SVID', async () => {
    const creds = grpcChannelCredentials(clientSource, authorizeId('spiffe://example.org/payment'));
    const call = (client: grpc.Client): Promise<WhoAmIReply> =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          echoService.whoAmI.path,
          echoService.whoAmI.requestSerialize,
          (b: Buffer) => JSON.parse(b.toString()) as WhoAmIReply,
          {},
          { deadline: Date.now() + 5000 },
          (e, v) => {
            if (e) reject(e);
            else resolve(v!);
          },
        );
      });
    const client = new grpc.Client(`127.0.0.1:${grpcPort}`, creds);
    let ok = 0;
    const failures: unknown[] = [];
    try {
      for (let r = 0; r < 5; r++) {
        const batch = await Promise.allSettled(Array.from({ length: 20 }, () => call(client)));
        for (const b of batch) {
          if (b.status === 'fulfilled' && b.value.caller === 'spiffe://example.org/order') ok++;
          else failures.push(b);
        }
        serverSource.set(await td.svid('/payment'), [td.bundle]);
        clientSource.set(await td.svid('/order'), [td.bundle]);
      }
      const fresh = new grpc.Client(`127.0.0.1:${grpcPort}`, creds);
      assert.deepEqual(await call(fresh), { caller: 'spiffe://example.org/order' });
      fresh.close();
    } finally {
      client.close();
    }
    assert.deepEqual(failures, []);
    assert.equal(ok, 100);
  });
});

describe('TLS session resumption never skips verification', () => {
  test('a resumed session is verified again: accepted while trusted, refused once the CA is gone', async () => {
    let session: ResumableSession | undefined;
    const authorize = authorizeId('spiffe://example.org/payment');
    const first = await connectMtls({
      host: '127.0.0.1',
      port,
      source: clientSource,
      authorize,
      onSession: (s) => (session = s),
    });
    // TLS 1.3 tickets arrive after the handshake; read once so the ticket lands.
    first.socket.write('GET /whoami HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    await new Promise((resolve) => first.socket.once('end', resolve).resume());
    assert.ok(session, 'the server issued a session ticket');

    // Positive control: the session really is resumed, and still verified.
    const resumed = await connectMtls({ host: '127.0.0.1', port, source: clientSource, authorize, session });
    assert.equal(resumed.socket.isSessionReused(), true);
    assert.equal(resumed.peer.id.toString(), 'spiffe://example.org/payment');
    resumed.socket.destroy();

    // Another authorizer refuses the same resumed session.
    await assert.rejects(
      connectMtls({
        host: '127.0.0.1',
        port,
        source: clientSource,
        authorize: authorizeId('spiffe://example.org/inventory'),
        session,
      }),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_UNAUTHORIZED'),
    );

    // Our bundle loses the CA: the resumed session is refused.
    const other = await createTestTrustDomain('example.org');
    const distrusting = MemorySource.create(clientSource.getX509Svid(), [other.bundle]);
    await assert.rejects(
      connectMtls({ host: '127.0.0.1', port, source: distrusting, authorize, session }),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_UNVERIFIED'),
    );
  });

  test('a session is not resumed after our own SVID rotated, so the server sees the new certificate', async () => {
    const dispatcher = createMtlsDispatcher({ source: clientSource, authorize: authorizeAny() });
    const serial = async (): Promise<string> => {
      const res = await request(`https://127.0.0.1:${port}/whoami`, { dispatcher, reset: true });
      return ((await res.body.json()) as { serial: string }).serial;
    };
    try {
      const before = clientSource.getX509Svid().leaf.serialNumber;
      assert.equal(await serial(), before);
      assert.equal(
        await serial(),
        before,
        'positive control: the (resumed) second connection is still the same identity',
      );
      clientSource.set(await td.svid('/order'), [td.bundle]);
      const after = clientSource.getX509Svid().leaf.serialNumber;
      assert.notEqual(after, before);
      assert.equal(await serial(), after, 'the first connection after rotation presents the new SVID');
    } finally {
      await dispatcher.close();
    }
  });

  test('canResume: only with the SVID the session was made with, and while the server leaf has life left', async () => {
    const svid = clientSource.getX509Svid();
    const other = await td.svid('/order');
    const now = Date.now();
    const session = { ticket: Buffer.alloc(1), chain: [], svid, serverNotAfter: now + 60_000 };
    assert.equal(canResume(session, svid, now), true);
    assert.equal(canResume(session, other, now), false);
    assert.equal(canResume({ ...session, serverNotAfter: now + 1000 }, svid, now), false);
    assert.equal(canResume(undefined, svid, now), false);
  });

  test('the server re-verifies the client on resumed connections too', async () => {
    const dispatcher = createMtlsDispatcher({ source: clientSource, authorize: authorizeAny() });
    try {
      const a = await request(`https://127.0.0.1:${port}/whoami`, { dispatcher, reset: true });
      assert.equal(a.statusCode, 200);
      await a.body.dump();
      const b = await request(`https://127.0.0.1:${port}/whoami`, { dispatcher, reset: true });
      assert.equal(b.statusCode, 200, 'resumed connection carries the client identity');
      assert.equal(((await b.body.json()) as { caller: string }).caller, 'spiffe://example.org/order');
      // The server stops trusting our CA: the next (resumed) connection is 401.
      const other = await createTestTrustDomain('example.org');
      const keep = serverSource.getX509Svid();
      serverSource.set(keep, [other.bundle]);
      try {
        const c = await request(`https://127.0.0.1:${port}/whoami`, { dispatcher, reset: true });
        assert.equal(c.statusCode, 401);
        assert.equal(((await c.body.json()) as { code: string }).code, 'AUTH_ERR_PEER_UNVERIFIED');
      } finally {
        serverSource.set(keep, [td.bundle]);
      }
    } finally {
      await dispatcher.close();
    }
  });
});

describe('connections are recycled at the half-life of a certificate on them', () => {
  test('HTTP: a keep-alive connection is closed once past its recycle time; the next request reconnects', async () => {
    // A certificate near its end: the connection gets half of what is left (about a second).
    const aging = await td.issue('/order', {
      notBefore: new Date(Date.now() - 3_600_000),
      notAfter: new Date(Date.now() + 2500),
    });
    const { Agent } = await import('undici');
    const d = new Agent({ connect: { rejectUnauthorized: false, cert: aging.certPem, key: aging.keyPem } });
    const call = async (): Promise<string | undefined> => {
      const res = await request(`https://127.0.0.1:${port}/whoami`, { dispatcher: d });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
      return res.headers.connection as string | undefined;
    };
    try {
      assert.equal(await call(), 'keep-alive', 'positive control: before the recycle time the connection stays');
      await new Promise((r) => setTimeout(r, 1400));
      assert.equal(await call(), 'close');
    } finally {
      await d.close();
    }
  });

  test("gRPC: the server drains a connection at the client certificate's half-life; calls go on over a new one, none fail", async () => {
    const mtls = createGrpcMtls({ source: serverSource, allow: ['spiffe://example.org/order'] });
    const server = new grpc.Server({ interceptors: [mtls.interceptor] });
    type Reply = WhoAmIReply & { via: string };
    server.addService(echoService, {
      whoAmI: (call: grpc.ServerUnaryCall<unknown, Reply>, cb: grpc.sendUnaryData<Reply>) => {
        cb(null, { caller: mtls.peerOf(call)?.id.toString() ?? null, via: call.getPeer() });
      },
    });
    const grpcPort = await mtls.listen(server, { port: 0 });
    // A client SVID whose half-life is a second away; like a SPIRE agent, the
    // test hands the client its next SVID a little before that.
    const short = MemorySource.create(
      await td.svid('/order', { notBefore: new Date(Date.now() - 2000), ttlSeconds: 6 }),
      [td.bundle],
    );
    const next = await td.svid('/order');
    setTimeout(() => {
      short.set(next, [td.bundle]);
    }, 700).unref();
    const client = new grpc.Client(
      `127.0.0.1:${grpcPort}`,
      grpcChannelCredentials(short, authorizeId('spiffe://example.org/payment')),
    );
    const call = (): Promise<Reply> =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          echoService.whoAmI.path,
          echoService.whoAmI.requestSerialize,
          (b: Buffer) => JSON.parse(b.toString()) as Reply,
          {},
          (e, v) => {
            if (e) reject(e);
            else resolve(v!);
          },
        );
      });
    const connections = new Set<string>();
    const failures: unknown[] = [];
    try {
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        try {
          const r = await call();
          assert.equal(r.caller, 'spiffe://example.org/order');
          connections.add(r.via);
        } catch (err) {
          failures.push(err);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      client.close();
      await mtls.close(100);
      server.forceShutdown();
    }
    assert.deepEqual(failures, []);
    assert.ok(connections.size >= 2, `calls moved to a new connection (${[...connections].join(', ')})`);
  });
});
