// Issue 17, defects 4 and 6, over real TLS on loopback: every gRPC decision
// and failed handshake writes the same audit line as HTTP, and a caller
// without a verified certificate learns nothing about the method table.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { authorizeAny } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth, type HttpDecision } from '../src/adapters/fastify.ts';
import { createGrpcMtls, type GrpcDecision, type GrpcMtls } from '../src/adapters/grpc.ts';
import {
  CertificateAuthority,
  KeyUsage,
  callWhoAmI,
  echoService,
  type WhoAmIReply,
  MemorySource,
  createTestTrustDomain,
  type TestTrustDomain,
} from '@shop/auth-testing';

type Line = Record<string, unknown> & { msg: string; level: number };
type Cert = { certPem: string; keyPem: string };

const HOUR = 3_600_000;
const ADMIN = '/test.Echo/Admin';
const WHOAMI = echoService.whoAmI.path;
// The rogue certificate claims an ID no real workload has, so it can be told
// apart from every legitimate caller in logs and metrics.
const CLAIMED = 'spiffe://example.org/claimed-by-rogue';

function captureLog(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

let td: TestTrustDomain;
let source: MemorySource;
let certs: { order: Cert; peer: Cert; rogue: Cert; expired: Cert; selfSigned: Cert };

before(async () => {
  td = await createTestTrustDomain('example.org');
  const rogue = await createTestTrustDomain('example.org');
  source = MemorySource.create(await td.svid('/server'), [td.bundle]);
  const self = await CertificateAuthority.createRoot({
    subject: '',
    uris: ['spiffe://example.org/order'],
    isCA: false,
    keyUsage: KeyUsage.digitalSignature,
  });
  const now = Date.now();
  certs = {
    order: await td.issue('/order'),
    peer: await td.issue('/peer'),
    rogue: await rogue.ca.issueSvid(CLAIMED),
    expired: await td.issue('/order', { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) }),
    selfSigned: { certPem: self.certPem, keyPem: await self.keyPem() },
  };
});

describe('gRPC front: audit lines and method probing', () => {
  let server: grpc.Server;
  let mtls: GrpcMtls;
  let port: number;
  let lines: Line[];
  const decisions: GrpcDecision[] = [];
  const clients: grpc.Client[] = [];

  before(async () => {
    const captured = captureLog();
    lines = captured.lines;
    mtls = createGrpcMtls({
      source,
      allow: authorizeAny(),
      methods: { [ADMIN]: ['spiffe://example.org/order'] },
      log: captured.log,
      onDecision: (d) => decisions.push(d),
    });
    server = new grpc.Server({ interceptors: [mtls.interceptor] });
    const handler: grpc.handleUnaryCall<unknown, WhoAmIReply> = (call, cb) => {
      cb(null, { caller: mtls.peerOf(call)?.id.toString() ?? null });
    };
    server.addService(
      { ...echoService, admin: { ...echoService.whoAmI, path: ADMIN } },
      { whoAmI: handler, admin: handler },
    );
    port = await mtls.listen(server, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await mtls.close(100);
    server.forceShutdown();
  });

  const client = (cert?: Cert): grpc.Client => {
    const c = new grpc.Client(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(
        Buffer.from(td.ca.certPem),
        cert ? Buffer.from(cert.keyPem) : null,
        cert ? Buffer.from(cert.certPem) : null,
        { checkServerIdentity: () => undefined },
      ),
    );
    clients.push(c);
    return c;
  };

  const failure = async (p: Promise<unknown>): Promise<{ code: grpc.status; details: string }> => {
    try {
      await p;
    } catch (err) {
      const e = err as grpc.ServiceError;
      return { code: e.code, details: e.details };
    }
    throw new Error('the call succeeded');
  };

  const audit = (from: number): Line[] =>
    lines.slice(from).filter((l) => l.msg === 'authz allow' || l.msg === 'authz deny');

  test('regression: an allowed gRPC call writes an "authz allow" line with caller, rule, method and remote address', async () => {
    const start = lines.length;
    assert.deepEqual(await callWhoAmI(client(certs.order), ADMIN), { caller: 'spiffe://example.org/order' });
    const [line, ...rest] = audit(start);
    assert.deepEqual(rest, []);
    assert.equal(line?.msg, 'authz allow');
    assert.equal(line.level, 30, 'info, the default auditLevel');
    assert.deepEqual(line.authz, {
      decision: 'allow',
      status: 'OK',
      caller: 'spiffe://example.org/order',
      rule: 'ID is one of [spiffe://example.org/order]',
      method: ADMIN,
      remote: '127.0.0.1',
    });
  });

  test('regression: a PERMISSION_DENIED gRPC call writes an "authz deny" line naming caller, rule and reason', async () => {
    const start = lines.length;
    const denied = await failure(callWhoAmI(client(certs.peer), ADMIN));
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
    assert.deepEqual(
      audit(start).map((l) => [l.msg, l.authz]),
      [
        [
          'authz deny',
          {
            decision: 'deny',
            status: 'PERMISSION_DENIED',
            caller: 'spiffe://example.org/peer',
            rule: 'ID is one of [spiffe://example.org/order]',
            method: ADMIN,
            code: 'AUTH_ERR_PEER_UNAUTHORIZED',
            reason: 'unexpected ID "spiffe://example.org/peer" (rule: ID is one of [spiffe://example.org/order])',
            remote: '127.0.0.1',
          },
        ],
      ],
    );
    // Positive control: the same caller on a method open to it is allowed, and logged so.
    const ok = lines.length;
    assert.deepEqual(await callWhoAmI(client(certs.peer), WHOAMI), { caller: 'spiffe://example.org/peer' });
    assert.deepEqual(
      audit(ok).map((l) => l.msg),
      ['authz allow'],
    );
  });

  test('regression: an UNAUTHENTICATED gRPC call writes an "authz deny" line carrying the claimed SPIFFE ID as a field', async () => {
    const start = lines.length;
    const decided = decisions.length;
    const rogue = client(certs.rogue);
    const refused = await failure(callWhoAmI(rogue, ADMIN));
    assert.equal(refused.code, grpc.status.UNAUTHENTICATED);
    assert.match(refused.details, /^AUTH_ERR_PEER_UNVERIFIED: .*does not chain/);
    await failure(callWhoAmI(rogue, WHOAMI));
    await failure(callWhoAmI(client(), WHOAMI));
    const lines401 = audit(start);
    assert.deepEqual(
      lines401.map((l) => l.msg),
      ['authz deny', 'authz deny', 'authz deny'],
    );
    const [admin, whoami, none] = lines401.map((l) => l.authz as GrpcDecision);
    assert.deepEqual(
      { ...admin, reason: undefined },
      {
        decision: 'deny',
        status: 'UNAUTHENTICATED',
        caller: null,
        rule: 'ID is one of [spiffe://example.org/order]',
        method: ADMIN,
        code: 'AUTH_ERR_PEER_UNVERIFIED',
        reason: undefined,
        remote: '127.0.0.1',
        claimed: CLAIMED,
        path: ADMIN,
      },
    );
    assert.equal(`${admin!.code}: ${admin!.reason}`, refused.details, 'the log says what the caller was told');
    // A method without its own rule is reported as "*": whether it exists is
    // not looked up for an unverified caller, and its path is the caller's choice.
    assert.deepEqual([whoami!.method, whoami!.path, whoami!.claimed], ['*', WHOAMI, CLAIMED]);
    assert.deepEqual([none!.code, none!.claimed, none!.caller], ['AUTH_ERR_PEER_NO_CERTIFICATE', null, null]);
    // onDecision (metrics) sees the same decisions as the log, plus the
    // transport they were made on.
    assert.deepEqual(
      decisions.slice(decided),
      lines401.map((l) => ({ transport: 'grpc', ...(l.authz as object) })),
    );
  });

  test('regression: failed handshakes and rejected client certificates on the gRPC server are logged', async () => {
    const start = lines.length;
    const socket = tlsConnect({ host: '127.0.0.1', port, maxVersion: 'TLSv1.2', rejectUnauthorized: false });
    const [err] = (await once(socket, 'error')) as [Error];
    assert.match(err.message, /protocol|version|alert/i);
    socket.destroy();
    await failure(callWhoAmI(client(certs.expired), WHOAMI));
    // The server logs the refused handshake asynchronously to the client's error.
    for (let i = 0; i < 50 && !lines.slice(start).some((l) => l.msg === 'TLS handshake failed'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const handshake = lines.slice(start).filter((l) => l.msg === 'TLS handshake failed');
    assert.equal(handshake.length, 1);
    assert.equal(handshake[0]!.level, 40);
    assert.equal((handshake[0]!.err as { code: string }).code, 'AUTH_ERR_TLS_HANDSHAKE');
    assert.equal(handshake[0]!.remote, '127.0.0.1');
    const rejected = lines.slice(start).filter((l) => l.msg === 'client certificate rejected');
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]!.level, 40);
    assert.equal((rejected[0]!.err as { code: string }).code, 'AUTH_ERR_PEER_UNVERIFIED');
    assert.match((rejected[0]!.err as { message: string }).message, /expired/);
    assert.equal(rejected[0]!.claimed, 'spiffe://example.org/order');
    assert.equal(rejected[0]!.remote, '127.0.0.1');
    // Positive control: a verified caller's connection writes no handshake warning.
    const ok = lines.length;
    await callWhoAmI(client(certs.order), WHOAMI);
    assert.deepEqual(
      lines.slice(ok).map((l) => l.msg),
      ['authz allow'],
    );
  });

  test('regression: without a verified certificate an unknown method answers UNAUTHENTICATED exactly like a real one', async () => {
    const unknown = ['/test.Echo/Nope', '/no.such.Service/Method', '/'];
    const cases: [string, Cert | undefined, string][] = [
      ['no certificate', undefined, 'AUTH_ERR_PEER_NO_CERTIFICATE'],
      ['self-signed certificate', certs.selfSigned, 'AUTH_ERR_PEER_UNVERIFIED'],
      ['expired certificate', certs.expired, 'AUTH_ERR_PEER_UNVERIFIED'],
    ];
    for (const [name, cert, code] of cases) {
      const c = client(cert);
      const start = lines.length;
      const real = await failure(callWhoAmI(c, WHOAMI));
      assert.equal(real.code, grpc.status.UNAUTHENTICATED, name);
      assert.ok(real.details.startsWith(`${code}: `), `${name}: ${real.details}`);
      for (const path of [...unknown, ADMIN]) {
        assert.deepEqual(await failure(callWhoAmI(c, path)), real, `${name}: ${path} answers as ${WHOAMI} does`);
      }
      assert.equal(audit(start).length, 2 + unknown.length, `${name}: every refused call is audited`);
    }
  });

  test('regression: positive controls for probing — verified callers see UNIMPLEMENTED, are served, or get PERMISSION_DENIED', async () => {
    const order = client(certs.order);
    const peer = client(certs.peer);
    const missing = await failure(callWhoAmI(order, '/test.Echo/Nope'));
    assert.equal(missing.code, grpc.status.UNIMPLEMENTED, 'an authenticated caller may see the method table');
    assert.deepEqual(await callWhoAmI(order, ADMIN), { caller: 'spiffe://example.org/order' });
    assert.deepEqual(await callWhoAmI(order, WHOAMI), { caller: 'spiffe://example.org/order' });
    assert.equal((await failure(callWhoAmI(peer, ADMIN))).code, grpc.status.PERMISSION_DENIED);
    assert.equal((await failure(callWhoAmI(peer, '/test.Echo/Nope'))).code, grpc.status.UNIMPLEMENTED);
  });
});

describe('gRPC front: a connection that stops verifying', () => {
  test('regression: once its CA leaves the bundle, calls get UNAUTHENTICATED and the connection is closed, so probing learns nothing there either', async () => {
    const svid = await td.svid('/server');
    const other = await createTestTrustDomain('other.example');
    const own = MemorySource.create(svid, [td.bundle]);
    const m = createGrpcMtls({ source: own, allow: authorizeAny() });
    const s = new grpc.Server({ interceptors: [m.interceptor] });
    s.addService(echoService, {
      whoAmI: (call: grpc.ServerUnaryCall<unknown, WhoAmIReply>, cb: grpc.sendUnaryData<WhoAmIReply>) => {
        cb(null, { caller: m.peerOf(call)?.id.toString() ?? null });
      },
    });
    const p = await m.listen(s, { port: 0 });
    const c = new grpc.Client(
      `127.0.0.1:${p}`,
      grpc.credentials.createSsl(
        Buffer.from(td.ca.certPem),
        Buffer.from(certs.order.keyPem),
        Buffer.from(certs.order.certPem),
        { checkServerIdentity: () => undefined },
      ),
    );
    const call = (path: string): Promise<{ code: grpc.status; details?: string }> =>
      new Promise((resolve) => {
        c.makeUnaryRequest(
          path,
          echoService.whoAmI.requestSerialize,
          (b: Buffer) => b,
          {},
          { deadline: Date.now() + 5000 },
          (err) => {
            resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK });
          },
        );
      });
    try {
      assert.equal((await call(WHOAMI)).code, grpc.status.OK, 'positive control: verified and served');
      own.set(svid, [other.bundle]);
      const refused = await call(WHOAMI);
      assert.equal(refused.code, grpc.status.UNAUTHENTICATED);
      assert.match(refused.details ?? '', /^AUTH_ERR_PEER_UNVERIFIED: /);
      assert.deepEqual(await call('/test.Echo/Nope'), refused, 'an unknown method answers as the real one does');
      own.set(svid, [td.bundle]);
      assert.equal((await call(WHOAMI)).code, grpc.status.OK, 'trusted again: served on a new connection');
      assert.equal((await call('/test.Echo/Nope')).code, grpc.status.UNIMPLEMENTED);
    } finally {
      c.close();
      await m.close(100);
      s.forceShutdown();
      await own.close();
    }
  });
});

describe('HTTP and gRPC audit lines have the same shape', () => {
  let app: FastifyInstance;
  let url: string;
  let lines: Line[];
  before(async () => {
    lines = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
        cb();
      },
    });
    app = Fastify({ https: fastifyMtlsOptions(source), logger: { level: 'info', stream } });
    await app.register(spiffeAuth, { source, allow: ['spiffe://example.org/order'] });
    app.get('/whoami', (req) => ({ caller: req.peer?.id.toString() }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}/whoami`;
  });
  after(() => app.close());

  const get = async (cert?: Cert): Promise<number> => {
    const dispatcher = new Agent({
      connect: { rejectUnauthorized: false, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) },
    });
    try {
      const res = await request(url, { dispatcher });
      await res.body.dump();
      return res.statusCode;
    } finally {
      await dispatcher.close();
    }
  };

  test('regression: HTTP allow / 403 / 401 lines carry remote, and the 401 line the claimed SPIFFE ID', async () => {
    assert.equal(await get(certs.order), 200);
    assert.equal(await get(certs.peer), 403);
    assert.equal(await get(certs.rogue), 401);
    assert.equal(await get(), 401);
    const audit = lines.filter((l) => l.msg === 'authz allow' || l.msg === 'authz deny');
    const authz = audit.map((l) => l.authz as HttpDecision);
    assert.deepEqual(
      authz.map((d) => [d.status, d.caller, d.remote, d.claimed]),
      [
        [200, 'spiffe://example.org/order', '127.0.0.1', undefined],
        [403, 'spiffe://example.org/peer', '127.0.0.1', undefined],
        [401, null, '127.0.0.1', CLAIMED],
        [401, null, '127.0.0.1', null],
      ],
    );
    // The fields a gRPC UNAUTHENTICATED line has (see above) are all here
    // too, plus HTTP's own: the route pattern and the URL as sent.
    assert.deepEqual(Object.keys(authz[2]!).sort(), [
      'caller',
      'claimed',
      'code',
      'decision',
      'method',
      'reason',
      'remote',
      'route',
      'rule',
      'status',
      'url',
    ]);
    const rejected = lines.filter((l) => l.msg === 'client certificate rejected');
    assert.deepEqual(
      rejected.map((l) => [l.claimed, l.remote]),
      [
        [CLAIMED, '127.0.0.1'],
        [null, '127.0.0.1'],
      ],
    );
  });
});
