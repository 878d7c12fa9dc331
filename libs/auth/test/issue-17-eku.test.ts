// Issue 17, defect 7: a certificate whose extended key usage (EKU) does not
// allow the part its holder plays was accepted, e.g. a serverAuth-only client
// certificate as the order service. RFC 5280 §4.2.1.12: a present EKU limits
// the certificate to the purposes it lists (anyExtendedKeyUsage permits all);
// X.509-SVID §4 lets it be absent. Checked here on every certificate of the
// path, in both roles, directly and over real TLS handshakes on loopback.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { authorizeAny } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth } from '../src/adapters/fastify.ts';
import { createGrpcMtls, grpcChannelCredentials, type GrpcMtls } from '../src/adapters/grpc.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import { X509BundleSet } from '../src/bundle/x509-bundle.ts';
import { isAuthError, type AuthError } from '../src/errors.ts';
import { verifyX509Svid, type PeerRole } from '../src/verify/x509-verify.ts';
import { parseCertificate } from '../src/x509/certificate.ts';
import {
  KeyUsage,
  type CertificateOptions,
  type IssuedCertificate,
  callWhoAmI,
  startHostileGrpcServer,
  startHostileHttpsServer,
  echoService,
  type WhoAmIReply,
  MemorySource,
  createTestTrustDomain,
  type TestTrustDomain,
} from '@shop/auth-testing';

const { serverAuth, clientAuth, codeSigning } = x509.ExtendedKeyUsage;
const ANY_EKU = '2.5.29.37.0';

/** eku makes certificate options carrying an extended key usage extension with `purposes`. */
function eku(...purposes: string[]): CertificateOptions {
  return { extraExtensions: [new x509.ExtendedKeyUsageExtension(purposes)] };
}

/** EkuCase is one certificate and whether it may act as a TLS client and as a TLS server. */
interface EkuCase {
  name: string;
  cert: IssuedCertificate;
  asClient: boolean;
  asServer: boolean;
  /** expect is a fragment of the rejection message, in the role(s) it is refused in. */
  expect?: string;
  /**
   * grpcClientAccepts overrides asServer for the gRPC client, whose handshake
   * grpc-js also runs through OpenSSL's pooled check (see docs/design.md).
   */
  grpcClientAccepts?: boolean;
}

let example: TestTrustDomain;
let restricted: TestTrustDomain;
let cases: EkuCase[];
let source: MemorySource;

before(async () => {
  example = await createTestTrustDomain('example.org');
  // A trust domain whose root itself is restricted to serverAuth.
  restricted = await createTestTrustDomain('restricted.example', eku(serverAuth));
  const interServer = await example.ca.issueIntermediate(eku(serverAuth));
  const interClient = await example.ca.issueIntermediate(eku(clientAuth));
  const interBoth = await example.ca.issueIntermediate(eku(serverAuth, clientAuth));
  const order = 'spiffe://example.org/order';
  // What SPIRE issues: EKU serverAuth+clientAuth, key usage digitalSignature|keyEncipherment|keyAgreement.
  const spireLike: CertificateOptions = {
    ...eku(serverAuth, clientAuth),
    keyUsage: KeyUsage.digitalSignature | KeyUsage.keyEncipherment | KeyUsage.keyAgreement,
  };
  const c = async (
    name: string,
    cert: Promise<IssuedCertificate>,
    asClient: boolean,
    asServer: boolean,
    more: Partial<EkuCase> = {},
  ): Promise<EkuCase> => ({ name, cert: await cert, asClient, asServer, ...more });
  cases = await Promise.all([
    c('EKU absent (positive control)', example.issue('/order'), true, true),
    c('EKU serverAuth+clientAuth, as SPIRE issues', example.issue('/order', spireLike), true, true),
    c('EKU clientAuth only', example.issue('/order', eku(clientAuth)), true, false, { expect: 'lacks serverAuth' }),
    c('EKU serverAuth only', example.issue('/order', eku(serverAuth)), false, true, { expect: 'lacks clientAuth' }),
    c('EKU anyExtendedKeyUsage', example.issue('/order', eku(ANY_EKU)), true, true, { grpcClientAccepts: false }),
    c('EKU codeSigning only', example.issue('/order', eku(codeSigning)), false, false, {
      expect: 'extended key usage [codeSigning]',
    }),
    c('EKU absent under an intermediate with serverAuth+clientAuth', interBoth.issueSvid(order), true, true),
    c('EKU absent under an intermediate restricted to serverAuth', interServer.issueSvid(order), false, true, {
      expect: 'intermediate certificate has extended key usage [serverAuth]',
    }),
    c(
      'EKU serverAuth+clientAuth under an intermediate restricted to clientAuth',
      interClient.issueSvid(order, eku(serverAuth, clientAuth)),
      true,
      false,
      { expect: 'intermediate certificate has extended key usage [clientAuth]' },
    ),
    c('EKU absent under a trust anchor restricted to serverAuth', restricted.issue('/order'), false, true, {
      expect: 'trust anchor has extended key usage [serverAuth]',
    }),
  ]);
  const ours = await example.svid('/server');
  source = MemorySource.create(ours, [example.bundle, restricted.bundle]);
});

const accepts = (c: EkuCase, role: PeerRole): boolean => (role === 'client' ? c.asClient : c.asServer);

describe('regression: issue 17 #7, verifyX509Svid checks extended key usage for the peer role', () => {
  let bundles: X509BundleSet;
  before(() => {
    bundles = new X509BundleSet([example.bundle, restricted.bundle]);
  });

  test('the table starts with positive controls and covers both outcomes in both roles', () => {
    assert.ok(cases[0]?.asClient && cases[0].asServer, 'first case is accepted in both roles');
    for (const role of ['client', 'server'] as const) {
      assert.ok(cases.some((c) => accepts(c, role)));
      assert.ok(cases.some((c) => !accepts(c, role)));
    }
  });

  test('each case is accepted or refused as client and as server, naming the certificate and purpose', () => {
    for (const role of ['client', 'server'] as const) {
      for (const c of cases) {
        const name = `${c.name} (peer is the ${role})`;
        if (accepts(c, role)) {
          const peer = verifyX509Svid(c.cert.chainDer, bundles, { peerRole: role });
          assert.equal(peer.id.toString(), parseCertificate(c.cert.certDer).uriSans[0], name);
        } else {
          assert.throws(
            () => verifyX509Svid(c.cert.chainDer, bundles, { peerRole: role }),
            (err: unknown) => {
              assert.ok(isAuthError(err, 'AUTH_ERR_PEER_UNVERIFIED'), `${name}: ${String(err)}`);
              assert.ok(err.message.includes(c.expect ?? 'extended key usage'), `${name}: ${err.message}`);
              assert.ok(err.message.includes(`may not act as a TLS ${role}`), `${name}: ${err.message}`);
              return true;
            },
            name,
          );
        }
      }
    }
  });

  test('the peer role must be given: a call without it fails loudly instead of skipping the check', () => {
    const serverOnly = cases.find((c) => c.name === 'EKU serverAuth only')!;
    // Positive control: with the role, the server-only certificate is judged (accepted as server).
    assert.ok(verifyX509Svid(serverOnly.cert.chainDer, bundles, { peerRole: 'server' }));
    for (const bad of [undefined, {}, new Date(), { peerRole: 'any' }]) {
      assert.throws(
        () => verifyX509Svid(serverOnly.cert.chainDer, bundles, bad as never),
        (err: unknown) => isAuthError(err, 'AUTH_ERR_CONFIG_INVALID') && /peerRole/.test(err.message),
        JSON.stringify(bad),
      );
    }
  });

  test('the parsed extension: absent is undefined, present lists its OIDs', () => {
    assert.equal(parseCertificate(cases[0]!.cert.certDer).extKeyUsage, undefined);
    assert.deepEqual(parseCertificate(cases[1]!.cert.certDer).extKeyUsage, [serverAuth, clientAuth]);
  });
});

interface ErrorBody {
  code: string;
  message: string;
  caller: string | null;
}

describe('regression: issue 17 #7, our servers refuse a client certificate without clientAuth', () => {
  let app: FastifyInstance;
  let url: string;
  before(async () => {
    app = Fastify({ https: fastifyMtlsOptions(source), logger: false });
    await app.register(spiffeAuth, { source, allow: authorizeAny() });
    app.get('/orders-only', { config: { spiffe: { allow: ['spiffe://example.org/order'] } } }, (req) => ({
      caller: req.peer?.id.toString() ?? null,
    }));
    app.get('/whoami', (req) => ({ caller: req.peer?.id.toString() ?? null }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(() => app.close());

  const call = async (path: string, cert: IssuedCertificate): Promise<{ status: number; body: unknown }> => {
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false, cert: cert.certPem, key: cert.keyPem } });
    try {
      const res = await request(url + path, { dispatcher });
      return { status: res.statusCode, body: await res.body.json() };
    } finally {
      await dispatcher.close();
    }
  };

  test('fastify: a serverAuth-only certificate for the order service gets 401, the SPIRE-shaped one 200', async () => {
    const spire = cases.find((c) => c.name.includes('as SPIRE issues'))!;
    assert.deepEqual(await call('/orders-only', spire.cert), {
      status: 200,
      body: { caller: 'spiffe://example.org/order' },
    });
    const serverOnly = cases.find((c) => c.name === 'EKU serverAuth only')!;
    const res = await call('/orders-only', serverOnly.cert);
    assert.equal(res.status, 401);
    const body = res.body as ErrorBody;
    assert.equal(body.code, 'AUTH_ERR_PEER_UNVERIFIED');
    assert.match(body.message, /leaf certificate has extended key usage \[serverAuth\], which lacks clientAuth/);
    assert.equal(body.caller, null);
  });

  test('fastify: each case as a client is served (200) or refused (401) naming the rule', async () => {
    for (const c of cases) {
      const res = await call('/whoami', c.cert);
      if (c.asClient) {
        assert.equal(res.status, 200, `${c.name}: ${JSON.stringify(res.body)}`);
        assert.match((res.body as { caller: string }).caller, /\/order$/, c.name);
      } else {
        assert.equal(res.status, 401, c.name);
        const body = res.body as ErrorBody;
        assert.equal(body.code, 'AUTH_ERR_PEER_UNVERIFIED', c.name);
        assert.ok(body.message.includes(c.expect ?? 'extended key usage'), `${c.name}: ${body.message}`);
      }
    }
  });

  describe('gRPC front', () => {
    let server: grpc.Server;
    let mtls: GrpcMtls;
    let port: number;
    before(async () => {
      mtls = createGrpcMtls({ source, allow: authorizeAny() });
      server = new grpc.Server({ interceptors: [mtls.interceptor] });
      server.addService(echoService, {
        whoAmI: (call: grpc.ServerUnaryCall<unknown, WhoAmIReply>, cb: grpc.sendUnaryData<WhoAmIReply>) => {
          cb(null, { caller: mtls.peerOf(call)?.id.toString() ?? null });
        },
      });
      port = await mtls.listen(server, { host: '127.0.0.1', port: 0 });
    });
    after(async () => {
      await mtls.close(100);
      server.forceShutdown();
    });

    test('each case as a client gets its call through or UNAUTHENTICATED naming the rule', async () => {
      for (const c of cases) {
        const cl = new grpc.Client(
          `127.0.0.1:${port}`,
          grpc.credentials.createSsl(
            Buffer.from(example.ca.certPem),
            Buffer.from(c.cert.keyPem),
            Buffer.from(c.cert.certPem),
            { checkServerIdentity: () => undefined },
          ),
        );
        try {
          if (c.asClient) {
            assert.match((await callWhoAmI(cl)).caller ?? '', /\/order$/, c.name);
          } else {
            await assert.rejects(callWhoAmI(cl), (err: grpc.ServiceError) => {
              assert.equal(err.code, grpc.status.UNAUTHENTICATED, c.name);
              assert.ok(err.details.includes(c.expect ?? 'extended key usage'), `${c.name}: ${err.details}`);
              return true;
            });
          }
        } finally {
          cl.close();
        }
      }
    });
  });
});

describe('regression: issue 17 #7, our clients refuse a server certificate without serverAuth', () => {
  test('undici (connectMtls): each case as a server is reached or refused before any request is sent', async () => {
    for (const c of cases) {
      const server = await startHostileHttpsServer(c.cert);
      const dispatcher = createMtlsDispatcher({ source, authorize: authorizeAny() });
      try {
        if (c.asServer) {
          const res = await request(server.url, { dispatcher });
          assert.deepEqual(await res.body.json(), { ok: true }, c.name);
        } else {
          await assert.rejects(request(server.url, { dispatcher }), (err: AuthError) => {
            assert.equal(err.code, 'AUTH_ERR_PEER_UNVERIFIED', c.name);
            assert.ok(err.message.includes(c.expect ?? 'extended key usage'), `${c.name}: ${err.message}`);
            assert.ok(err.message.includes('may not act as a TLS server'), `${c.name}: ${err.message}`);
            return true;
          });
        }
      } finally {
        await dispatcher.close();
        await server.close();
      }
    }
  });

  test('gRPC client: each case as a server is reached, or refused before the call is sent', async () => {
    for (const c of cases) {
      const { server, port } = await startHostileGrpcServer(c.cert, 'server reached');
      const errors: AuthError[] = [];
      const cl = new grpc.Client(
        `127.0.0.1:${port}`,
        grpcChannelCredentials(source, authorizeAny(), { onHandshakeError: (e) => errors.push(e) }),
      );
      try {
        if (c.grpcClientAccepts ?? c.asServer) {
          assert.deepEqual(await callWhoAmI(cl), { caller: 'server reached' }, c.name);
        } else {
          await assert.rejects(callWhoAmI(cl), (err: grpc.ServiceError) => {
            assert.equal(err.code, grpc.status.UNAVAILABLE, c.name);
            return true;
          });
          // Where OpenSSL's pooled pre-filter let the certificate through,
          // our check is what refused it, and says why.
          for (const e of errors) assert.ok(e.message.includes(c.expect ?? ''), `${c.name}: ${e.message}`);
        }
      } finally {
        cl.close();
        server.forceShutdown();
      }
    }
  });
});
