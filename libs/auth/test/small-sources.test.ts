// The TLS builders take small sources: an SVID source and a bundle source
// (one method each), and an events source only where rotation needs it. A
// full identity source is all of them; these tests use the small ones alone.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { authorizeId } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth, type HttpDecision } from '../src/adapters/fastify.ts';
import { createGrpcMtls, grpcChannelCredentials, type GrpcDecision } from '../src/adapters/grpc.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import { X509BundleSet } from '../src/bundle/x509-bundle.ts';
import { isAuthError } from '../src/errors.ts';
import type { IdentityLifecycle, IdentitySourceEvents } from '../src/source/identity-lifecycle.ts';
import type { X509Svid } from '../src/svid/x509-svid.ts';
import type { X509SvidSource } from '../src/svid/x509-svid-source.ts';
import { connectMtls } from '../src/tls/client-connect.ts';
import { keepServerIdentityCurrent, mtlsServerOptions } from '../src/tls/server-options.ts';
import {
  callWhoAmI,
  echoService,
  type WhoAmIReply,
  createTestTrustDomain,
  type TestTrustDomain,
} from '@shop/auth-testing';

const SERVER = 'spiffe://example.org/server';

// The smallest SVID source there is: a value.
function fixed(svid: X509Svid): X509SvidSource {
  return { getX509Svid: () => svid };
}

let td: TestTrustDomain;
let bundles: X509BundleSet;
let serverSvid: X509Svid;
let clientSvid: X509Svid;

before(async () => {
  td = await createTestTrustDomain('example.org');
  bundles = new X509BundleSet([td.bundle]);
  serverSvid = await td.svid('/server');
  clientSvid = await td.svid('/client');
});

describe('HTTP with an SVID source and a bundle set, no events', () => {
  let app: FastifyInstance;
  let url: string;
  const decisions: HttpDecision[] = [];
  before(async () => {
    app = Fastify({ https: fastifyMtlsOptions(fixed(serverSvid)), logger: false });
    await app.register(spiffeAuth, {
      svidSource: fixed(serverSvid),
      bundleSource: bundles,
      onDecision: (d) => decisions.push(d),
    });
    app.get('/whoami', (req) => ({ caller: req.peer?.id.toString() }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}/whoami`;
  });
  after(() => app.close());

  test('a client built from the small sources is served, and the decision says it was HTTP', async () => {
    const dispatcher = createMtlsDispatcher({
      svidSource: fixed(clientSvid),
      bundleSource: bundles,
      authorize: authorizeId(SERVER),
    });
    try {
      const res = await request(url, { dispatcher });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(await res.body.json(), { caller: 'spiffe://example.org/client' });
      assert.deepEqual(
        decisions.map((d) => [d.transport, d.decision, d.status, d.route]),
        [['http', 'allow', 200, '/whoami']],
      );
    } finally {
      await dispatcher.close();
    }
  });

  test('a client whose bundle source lacks the server CA is refused (positive control above)', async () => {
    const other = await createTestTrustDomain('example.org');
    const dispatcher = createMtlsDispatcher({
      svidSource: fixed(clientSvid),
      bundleSource: new X509BundleSet([other.bundle]),
      authorize: authorizeId(SERVER),
    });
    try {
      await assert.rejects(request(url, { dispatcher }), (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_UNVERIFIED'));
    } finally {
      await dispatcher.close();
    }
  });

  test('options that name no source at all are refused when built', () => {
    assert.throws(
      () =>
        createMtlsDispatcher({ authorize: authorizeId(SERVER) } as unknown as Parameters<
          typeof createMtlsDispatcher
        >[0]),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_CONFIG_INVALID'),
    );
  });
});

describe('gRPC with an SVID source and a bundle set, no events', () => {
  test('the front and the channel credentials take the small sources; the decision says it was gRPC', async () => {
    const decisions: GrpcDecision[] = [];
    const mtls = createGrpcMtls({
      svidSource: fixed(serverSvid),
      bundleSource: bundles,
      onDecision: (d) => decisions.push(d),
    });
    const server = new grpc.Server({ interceptors: [mtls.interceptor] });
    server.addService(echoService, {
      whoAmI: (call: grpc.ServerUnaryCall<unknown, WhoAmIReply>, cb: grpc.sendUnaryData<WhoAmIReply>) => {
        cb(null, { caller: mtls.peerOf(call)?.id.toString() ?? null });
      },
    });
    const port = await mtls.listen(server, { port: 0 });
    const client = new grpc.Client(
      `127.0.0.1:${port}`,
      grpcChannelCredentials({ svidSource: fixed(clientSvid), bundleSource: bundles }, authorizeId(SERVER)),
    );
    try {
      const reply = await callWhoAmI(client);
      assert.deepEqual(reply, { caller: 'spiffe://example.org/client' });
      assert.deepEqual(
        decisions.map((d) => [d.transport, d.decision, d.status, d.method]),
        [['grpc', 'allow', 'OK', echoService.whoAmI.path]],
      );
    } finally {
      client.close();
      await mtls.close(100);
      server.forceShutdown();
    }
  });
});

describe('rotation needs only the events', () => {
  test('keepServerIdentityCurrent presents the SVID a bare event emitter announces', async () => {
    const events = new EventEmitter<IdentitySourceEvents>() as EventEmitter<IdentitySourceEvents> & IdentityLifecycle;
    const rotated = await td.svid('/server');
    const server = createTlsServer(mtlsServerOptions(fixed(serverSvid)), (s) => s.end());
    const stop = keepServerIdentityCurrent(server, events);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const serialSeen = async (): Promise<string> => {
      const { socket, peer } = await connectMtls({
        host: '127.0.0.1',
        port,
        svidSource: fixed(clientSvid),
        bundleSource: bundles,
        authorize: authorizeId(SERVER),
      });
      socket.destroy();
      return peer.certificate.serialNumber;
    };
    try {
      assert.equal(await serialSeen(), serverSvid.leaf.serialNumber, 'positive control: the first SVID');
      events.emit('rotated', { svid: rotated, bundles, previous: { svid: serverSvid, bundles } });
      assert.equal(await serialSeen(), rotated.leaf.serialNumber);
    } finally {
      stop();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    }
  });
});
