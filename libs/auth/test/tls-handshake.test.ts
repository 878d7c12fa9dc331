// Every X.509-SVID rule over real TLS handshakes on loopback, in both roles:
// our server against a hostile client, our client against a hostile server,
// for HTTP (fastify + undici) and gRPC.
import assert from 'node:assert/strict';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { authorizeAny, authorizeId } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth } from '../src/adapters/fastify.ts';
import { createGrpcMtls, grpcChannelCredentials, type GrpcMtls } from '../src/adapters/grpc.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import type { AuthError } from '../src/errors.ts';
import {
  callWhoAmI,
  startHostileGrpcServer,
  startHostileHttpsServer,
  echoService,
  type WhoAmIReply,
  MemorySource,
  buildPeerCases,
  type PeerCase,
  type PeerCaseWorld,
} from '@shop/auth-testing';

let world: PeerCaseWorld;
let source: MemorySource;

before(async () => {
  world = await buildPeerCases();
  const svid = await world.example.svid('/server');
  source = MemorySource.create(svid, [world.example.bundle, world.partner.bundle]);
});

interface ErrorBody {
  code: string;
  message: string;
  caller: string | null;
  rule: string;
}

describe('HTTP: our fastify server against hostile clients', () => {
  let app: FastifyInstance;
  let url: string;
  const handshakeErrors: AuthError[] = [];
  before(async () => {
    app = Fastify({ https: fastifyMtlsOptions(source), logger: false });
    await app.register(spiffeAuth, { source, allow: authorizeAny(), onHandshakeError: (e) => handshakeErrors.push(e) });
    app.get('/whoami', (req) => ({ caller: req.peer?.id.toString() ?? null, trustDomain: req.peer?.trustDomain.name }));
    app.get('/orders-only', { config: { spiffe: { allow: ['spiffe://example.org/order'] } } }, (req) => ({
      caller: req.peer?.id.toString(),
    }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(() => app.close());

  const call = async (
    path: string,
    cert?: { certPem: string; keyPem: string },
  ): Promise<{ status: number; body: unknown }> => {
    const dispatcher = new Agent({
      connect: { rejectUnauthorized: false, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) },
    });
    try {
      const res = await request(url + path, { dispatcher });
      return { status: res.statusCode, body: await res.body.json() };
    } finally {
      await dispatcher.close();
    }
  };

  test('each peer case is accepted or rejected with 401 naming the rule it broke', async () => {
    for (const c of world.cases) {
      const res = await call('/whoami', c.cert);
      if (c.accept) {
        assert.equal(res.status, 200, c.name);
        assert.match((res.body as { caller: string }).caller, /^spiffe:\/\//, c.name);
      } else {
        assert.equal(res.status, 401, c.name);
        const body = res.body as ErrorBody;
        assert.equal(body.code, 'AUTH_ERR_PEER_UNVERIFIED', c.name);
        assert.ok(body.message.includes(c.expect ?? ''), `${c.name}: ${body.message}`);
        assert.equal(body.caller, null);
      }
    }
    const rejected = world.cases.filter((c) => !c.accept).length;
    assert.ok(handshakeErrors.length >= rejected, 'every rejected client is reported to onHandshakeError');
  });

  test('the partner SVID is verified against the partner bundle and exposes its trust domain', async () => {
    const partnerCase = world.cases.find((c) => c.name.startsWith('federated'))!;
    const res = await call('/whoami', partnerCase.cert);
    assert.deepEqual(res.body, { caller: 'spiffe://partner.example/reader', trustDomain: 'partner.example' });
  });

  test('no client certificate → 401; per-route allow-list → 403 naming caller and rule', async () => {
    const none = await call('/whoami');
    assert.equal(none.status, 401);
    assert.equal((none.body as ErrorBody).code, 'AUTH_ERR_PEER_NO_CERTIFICATE');

    const order = await world.example.issue('/order');
    const allowed = await call('/orders-only', order);
    assert.deepEqual(allowed, { status: 200, body: { caller: 'spiffe://example.org/order' } });

    const denied = await call('/orders-only', world.cases[0]!.cert);
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.body, {
      code: 'AUTH_ERR_PEER_UNAUTHORIZED',
      message: 'unexpected ID "spiffe://example.org/peer" (rule: ID is one of [spiffe://example.org/order])',
      caller: 'spiffe://example.org/peer',
      rule: 'ID is one of [spiffe://example.org/order]',
    });
  });

  test('TLS 1.2 clients are refused at the handshake; TLS 1.3 is accepted', async () => {
    const ok = new Agent({
      connect: {
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.3',
        cert: world.cases[0]!.cert.certPem,
        key: world.cases[0]!.cert.keyPem,
      },
    });
    assert.equal((await request(url + '/whoami', { dispatcher: ok })).statusCode, 200);
    await ok.close();
    const old = new Agent({
      connect: {
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.2',
        cert: world.cases[0]!.cert.certPem,
        key: world.cases[0]!.cert.keyPem,
      },
    });
    await assert.rejects(request(url + '/whoami', { dispatcher: old }), /protocol|version|alert/i);
    await old.close();
  });
});

describe('HTTP: our undici client against hostile servers', () => {
  test('each peer case is accepted or refused before any request is sent', async () => {
    for (const c of world.cases) {
      const server = await startHostileHttpsServer(c.cert);
      const dispatcher = createMtlsDispatcher({ source, authorize: authorizeAny() });
      try {
        if (c.accept) {
          const res = await request(server.url, { dispatcher });
          assert.deepEqual(await res.body.json(), { ok: true }, c.name);
        } else {
          await assert.rejects(request(server.url, { dispatcher }), (err: AuthError) => {
            assert.equal(err.code, 'AUTH_ERR_PEER_UNVERIFIED', c.name);
            assert.ok(err.message.includes(c.expect ?? ''), `${c.name}: ${err.message}`);
            return true;
          });
        }
      } finally {
        await dispatcher.close();
        await server.close();
      }
    }
  });

  test('the server is authorized by SPIFFE ID: right ID passes, wrong ID is refused naming it', async () => {
    const server = await startHostileHttpsServer(world.cases[0]!.cert);
    const right = createMtlsDispatcher({ source, authorize: authorizeId('spiffe://example.org/peer') });
    const wrong = createMtlsDispatcher({ source, authorize: authorizeId('spiffe://example.org/payment') });
    try {
      assert.equal((await request(server.url, { dispatcher: right })).statusCode, 200);
      await assert.rejects(request(server.url, { dispatcher: wrong }), (err: AuthError) => {
        assert.equal(err.code, 'AUTH_ERR_PEER_UNAUTHORIZED');
        assert.match(err.message, /unexpected ID "spiffe:\/\/example\.org\/peer"/);
        return true;
      });
    } finally {
      await right.close();
      await wrong.close();
      await server.close();
    }
  });

  test("Node's default hostname check refuses a URI-only SVID; our SPIFFE check replaces it", async () => {
    const server = await startHostileHttpsServer(world.cases[0]!.cert);
    try {
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
        httpsGet(server.url, { ca: world.example.ca.certPem }, () => {
          resolve(new Error('connected'));
        }).on('error', resolve);
      });
      assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      const dispatcher = createMtlsDispatcher({ source, authorize: authorizeId('spiffe://example.org/peer') });
      assert.equal((await request(server.url, { dispatcher })).statusCode, 200);
      await dispatcher.close();
    } finally {
      await server.close();
    }
  });

  test('plain http:// URLs are refused by the mTLS dispatcher', async () => {
    const dispatcher = createMtlsDispatcher({ source, authorize: authorizeAny() });
    await assert.rejects(
      request('http://127.0.0.1:9/', { dispatcher }),
      (err: AuthError) => err.code === 'AUTH_ERR_CONFIG_INVALID',
    );
    await dispatcher.close();
  });
});

describe('gRPC: our server against hostile clients', () => {
  let server: grpc.Server;
  let mtls: GrpcMtls;
  let port: number;
  before(async () => {
    mtls = createGrpcMtls({
      source,
      allow: authorizeAny(),
      methods: { '/test.Echo/Admin': ['spiffe://example.org/order'] },
    });
    server = new grpc.Server({ interceptors: [mtls.interceptor] });
    const handler: grpc.handleUnaryCall<unknown, WhoAmIReply> = (call, cb) => {
      cb(null, { caller: mtls.peerOf(call)?.id.toString() ?? null });
    };
    server.addService(
      { ...echoService, admin: { ...echoService.whoAmI, path: '/test.Echo/Admin' } },
      { whoAmI: handler, admin: handler },
    );
    port = await mtls.listen(server, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await mtls.close(100);
    server.forceShutdown();
  });

  const client = (c: PeerCase): grpc.Client =>
    new grpc.Client(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(
        Buffer.from(world.example.ca.certPem),
        Buffer.from(c.cert.keyPem),
        Buffer.from(c.cert.certPem),
        {
          checkServerIdentity: () => undefined,
        },
      ),
    );

  test('each peer case gets the call through with its ID, or UNAUTHENTICATED naming the rule', async () => {
    for (const c of world.cases) {
      const cl = client(c);
      try {
        if (c.accept) {
          const reply = await callWhoAmI(cl);
          assert.match(reply.caller ?? '', /^spiffe:\/\//, c.name);
        } else {
          await assert.rejects(callWhoAmI(cl), (err: grpc.ServiceError) => {
            assert.equal(err.code, grpc.status.UNAUTHENTICATED, c.name);
            assert.ok(err.details.includes(c.expect ?? ''), `${c.name}: ${err.details}`);
            return true;
          });
        }
      } finally {
        cl.close();
      }
    }
  });

  test('a per-method rule: the allowed caller passes, another verified caller gets PERMISSION_DENIED', async () => {
    const order = await world.example.issue('/order');
    const mk = (cert: { certPem: string; keyPem: string }) =>
      new grpc.Client(
        `127.0.0.1:${port}`,
        grpc.credentials.createSsl(
          Buffer.from(world.example.ca.certPem),
          Buffer.from(cert.keyPem),
          Buffer.from(cert.certPem),
          { checkServerIdentity: () => undefined },
        ),
      );
    const admin = (cl: grpc.Client) =>
      new Promise<WhoAmIReply>((resolve, reject) => {
        cl.makeUnaryRequest(
          '/test.Echo/Admin',
          echoService.whoAmI.requestSerialize,
          (b: Buffer) => JSON.parse(b.toString()) as WhoAmIReply,
          {},
          (err, v) => {
            if (err) reject(err);
            else resolve(v!);
          },
        );
      });
    const ok = mk(order);
    const other = mk(world.cases[0]!.cert);
    try {
      assert.deepEqual(await admin(ok), { caller: 'spiffe://example.org/order' });
      await assert.rejects(admin(other), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.PERMISSION_DENIED);
        assert.match(err.details, /unexpected ID "spiffe:\/\/example\.org\/peer"/);
        return true;
      });
    } finally {
      ok.close();
      other.close();
    }
  });
});

describe('gRPC: our client against hostile servers', () => {
  test('each peer case is reached, or refused before the call is sent', async () => {
    for (const c of world.cases) {
      const { server, port } = await startHostileGrpcServer(c.cert, 'hostile');
      const errors: AuthError[] = [];
      const cl = new grpc.Client(
        `127.0.0.1:${port}`,
        grpcChannelCredentials(source, authorizeAny(), { onHandshakeError: (e) => errors.push(e) }),
      );
      try {
        if (c.accept) {
          assert.deepEqual(await callWhoAmI(cl), { caller: 'hostile' }, c.name);
        } else {
          await assert.rejects(callWhoAmI(cl), (err: grpc.ServiceError) => {
            assert.equal(err.code, grpc.status.UNAVAILABLE, c.name);
            return true;
          });
          // Where OpenSSL's pooled pre-filter let the certificate through, our
          // per-trust-domain check is what refused it, and says why.
          for (const e of errors) assert.ok(e.message.includes(c.expect ?? ''), `${c.name}: ${e.message}`);
        }
      } finally {
        cl.close();
        server.forceShutdown();
      }
    }
  });

  test('the forged partner.example server passes the pooled OpenSSL check but not ours', async () => {
    const forged = world.cases.find((c) => c.name.startsWith('claims partner.example'))!;
    const { server, port } = await startHostileGrpcServer(forged.cert, 'hostile');
    const errors: AuthError[] = [];
    const cl = new grpc.Client(
      `127.0.0.1:${port}`,
      grpcChannelCredentials(source, authorizeAny(), { onHandshakeError: (e) => errors.push(e) }),
    );
    try {
      await assert.rejects(callWhoAmI(cl));
      assert.ok(errors.length > 0, 'our check ran and refused it');
      assert.equal(errors[0]!.code, 'AUTH_ERR_PEER_UNVERIFIED');
      assert.match(errors[0]!.message, /partner\.example.*does not chain/);
    } finally {
      cl.close();
      server.forceShutdown();
    }
  });
});
